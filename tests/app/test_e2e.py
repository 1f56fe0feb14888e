"""End to end against a real server: uvicorn in a subprocess on a free port, a temporary database.

Posts simulated GPS trips, trains, polls the job, queries destinations / routes / visitation,
checks error bodies, then kills the server with SIGKILL, restarts it and finds the trips and
the active model still there.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

KEY = "e2e-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(root: Path, data_dir: Path, network: Path, log: Path, workers: int = 1) -> Iterator[httpx.Client]:
    port = _free_port()
    env = {
        **os.environ,
        "ROUTEIRL_DATA_DIR": str(data_dir),
        "ROUTEIRL_NETWORK": str(network),
        "ROUTEIRL_DEMO": "never",
        "ROUTEIRL_API_KEY": KEY,
        "ROUTEIRL_WORKER_POLL_S": "0.2",
        "ROUTEIRL_MAX_ITER": "80",
        "OPENBLAS_NUM_THREADS": "1",
    }
    env.pop("ROUTEIRL_DATABASE", None)
    cmd = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers)]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"server did not start (exit {proc.poll()}):\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        client.proc = proc  # type: ignore[attr-defined]
        yield client
    finally:
        client.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _simulated_trips(helpers, data_dir: Path, n: int) -> list[dict]:
    from app.services.network import load_network
    from maxent_irl.roads import simulate_trips

    net = load_network(helpers.make_settings(data_dir))
    sims = simulate_trips(net, n_trips=n, seed=7, noise_m=5.0)
    return [
        {"id": s.trace.trace_id, "points": s.trace.points.tolist(), "times": s.trace.times.tolist()} for s in sims
    ]


def test_end_to_end(tmp_path: Path, helpers):
    data_dir = tmp_path / "data"
    log = tmp_path / "server.log"
    trips = _simulated_trips(helpers, tmp_path / "client", 60)
    auth = {"X-API-Key": KEY}

    with server(helpers.ROOT, data_dir, helpers.MONACO, log) as c:
        r = c.get("/ready")
        assert r.status_code == 503 and r.json()["ready"] is False

        # ingest
        assert c.post("/v1/trajectories", json={"trips": trips}).status_code == 401
        r = c.post("/v1/trajectories", json={"trips": trips}, headers=auth)
        assert r.status_code == 201, r.text
        ingest = r.json()
        accepted = ingest["accepted"]
        assert len(accepted) >= 40, ingest["rejected"]
        assert len(accepted) + len({x["index"] for x in ingest["rejected"]}) >= len(trips)
        r = c.get("/v1/destinations", params={"coordinates": "7.42,43.73"})
        assert r.status_code == 409 and r.json()["code"] == "no_active_model"

        # train and poll
        r = c.post("/v1/models", json={"regularization": 0.01, "heldout_fraction": 0.2}, headers=auth)
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        deadline = time.monotonic() + 120
        while (job := c.get(f"/v1/jobs/{job_id}").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        assert job["status"] == "succeeded", job
        assert {"iteration", "log_likelihood", "grad_norm", "elapsed_s"} <= set(job["progress"])
        model_id = job["model_id"]
        deadline = time.monotonic() + 10
        while c.get("/ready").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        model = c.get(f"/v1/models/{model_id}").json()
        assert model["active"] and model["metrics"]["heldout"]["n_trips"] > 0

        # queries
        pts = trips[0]["points"]
        q = ";".join(f"{x},{y}" for x, y in pts[:5])
        r = c.get("/v1/destinations", params={"coordinates": q, "top": 5})
        assert r.status_code == 200, r.text
        assert len(r.json()["features"]) == 5 and r.json()["model_version"] == model_id
        assert r.headers["x-routeirl-model-version"] == str(model_id)
        assert r.headers["x-routeirl-network"].startswith("monaco_drive@")
        origin, dest = f"{pts[0][0]},{pts[0][1]}", f"{pts[-1][0]},{pts[-1][1]}"
        r = c.get("/v1/routes", params={"origin": origin, "destination": dest})
        assert r.status_code == 200 and r.json()["features"][0]["properties"]["kind"] == "most_likely"
        r = c.get("/v1/visitation", params={"origin": origin, "destination": dest})
        assert r.status_code == 200 and r.json()["features"]
        r = c.post("/v1/routes/probability", json={"points": pts})
        assert r.status_code == 200 and r.json()["log_probability"] <= 0
        r = c.post("/v1/match", json={"trips": [{"id": "m", "points": pts}]})
        assert r.status_code == 200 and r.json()["traces"][0]["n_points"] == len(pts) and r.json()["features"]

        # error bodies
        for resp, status, code in [
            (c.post("/v1/trajectories", content=b"{oops", headers={**auth, "content-type": "application/json"}),
             422, "invalid_json"),
            (c.post("/v1/trajectories", json={"trips": [{"points": [[500, 1], [2, 3]]}]}, headers=auth),
             422, "validation_error"),
            (c.get("/v1/destinations", params={"coordinates": "1,2;x"}), 422, "validation_error"),
            (c.get("/v1/destinations", params={"coordinates": "0,0"}), 422, "point_off_network"),
            (c.get("/v1/trajectories/999999", headers=auth), 404, "trajectory_not_found"),
            (c.get("/v1/models/999999"), 404, "model_not_found"),
            (c.get("/v1/jobs/999999"), 404, "job_not_found"),
            # /v1/match: empty, one point, NaN, swapped lat/lon, off the network, too many points
            (c.post("/v1/match", content=b"", headers={"content-type": "application/json"}), 422, "validation_error"),
            (c.post("/v1/match", json={"trips": [{"points": [pts[0]]}]}), 422, "validation_error"),
            (c.post("/v1/match", content=b'{"trips": [{"points": [[7.42, 43.73], [NaN, 1]]}]}',
                    headers={"content-type": "application/json"}), 422, "validation_error"),
            (c.post("/v1/match", json={"trips": [{"points": [[y, x] for x, y in pts]}]}), 422, "point_off_network"),
            (c.post("/v1/match", json={"trips": [{"points": [[0, 0], [0.01, 0.01]]}]}), 422, "point_off_network"),
            (c.post("/v1/match", json={"trips": [{"points": [pts[0]] * 20_001}]}), 413, "payload_too_large"),
        ]:
            assert resp.status_code == status, resp.text
            body = resp.json()
            assert set(body) == {"code", "message", "details"} and body["code"] == code and body["message"]

        n_trips = c.get("/v1/trajectories", headers=auth).json()["total"]
        assert n_trips == len(accepted)
        c.proc.kill()  # type: ignore[attr-defined]  # SIGKILL: no graceful shutdown
        c.proc.wait()  # type: ignore[attr-defined]

    with server(helpers.ROOT, data_dir, helpers.MONACO, log) as c:
        assert c.get("/v1/trajectories", headers=auth).json()["total"] == n_trips
        assert c.get("/v1/trajectories/" + str(accepted[0]["id"]), headers=auth).status_code == 200
        assert c.get("/v1/models/active").json()["id"] == model_id
        ready = c.get("/ready").json()
        assert ready["ready"] and ready["model_version"] == model_id
        r = c.get("/v1/destinations", params={"coordinates": q, "top": 5})
        assert r.status_code == 200 and r.json()["model_version"] == model_id


def _children(pid: int) -> list[int]:
    """Live uvicorn worker processes of supervisor ``pid`` (from /proc; not multiprocessing's resource tracker)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z" and b"spawn_main" in cmdline:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process tables from /proc")
def test_two_worker_processes(tmp_path: Path, helpers):
    """``--workers 2`` (what ./scripts/serve runs): the job runs once, in one process; every
    process serves the new model; killing the supervisor with SIGKILL does not leave orphaned
    workers serving (they notice and shut down)."""
    data_dir = tmp_path / "data"
    log = tmp_path / "server.log"
    trips = _simulated_trips(helpers, tmp_path / "client", 40)
    auth = {"X-API-Key": KEY}
    with server(helpers.ROOT, data_dir, helpers.MONACO, log, workers=2) as c:
        base = str(c.base_url)
        deadline = time.monotonic() + 60
        while len(workers := _children(c.proc.pid)) < 2:  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, workers
            time.sleep(0.2)
        assert c.post("/v1/trajectories", json={"trips": trips}, headers=auth).status_code == 201
        job_id = c.post("/v1/models", json={"heldout_fraction": 0.2}, headers=auth).json()["id"]
        deadline = time.monotonic() + 120
        while (job := c.get(f"/v1/jobs/{job_id}").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        assert job["status"] == "succeeded", job
        assert c.get("/v1/jobs").json()["total"] == 1  # queued once, run once
        time.sleep(1.0)  # every process refreshes within ROUTEIRL_WORKER_POLL_S (0.2 s)
        q = ";".join(f"{x},{y}" for x, y in trips[0]["points"][:5])
        for _ in range(12):  # fresh connections land on either process
            r = httpx.get(f"{base}/v1/destinations", params={"coordinates": q}, headers={"connection": "close"})
            assert r.status_code == 200 and r.json()["model_version"] == job["model_id"], r.text
        c.proc.kill()  # type: ignore[attr-defined]  # SIGKILL the supervisor only
        c.proc.wait()  # type: ignore[attr-defined]
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in workers):
            assert time.monotonic() < deadline, f"orphaned workers {workers} still running"
            time.sleep(0.2)


def test_the_service_starts_on_an_osm_pbf_extract(tmp_path: Path, helpers):
    """A .osm.pbf as Geofabrik hands it out: the service builds the same network as from the OSM XML."""
    import osmium

    from maxent_irl.roads import RoadNetwork

    pbf = tmp_path / "monaco.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as writer:
        for obj in osmium.FileProcessor(str(helpers.MONACO)):
            writer.add(obj)
    expected = RoadNetwork.load(helpers.MONACO).fingerprint
    with server(helpers.ROOT, tmp_path / "data", pbf, tmp_path / "server.log") as c:
        assert c.get("/health").status_code == 200
        assert c.get("/ready").json()["network"]["fingerprint"] == expected
