"""The likelihood on a real Dask cluster (``LocalCluster``, worker processes): same numbers, lost workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from distributed import Client, LocalCluster

import maxent_irl.distributed as dist
from maxent_irl import DistributedError, MaxEntIRL, PartitionFunctionDivergedError, RouteModel
from maxent_irl.objective import log_likelihood_and_gradient, make_trip_set
from maxent_irl.soft_values import transition_log_weights
from maxent_irl.synthetic import grid_route_mdp

THETA = np.array([-5.0, -3.0, -0.9, -0.4, -4.5, -0.4])  # minor/major km, left, right, u-turn, segment


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """Two single-threaded worker processes, as on a 2-core machine."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as c:
        yield c


def _trips(rows: int, n: int, n_dest: int, seed: int = 0) -> tuple[object, list[np.ndarray]]:
    mdp = grid_route_mdp(rows, seed=seed)
    rng = np.random.default_rng(seed)
    dests = rng.choice(mdp.n_states, n_dest, replace=False)
    d = rng.choice(dests, n)
    o = rng.integers(0, mdp.n_states, n)
    o[o == d] = (o[o == d] + 1) % mdp.n_states
    return mdp, RouteModel(mdp, THETA).sample_trips(o, d, random_state=seed)


@pytest.mark.parametrize("n_shares", [None, 3])
def test_an_evaluation_on_the_cluster_equals_one_process(client: Client, n_shares: int | None) -> None:
    mdp, paths = _trips(9, 60, 14)
    trips = make_trip_set(mdp, paths)
    theta = THETA * 1.2
    ll_local, g_local = log_likelihood_and_gradient(mdp, trips, transition_log_weights(mdp.features, theta))
    with dist.DaskObjective(client, mdp, trips, n_shares=n_shares) as objective:
        ll, g = objective(theta)
        assert len(objective.shares) == (n_shares or 2)
        assert len(objective.last_seconds) == len(objective.shares)
        # a second theta reuses the broadcast problem
        ll2, _ = objective(theta * 1.1)
    assert abs(ll - ll_local) <= 1e-9 * abs(ll_local)
    assert np.max(np.abs(g - g_local)) <= 1e-8 * np.max(np.abs(g_local))
    ll2_local, _ = log_likelihood_and_gradient(mdp, trips, transition_log_weights(mdp.features, theta * 1.1))
    assert abs(ll2 - ll2_local) <= 1e-9 * abs(ll2_local)


def test_shares_cover_every_pair_once() -> None:
    mdp, paths = _trips(7, 40, 9)
    trips = make_trip_set(mdp, paths)
    shares = dist.make_shares(trips, np.arange(mdp.n_states)[::-1], 4)
    index = np.concatenate([s.index for s in shares])
    assert np.array_equal(np.sort(index), np.arange(trips.pair_origin.size))
    # a destination lives in one share only
    dest_sets = [set(s.pair_dest.tolist()) for s in shares]
    assert all(not (a & b) for i, a in enumerate(dest_sets) for b in dest_sets[i + 1:])
    assert len(dist.make_shares(trips, np.arange(mdp.n_states), 100)) == np.unique(trips.pair_dest).size


def test_a_diverging_theta_raises_as_in_one_process(client: Client) -> None:
    mdp, paths = _trips(6, 20, 5)
    with dist.DaskObjective(client, mdp, make_trip_set(mdp, paths)) as objective, \
            pytest.raises(PartitionFunctionDivergedError):
        objective(np.zeros(mdp.n_features))


def test_a_fit_on_the_cluster_equals_the_fit_in_one_process(client: Client) -> None:
    mdp, paths = _trips(8, 80, 12, seed=1)
    local = MaxEntIRL(l2=1e-3).fit(mdp, paths)
    remote = MaxEntIRL(l2=1e-3, client=client).fit(mdp, paths)
    # every evaluation agrees to ~1e-15; the optimizers' paths may then part by rounding, within its tolerance
    np.testing.assert_allclose(remote.theta_, local.theta_, rtol=1e-5, atol=1e-7)
    assert remote.log_likelihood_ == pytest.approx(local.log_likelihood_, rel=1e-9)
    again = MaxEntIRL(l2=1e-3, client=client).fit(mdp, paths)
    np.testing.assert_array_equal(again.theta_, remote.theta_)  # on the cluster: deterministic


