"""Error bodies are always {code, message, details}; body limits; domain error mapping; the CLI."""

from __future__ import annotations

import pytest

from app import cli
from app.api.errors import classify


def test_unknown_route_and_method(client):
    r = client.get("/v1/nothing")
    assert r.status_code == 404 and set(r.json()) == {"code", "message", "details"}
    assert r.json()["code"] == "not_found"
    r = client.put("/v1/trajectories")
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"


def test_body_limit_with_declared_and_chunked_length(settings_factory):
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app(settings_factory(max_json_body_bytes=2048))) as c:
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


@pytest.mark.parametrize("path", [
    "/v1/trajectories/9223372036854775808", "/v1/models/9223372036854775808", "/v1/jobs/9223372036854775808",
    "/v1/trajectories?offset=99999999999999999999", "/v1/models?offset=9223372036854775808",
    "/v1/jobs?offset=9223372036854775808",
])
def test_ids_and_offsets_beyond_sqlite_integers_are_422(client, path):
    """SQLite holds signed 64-bit integers; a larger one is a malformed request, not a server error."""
    r = client.get(path)
    assert r.status_code == 422 and r.json()["code"] == "validation_error", r.text
    r = client.get(path.replace("9223372036854775808", "9223372036854775807").replace("99999999999999999999", "5"))
    assert r.status_code in (200, 404), r.text  # the largest legal value is looked up, not refused
    r = client.post("/v1/models/9223372036854775808/activate")
    assert r.status_code == 422 and r.json()["code"] == "validation_error"


def test_unparsable_json_bodies_are_invalid_json(client):
    """Every JSON endpoint says the same thing about a body that is not JSON, nested too deeply included."""
    deep = b"[" * 100_000 + b"]" * 100_000
    for path in ("/v1/destinations", "/v1/routes/probability", "/v1/models", "/v1/trajectories"):
        r = client.post(path, content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["code"] == "invalid_json", (path, r.text)
        r = client.post(path, content=deep, headers={"content-type": "application/json"})
        assert 400 <= r.status_code < 500 and set(r.json()) == {"code", "message", "details"}, (path, r.text)
    r = client.post("/v1/trajectories", content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_json" and "nested too deeply" in r.json()["message"]
    r = client.post("/v1/trajectories", files={"file": ("deep.json", deep, "application/json")})
    assert r.status_code == 422 and r.json()["code"] == "invalid_json"


def test_the_body_limit_answer_names_the_model(settings_factory):
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app(settings_factory(max_json_body_bytes=2048))) as c:
        r = c.post("/v1/routes/probability", content=b"x" * 5000, headers={"content-type": "application/json"})
        ok = c.get("/health")
    assert r.status_code == 413
    named = {k for k in ok.headers if k.lower().startswith("x-routeirl")}
    assert named and named <= {k for k in r.headers if k.lower().startswith("x-routeirl")}
