"""Issue 16 in-process: bounded error bodies, JSON 500s, Allow on 405, Host / Origin checks, safe defaults,
idempotent uploads and training, the bounded job queue, the demo tried again after a crash, schema 3."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api.errors import MAX_DETAIL_ITEMS, MAX_MESSAGE_CHARS, bounded, error_body
from app.main import create_app
from app.settings import Settings
from app.storage import SCHEMA_VERSION, Storage


@pytest.fixture
def trip_points(sample_trip) -> list[list[float]]:
    return sample_trip["features"][0]["geometry"]["coordinates"]


def _trips(trip_points, n: int = 1, tag: str = "") -> dict:
    return {"trips": [{"id": f"t{tag}{i}", "points": trip_points} for i in range(n)]}


# --- error bodies ----------------------------------------------------------------------------------
def test_error_bodies_are_bounded_whatever_the_input():
    body = error_body("x", "m" * 100_000, {"list": list(range(100_000)), "deep": [[[[[[[[1]]]]]]]],
                                          "text": "\ud83d" + "y" * 10_000, "keys": {str(i): i for i in range(500)}})
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8")  # a lone surrogate would fail here
    assert len(raw) < 8_000
    assert len(body["message"]) < MAX_MESSAGE_CHARS + 40
    assert body["details"]["list"][-1] == {"truncated": True, "shown": MAX_DETAIL_ITEMS, "total": 100_000,
                                           "message": f"{100_000 - MAX_DETAIL_ITEMS} more not shown"}
    assert body["details"]["text"].startswith("\\ud83d")
    assert len(body["details"]["keys"]) == MAX_DETAIL_ITEMS + 1  # + the note
    assert bounded([1, "a", None, 2.5]) == [1, "a", None, 2.5]


def test_a_validation_error_lists_the_first_problems_and_counts_them(client):
    r = client.post("/v1/destinations", json={"coordinates": [[0, 100]] * 5000})  # every point invalid
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
    details = r.json()["details"]
    assert len(details) == MAX_DETAIL_ITEMS and details[-1]["total"] == 5000
    assert "(and 4999 more)" in r.json()["message"] and len(r.content) < 10_000


def test_an_unexpected_error_is_a_json_500_without_traceback(settings_factory):
    app = create_app(settings_factory())

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/boom")
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    assert r.json()["code"] == "internal_error" and "secret" not in r.text


def test_405_names_every_method_of_the_path(client):
    r = client.put("/v1/trajectories")
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"
    assert set(r.headers["allow"].split(", ")) == {"DELETE", "GET", "HEAD", "POST"}
    assert r.json()["details"]["allowed"] == ["DELETE", "GET", "HEAD", "POST"]


# --- Host, Origin, key -------------------------------------------------------------------------------
def test_host_and_origin_checks(client, trip_points):
    assert client.get("/health", headers={"host": "evil.example"}).status_code == 403
    r = client.post("/v1/models", json={}, headers={"host": "evil.example:8000"})
    assert r.status_code == 403 and r.json()["code"] == "host_not_allowed"
    r = client.post("/v1/models", json={"max_iter": 1}, headers={"origin": "http://evil.example"})
    assert r.status_code == 403 and r.json()["code"] == "origin_not_allowed"
    assert client.post("/v1/models", json={}, headers={"origin": "null"}).status_code == 403
    assert client.delete("/v1/jobs/1", headers={"origin": "http://localhost:3000"}).status_code == 403
    # reads from other origins, and writes from the service's own pages, go through
    assert client.get("/v1/models", headers={"origin": "http://evil.example"}).status_code == 200
    r = client.post("/v1/trajectories", json=_trips(trip_points), headers={"origin": "http://testserver"})
    assert r.status_code == 201, r.text


def test_default_host_allow_list():
    assert Settings().host_allow_list() == frozenset({"localhost", "127.0.0.1", "::1"})
    assert Settings(host="10.1.2.3").host_allow_list() == frozenset({"localhost", "127.0.0.1", "::1", "10.1.2.3"})
    assert Settings(host="0.0.0.0").host_allow_list() is None  # a wildcard bind: any name
    assert Settings(allowed_hosts=["api.example.org", "*"]).host_allow_list() is None
    assert Settings(allowed_hosts="a.org, B.org").host_allow_list() == frozenset({"a.org", "b.org"})


def test_serving_beyond_localhost_without_a_key_is_refused(tmp_path: Path, helpers, monkeypatch):
    from app import server

    assert Settings(host="127.0.0.1").insecure_exposure() is None
    assert Settings(host="::1").insecure_exposure() is None
    assert Settings(host="0.0.0.0", api_key="k").insecure_exposure() is None
    assert Settings(host="0.0.0.0", allow_insecure=True).insecure_exposure() is None
    assert "refusing" in (Settings(host="0.0.0.0").insecure_exposure() or "")
    with pytest.raises(SystemExit, match=r"refusing to serve on 0\.0\.0\.0"):
        server.ensure_api_key(Settings(host="0.0.0.0", data_dir=tmp_path))
    # the app refuses too when started by hand with ROUTEIRL_HOST beyond localhost
    with pytest.raises(RuntimeError, match="refusing"), TestClient(
            create_app(helpers.make_settings(tmp_path / "d", host="192.0.2.1"))):
        pass
    # generated once, kept (0600), reused, and handed to the API processes through the environment
    monkeypatch.setenv("ROUTEIRL_API_KEY", "")  # ensure_api_key sets it: undone after the test
    first = server.ensure_api_key(Settings(host="0.0.0.0", data_dir=tmp_path, generate_api_key=True))
    key_file = tmp_path / "api_key"
    assert first.has_api_key and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert os.environ["ROUTEIRL_API_KEY"] == first.api_key.get_secret_value() == key_file.read_text().strip()
    again = server.ensure_api_key(Settings(host="0.0.0.0", data_dir=tmp_path, generate_api_key=True, api_key=None))
    assert again.api_key.get_secret_value() == first.api_key.get_secret_value()


def test_the_protocol_and_timeouts_are_what_uvicorn_is_given():
    from app import server

    opts = server.uvicorn_options(Settings())
    assert opts["http"] == "app.server:HttpProtocol" and opts["timeout_keep_alive"] == 5.0
    s = Settings()
    assert (s.timeout_headers_s, s.timeout_body_s, s.timeout_body_idle_s, s.max_header_bytes) == (10.0, 60.0, 10.0,
                                                                                                  65_536)


# --- idempotency --------------------------------------------------------------------------------------
def test_an_upload_retried_with_its_key_is_stored_once(client, trip_points):
    total = client.get("/v1/trajectories").json()["total"]
    key = {"Idempotency-Key": "upload-1"}
    first = client.post("/v1/trajectories", json=_trips(trip_points, 2), headers=key)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    again = client.post("/v1/trajectories", json=_trips(trip_points, 2), headers=key)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert client.get("/v1/trajectories").json()["total"] == total + 2
    other = client.post("/v1/trajectories", json=_trips(trip_points, 3), headers=key)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert client.post("/v1/trajectories", json=_trips(trip_points, 2), headers={"Idempotency-Key": "a b"}
                       ).status_code == 422  # not visible ASCII
    # a multipart retry draws another boundary: still the same request
    csv = "trip_id,lon,lat\n" + "".join(f"m,{x},{y}\n" for x, y in trip_points)
    files = {"file": ("trips.csv", csv.encode(), "text/csv")}
    r1 = client.post("/v1/trajectories", files=files, headers={"Idempotency-Key": "mp"})
    r2 = client.post("/v1/trajectories", files=files, headers={"Idempotency-Key": "mp"})
    assert r1.status_code == 201 and r2.json() == r1.json() and r2.headers["idempotent-replayed"] == "true"


def test_a_rejected_upload_is_a_422_and_its_retry_gets_the_same(client):
    body = {"trips": [{"id": "far", "points": [[1.52, 42.5], [1.53, 42.51], [1.54, 42.52]]}]}  # Andorra
    r = client.post("/v1/trajectories", json=body, headers={"Idempotency-Key": "far"})
    assert r.status_code == 422 and r.json()["code"] == "no_trips_accepted"
    assert r.json()["details"]["rejected_by_reason"] == {"off_network": 1}
    again = client.post("/v1/trajectories", json=body, headers={"Idempotency-Key": "far"})
    assert again.status_code == 422 and again.json() == r.json() and again.headers["idempotent-replayed"] == "true"


def test_training_retried_with_its_key_queues_one_job(client):
    jobs = client.get("/v1/jobs").json()["total"]
    key = {"Idempotency-Key": "train-1"}
    first = client.post("/v1/models", json={"max_iter": 3}, headers=key)
    again = client.post("/v1/models", json={"max_iter": 3}, headers=key)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again.headers["location"] == first.headers["location"]
    assert client.get("/v1/jobs").json()["total"] == jobs + 1
    assert client.post("/v1/models", json={"max_iter": 4}, headers=key).json()["code"] == "idempotency_key_reused"
    client.delete(f"/v1/jobs/{first.json()['id']}")


# --- the job queue ------------------------------------------------------------------------------------
def test_the_job_queue_is_bounded(settings_factory):
    with TestClient(create_app(settings_factory(max_unfinished_jobs=2))) as c:
        ids = [c.post("/v1/models", json={"max_iter": 500}).json()["id"] for _ in range(2)]
        r = c.post("/v1/models", json={"max_iter": 500})
        assert r.status_code == 429 and r.json()["code"] == "too_many_jobs"
        assert int(r.headers["retry-after"]) > 0 and r.json()["details"] == {"max_unfinished_jobs": 2}
        assert c.delete(f"/v1/jobs/{ids[1]}").json()["status"] == "cancelled"
        r = c.post("/v1/models", json={"max_iter": 500})
        assert r.status_code == 202  # a cancelled job frees its place
        for job_id in (ids[0], r.json()["id"]):
            c.delete(f"/v1/jobs/{job_id}")


# --- the demo after a crash ---------------------------------------------------------------------------
@pytest.mark.slow
def test_the_demo_job_is_tried_again_after_its_worker_is_killed(tmp_path: Path, helpers):
    with TestClient(create_app(helpers.make_settings(tmp_path / "d", demo="always"))) as c:
        def running_demo():
            jobs = c.get("/v1/jobs", params={"status": "running"}).json()["items"]
            return next((j for j in jobs if j["kind"] == "demo" and j["progress"]), None)

        job = helpers.wait_for(running_demo, timeout=60)
        pid = Storage(tmp_path / "d" / "routeirl.sqlite3").jobs.get(job["id"]).pid
        os.kill(pid, signal.SIGKILL)
        helpers.wait_for(lambda: c.get(f"/v1/jobs/{job['id']}").json()["status"] == "failed", timeout=30)
        helpers.wait_for(lambda: c.get("/ready").status_code == 200, timeout=180)
        demos = [j for j in c.get("/v1/jobs").json()["items"] if j["kind"] == "demo"]
        assert [j["status"] for j in demos] == ["succeeded", "failed"]  # newest first


# --- storage ------------------------------------------------------------------------------------------
def test_a_version_2_database_gets_the_idempotency_table(tmp_path: Path):
    path = tmp_path / "db.sqlite3"
    Storage(path).close()
    con = sqlite3.connect(path)
    con.executescript("DROP TABLE idempotency; PRAGMA user_version = 2;")
    con.close()
    storage = Storage(path)
    try:
        assert storage.db.con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        assert storage.idempotency.count() == 0
    finally:
        storage.close()