def _kill_a_busy_worker(client: Client, killed: list[str], stop: threading.Event) -> None:
    """SIGKILL the first worker seen running one of our shares (mid-task, not between evaluations)."""
    pids = client.run(os.getpid)
    while not stop.is_set():
        for address, keys in client.processing().items():
            if any(str(k).startswith("routeirl-share-") for k in keys):
                os.kill(pids[address], signal.SIGKILL)
                killed.append(address)
                return
        time.sleep(0.005)


def test_a_worker_killed_mid_fit_changes_nothing(client: Client) -> None:
    """Dask re-runs the lost share on the other worker; the fit ends at the same theta, to the last bit."""
    mdp, paths = _trips(16, 150, 40, seed=2)
    undisturbed = MaxEntIRL(l2=1e-3, client=client).fit(mdp, paths)
    killed: list[str] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_a_busy_worker, args=(client, killed, stop))

    def start_killer(progress: object) -> None:
        if not killer.is_alive() and not killed:
            killer.start()  # after the first iteration: the kill lands in a later evaluation

    try:
        remote = MaxEntIRL(l2=1e-3, client=client, callback=start_killer).fit(mdp, paths)
    finally:
        stop.set()
    assert killed, "no worker was seen running a share"
    np.testing.assert_array_equal(remote.theta_, undisturbed.theta_)
    assert remote.n_iter_ == undisturbed.n_iter_
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker
    assert killed[0] not in client.scheduler_info()["workers"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_no_scheduler_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dist, "DEFAULT_CONNECT_TIMEOUT_S", 1.0)
    mdp, paths = _trips(5, 10, 3)
    address = f"tcp://127.0.0.1:{_free_port()}"
    start = time.perf_counter()
    with pytest.raises(DistributedError, match="cannot reach the Dask scheduler at " + address):
        MaxEntIRL(client=address).fit(mdp, paths)
    assert time.perf_counter() - start < 30


def test_a_scheduler_lost_mid_fit_is_a_clear_error(tmp_path: Path) -> None:
    """A scheduler and a worker as separate processes (as in docker-compose); the scheduler is killed mid-fit."""
    mdp, paths = _trips(14, 120, 30, seed=3)
    dask_cli = str(Path(sys.executable).with_name("dask"))
    address = f"tcp://127.0.0.1:{_free_port()}"
    scheduler = subprocess.Popen([dask_cli, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                                  "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([dask_cli, "worker", address, "--nthreads", "1", "--no-dashboard",
                               "--death-timeout", "5"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill_scheduler(progress: object) -> None:
        if scheduler.poll() is None:
            scheduler.kill()

    try:
        with Client(address, timeout=90) as c:  # processes start slowly on a busy machine
            c.wait_for_workers(1, timeout=90)
        start = time.perf_counter()
        with pytest.raises(DistributedError, match="Dask cluster was lost"):
            MaxEntIRL(l2=1e-3, client=address, callback=kill_scheduler).fit(mdp, paths)
        assert time.perf_counter() - start < 90
    finally:
        for p in (scheduler, worker):
            p.kill()
            p.wait()


def test_without_a_cluster_dask_is_not_imported() -> None:
    code = (
        "import sys, numpy as np\n"
        "from maxent_irl import MaxEntIRL\n"
        "from maxent_irl.synthetic import grid_route_mdp\n"
        "mdp = grid_route_mdp(4)\n"
        "MaxEntIRL(l2=1e-2, max_iter=3).fit(mdp, [[0, int(mdp.dst[mdp.src == 0][0])]])\n"
        "import app.main\n"
        "bad = sorted(m for m in ('dask', 'distributed') if m in sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))), timeout=120)
