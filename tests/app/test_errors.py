"""Error bodies are always {code, message, details}; body limits; domain error mapping; the CLI."""

from __future__ import annotations

import pytest

from app import cli
from app.errors import classify


def test_unknown_route_and_method(client):
    r = client.get("/v1/nothing")
    assert r.status_code == 404 and set(r.json()) == {"code", "message", "details"}
    assert r.json()["code"] == "not_found"
    r = client.delete("/v1/trajectories")
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"


def test_body_limit_with_declared_and_chunked_length(settings_factory):
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app(settings_factory(max_body_bytes=2048))) as c:
        r = c.post("/v1/routes/probability", content=b"x" * 5000, headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["code"] == "payload_too_large"

        def chunks():
            for _ in range(10):
                yield b"x" * 500

        r = c.post("/v1/routes/probability", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413


def test_domain_errors_are_4xx():
    from maxent_irl.exceptions import InvalidPathError, UnreachableDestinationError
    from maxent_irl.roads import GPSFormatError, MapMatchingError, UnknownSegmentError

    assert classify(InvalidPathError("x")) == (422, "invalid_path")
    assert classify(UnreachableDestinationError("x")) == (422, "unreachable_destination")
    assert classify(GPSFormatError("x")) == (422, "invalid_gps_data")
    assert classify(MapMatchingError("x", "off_network")) == (422, "map_matching_failed")
    assert classify(UnknownSegmentError("x")) == (422, "unknown_segment")
    assert classify(RuntimeError("bug")) is None


def test_cli_registry(capsys):
    assert {"serve", "worker"} <= set(cli.COMMANDS)

    @cli.command("hello", help="say hello", configure=lambda p: p.add_argument("--name", default="x"))
    def hello(args) -> int:
        print(f"hello {args.name}")
        return 0

    try:
        assert cli.main(["hello", "--name", "routeirl"]) == 0
        assert "hello routeirl" in capsys.readouterr().out
        with pytest.raises(SystemExit):
            cli.main(["--help"])
        assert "hello" in capsys.readouterr().out
    finally:
        cli.COMMANDS.pop("hello")
