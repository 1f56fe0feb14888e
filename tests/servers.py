"""A real uvicorn serving app.main:app in a subprocess on a free port, for end-to-end tests."""

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

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def uvicorn_server(env_overrides: dict[str, str], log: Path, workers: int = 1, ready_timeout_s: float = 90.0,
                   wait_ready: bool = False) -> Iterator[httpx.Client]:
    """Start the service with ``ROUTEIRL_*`` overrides; a client on its base URL (``client.port``, ``client.proc``).

    Waits for ``/health`` (or ``/ready`` with ``wait_ready``); stops the server with SIGTERM afterwards.
    """
    port = free_port()
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "ROUTEIRL_WORKER_POLL_S": "0.2", **env_overrides}
    env.pop("ROUTEIRL_DATABASE", None) if "ROUTEIRL_DATABASE" not in env_overrides else None
    cmd = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers)]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        deadline = time.monotonic() + ready_timeout_s
        path = "/ready" if wait_ready else "/health"
        while True:
            try:
                if client.get(path).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"server did not start (exit {proc.poll()}):\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        client.port = port  # type: ignore[attr-defined]
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
