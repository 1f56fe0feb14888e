"""The deployment files, run on the host: docker compose's Dask profile starts a cluster a fit can use.

Docker cannot run here, so the commands the compose file gives its services run as host
processes from the repository root (the image's /app), with the repository's .venv (the
image's).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import yaml
from distributed import Client

from maxent_irl import MaxEntIRL, RouteModel
from maxent_irl.synthetic import grid_route_mdp
from tests.app.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_the_api_service_takes_the_scheduler_from_the_environment() -> None:
    services = _compose()["services"]
    assert services["api"]["environment"]["ROUTEIRL_DASK_SCHEDULER"] == "${ROUTEIRL_DASK_SCHEDULER:-}"
    for name in ("dask-scheduler", "dask-worker"):
        assert services[name]["profiles"] == ["dask"] and services[name]["image"] == services["api"]["image"]


def test_the_dask_profile_commands_run_a_cluster_a_fit_uses() -> None:
    services = _compose()["services"]
    port = free_port()
    scheduler_cmd = [str(a).replace("8786", str(port)) for a in services["dask-scheduler"]["command"]]
    worker_cmd = [str(a).replace("tcp://dask-scheduler:8786", f"tcp://127.0.0.1:{port}")
                  for a in services["dask-worker"]["command"]]
    assert scheduler_cmd[:2] == [".venv/bin/dask", "scheduler"] and "--nthreads" in worker_cmd
    procs = [subprocess.Popen([*scheduler_cmd, "--host", "127.0.0.1"], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    procs += [subprocess.Popen(worker_cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
              for _ in range(services["dask-worker"]["deploy"]["replicas"])]
    try:
        mdp = grid_route_mdp(6)
        rng = np.random.default_rng(0)
        o, d = rng.integers(0, mdp.n_states, 30), rng.integers(0, mdp.n_states, 30)
        d[d == o] = (d[d == o] + 1) % mdp.n_states
        paths = RouteModel(mdp, np.array([-5.0, -3.0, -0.9, -0.4, -4.5, -0.4])).sample_trips(o, d, random_state=0)
        local = MaxEntIRL(l2=1e-2).fit(mdp, paths)
        with Client(f"tcp://127.0.0.1:{port}", timeout=90) as client:  # processes start slowly on a busy machine
            client.wait_for_workers(len(procs) - 1, timeout=90)
        remote = MaxEntIRL(l2=1e-2, client=f"tcp://127.0.0.1:{port}").fit(mdp, paths)
        np.testing.assert_allclose(remote.theta_, local.theta_, rtol=1e-5, atol=1e-7)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
