"""Fixtures: apps on the small Monaco network, each test with its own copy of a trained database.

Training happens once per session (``trained_dir``: a demo model from simulated trips, then
a second model trained through the API); each test copies that directory, so tests are
independent and fast.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # --import-mode=importlib does not put the rootdir on sys.path
    sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from app.main import create_app  # noqa: E402
from app.settings import Settings  # noqa: E402

MONACO_CANDIDATES = [ROOT / "data" / "monaco_drive.osm.bz2", Path("/work/shared/data/osm/monaco_drive.osm.bz2")]
MONACO = next((p for p in MONACO_CANDIDATES if p.is_file()), MONACO_CANDIDATES[0])
API_KEY = "test-key"


def make_settings(data_dir: Path, **overrides) -> Settings:
    values = {
        "network": str(MONACO),
        "data_dir": data_dir,
        "database": None,
        "demo": "never",
        "demo_trips": 80,
        "max_iter": 60,
        "worker_poll_s": 0.1,
        "api_key": None,
        "log_level": "warning",
        "allowed_hosts": ["testserver"],  # the TestClient's Host
    }
    values.update(overrides)
    return Settings(**values)


def wait_for(predicate, timeout: float = 120.0, interval: float = 0.1):
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {predicate}")
        time.sleep(interval)


def wait_job(client: TestClient, job_id: int, timeout: float = 120.0) -> dict:
    def done():
        job = client.get(f"/v1/jobs/{job_id}").json()
        return job if job["status"] in ("succeeded", "failed", "interrupted") else None

    return wait_for(done, timeout)


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with 80 simulated trips, demo model 1 and model 2 (trained via the API)."""
    data_dir = tmp_path_factory.mktemp("trained")
    app = create_app(make_settings(data_dir, demo="always"))
    with TestClient(app) as client:
        wait_for(lambda: client.get("/ready").status_code == 200, timeout=180)
        r = client.post("/v1/models", json={"regularization": 0.01, "heldout_fraction": 0.25})
        assert r.status_code == 202, r.text
        job = wait_job(client, r.json()["id"])
        assert job["status"] == "succeeded", job
        wait_for(lambda: client.get("/ready").json()["model_version"] == job["model_id"])
    return data_dir


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.fixture
def settings_factory(trained_dir: Path, tmp_path: Path):
    """``factory(**overrides)`` -> Settings on a private copy of the trained data directory."""
    data_dir = _copy(trained_dir, tmp_path / "data")

    def factory(**overrides) -> Settings:
        return make_settings(data_dir, **overrides)

    return factory


@pytest.fixture
def client(settings_factory) -> Iterator[TestClient]:
    """A client of an app with two trained models (model 2 active), no API key."""
    with TestClient(create_app(settings_factory())) as c:
        yield c


@pytest.fixture
def keyed_client(settings_factory) -> Iterator[TestClient]:
    """Like ``client`` but the service requires ``X-API-Key: test-key`` on writes."""
    with TestClient(create_app(settings_factory(api_key=API_KEY))) as c:
        yield c


@pytest.fixture
def empty_client(tmp_path: Path) -> Iterator[TestClient]:
    """An app on an empty database (no trips, no model, no demo)."""
    with TestClient(create_app(make_settings(tmp_path / "empty"))) as c:
        yield c


@pytest.fixture
def sample_trip(client: TestClient) -> dict:
    """Stored trip 1 as returned by GET /v1/trajectories/1."""
    return client.get("/v1/trajectories/1").json()


def lonlat_param(points) -> str:
    return ";".join(f"{x},{y}" for x, y in points)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def real_server(data_dir: Path, log: Path, workers: int = 2, **env: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """``python -m app serve`` (what ./scripts/serve runs) on Monaco and a free port: ``(base url, process)``.

    ``env``: extra ``ROUTEIRL_*`` variables (names without the prefix, e.g. ``API_KEY="k"``).
    Stopped with SIGTERM (SIGKILL after 20 s) at the end.
    """
    import httpx

    port = free_port()
    environ = {**os.environ, "ROUTEIRL_DATA_DIR": str(data_dir), "ROUTEIRL_NETWORK": str(MONACO),
               "ROUTEIRL_DEMO": "never", "ROUTEIRL_WORKER_POLL_S": "0.2", "ROUTEIRL_LOG_LEVEL": "warning",
               "OPENBLAS_NUM_THREADS": "1", **{f"ROUTEIRL_{k}": v for k, v in env.items()}}
    environ.pop("ROUTEIRL_DATABASE", None)
    cmd = [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers)]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=environ, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + "/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"server did not start (exit {proc.poll()}):\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="session")
def helpers():
    """The helpers above, for test modules (``--import-mode=importlib`` cannot import conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        ROOT=ROOT, MONACO=MONACO, API_KEY=API_KEY, make_settings=make_settings, wait_for=wait_for,
        wait_job=wait_job, lonlat_param=lonlat_param, real_server=real_server, free_port=free_port,
    )
