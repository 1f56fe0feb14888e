"""One log-likelihood + gradient evaluation in one process and on a local Dask cluster, at 300k and 1M states.

For each graph it prints, measured in this run:

* one process: wall and CPU seconds with the default solver threads (the machine's cores)
  and with one thread, and the parts: factorization of ``I - W`` (and ``(I - W)^T``) alone;
* a ``LocalCluster`` of 2 single-threaded worker processes: the one-off costs (cluster start,
  sending the MDP to every worker), then per evaluation the wall time, each worker's
  seconds (its factorization + its share of the solves), and the scheduling + transfer
  overhead (wall minus the slowest worker); the speed-up over each one-process run; and
  the largest differences of the log-likelihood and gradient from the one-process ones;
* peak memory: of this process (``ru_maxrss``), and of each worker.

Graphs: ``grid_route_mdp(276)`` (303,600 states) with 1,000 trips to 500 destinations sampled
from the model (as ``bench_likelihood.py``), and with ``--large`` ``grid_route_mdp(500)``
(998,000 states) with 4,000 trips to 2,000 destinations (backward random walks from each
destination: the cost of an evaluation depends only on the pairs, and sampling 4,000 trips
from the model at this size would take longer than the evaluation). The 1M run happens in
a child process, so its peak memory is its own.

    python benchmarks/bench_distributed.py            # 300k / 500 destinations
    python benchmarks/bench_distributed.py --large    # and 1M / 2,000 destinations (about 20 min here)
"""

from __future__ import annotations

import argparse
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_likelihood import GRID_THETA, sample_trips

from maxent_irl import RouteMDP
from maxent_irl.linsolve import TRANSPOSE_FACTOR_MIN_COLUMNS, fill_reducing_ordering
from maxent_irl.objective import TripSet, log_likelihood_and_gradient, make_trip_set, relevant_states
from maxent_irl.parallel import default_solver_threads, solver_threads_limit
from maxent_irl.soft_values import global_system
from maxent_irl.synthetic import grid_route_mdp


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def model_trips(mdp: RouteMDP, n_trips: int, n_dest: int, seed: int = 1) -> list[np.ndarray]:
    """Trips sampled from the model: ``bench_likelihood.py``'s workload, with its sampler."""
    return sample_trips(mdp, GRID_THETA, n_trips, n_dest, seed)


def walk_trips(mdp: RouteMDP, n_dest: int, per_dest: int, length: int, seed: int = 1) -> list[np.ndarray]:
    """``per_dest`` trips into each of ``n_dest`` destinations: random walks backwards from the destination."""
    rng = np.random.default_rng(seed)
    order = np.argsort(mdp.dst, kind="stable")
    start = np.searchsorted(mdp.dst[order], np.arange(mdp.n_states))
    count = np.bincount(mdp.dst, minlength=mdp.n_states)
    paths = []
    for d in rng.choice(mdp.n_states, n_dest, replace=False):
        for _ in range(per_dest):
            walk = [int(d)]
            for _ in range(length):
                s = walk[-1]
                walk.append(int(mdp.src[order[start[s] + rng.integers(count[s])]]))
            paths.append(np.asarray(walk[::-1], dtype=np.int64))
    return paths


def one_process(mdp: RouteMDP, trips: TripSet, ordering: np.ndarray, threads: int) -> tuple[float, float, float,
                                                                                             np.ndarray]:
    """``(wall s, CPU s, log-likelihood, gradient)`` of one evaluation with ``threads`` solver threads."""
    logw = mdp.features @ GRID_THETA
    with solver_threads_limit(threads):
        t, c = time.perf_counter(), time.process_time()
        ll, grad = log_likelihood_and_gradient(mdp, trips, logw, ordering=ordering)
        return time.perf_counter() - t, time.process_time() - c, ll, grad


def factorization_seconds(mdp: RouteMDP, trips: TripSet, ordering: np.ndarray, n_dest: int) -> float:
    logw = mdp.features @ GRID_THETA
    relevant = relevant_states(mdp, trips)
    t = time.perf_counter()
    global_system(mdp, logw, ordering, with_transpose=n_dest >= TRANSPOSE_FACTOR_MIN_COLUMNS, relevant=relevant)
    return time.perf_counter() - t


def run(name: str, mdp: RouteMDP, paths: list[np.ndarray], rounds: int) -> None:
    from distributed import Client, LocalCluster

    from maxent_irl.distributed import DaskObjective

    logging.getLogger("distributed").setLevel(logging.ERROR)  # its own config logs every connection at INFO

    trips = make_trip_set(mdp, paths)
    n_dest = np.unique(trips.pair_dest).size
    print(f"\n== {name}: {mdp.n_states:,} states, {mdp.n_transitions:,} transitions, {trips.n_trips:,} trips, "
          f"{n_dest:,} destinations, {trips.pair_origin.size:,} pairs", flush=True)
    t = time.perf_counter()
    ordering = fill_reducing_ordering(mdp.adjacency())
    print(f"   METIS ordering (once per MDP): {time.perf_counter() - t:.1f} s", flush=True)
    cores = default_solver_threads()
    t_fact = factorization_seconds(mdp, trips, ordering, n_dest)
    half = n_dest // 2
    print(f"   factorization of I - W and (I - W)^T alone (1 thread, every evaluation and every worker pays it; "
          f"transposed factor for >= {TRANSPOSE_FACTOR_MIN_COLUMNS} destinations, a share has {half}): "
          f"{t_fact:.2f} s", flush=True)
    wall, cpu, ll, grad = one_process(mdp, trips, ordering, cores)
    print(f"   one process, {cores} solver threads: {wall:.2f} s wall, {cpu:.2f} s CPU; "
          f"peak RSS {peak_rss_gb():.2f} GB", flush=True)
    wall1, cpu1, ll1, grad1 = one_process(mdp, trips, ordering, 1)
    print(f"   one process, 1 solver thread: {wall1:.2f} s wall, {cpu1:.2f} s CPU", flush=True)

    t = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        started = time.perf_counter() - t
        t = time.perf_counter()
        with DaskObjective(client, mdp, trips, ordering=ordering) as objective:
            sent = time.perf_counter() - t
            print(f"   Dask LocalCluster 2 workers x 1 thread: started in {started:.1f} s; MDP and trips sent to "
                  f"every worker in {sent:.1f} s (once per fit); {len(objective.shares)} shares", flush=True)
            for r in range(rounds):
                t = time.perf_counter()
                ll_d, grad_d = objective(GRID_THETA)
                wall_d = time.perf_counter() - t
                secs = objective.last_seconds
                print(f"   round {r}: {wall_d:.2f} s wall; worker seconds {', '.join(f'{s:.2f}' for s in secs)} "
                      f"(each: its factorization ~{t_fact:.1f} s + its share's solves); scheduling + transfer "
                      f"{wall_d - max(secs):.2f} s; speed-up {wall / wall_d:.2f}x over one process with {cores} "
                      f"threads, {wall1 / wall_d:.2f}x over one thread", flush=True)
            worker_peak = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6)
    rel_ll = abs(ll_d - ll) / abs(ll)
    rel_g = float(np.max(np.abs(grad_d - grad)) / np.max(np.abs(grad)))
    rel_g1 = float(np.max(np.abs(grad1 - grad)) / np.max(np.abs(grad)))
    print(f"   identical numbers: log-likelihood {ll:.6f}; Dask vs one process: {rel_ll:.1e} relative "
          f"(gradient {rel_g:.1e} of its largest entry); 1 vs {cores} threads: {abs(ll1 - ll) / abs(ll):.1e} "
          f"({rel_g1:.1e})", flush=True)
    print(f"   peak memory: driver {peak_rss_gb():.2f} GB, workers "
          f"{', '.join(f'{v:.2f}' for v in worker_peak.values())} GB", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--large", action="store_true", help="also the 1M-state graph with 2,000 destinations")
    ap.add_argument("--only", choices=["300k", "1m"], help=argparse.SUPPRESS)  # one graph in this process
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--rows", type=int, default=276, help="grid size of the first graph (a quick try: 60)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.only in (None, "300k"):
        mdp = grid_route_mdp(args.rows)
        t = time.perf_counter()
        paths = model_trips(mdp, 1000, 500)
        print(f"sampled 1,000 trips from the model in {time.perf_counter() - t:.1f} s", flush=True)
        run(f"grid {args.rows}x{args.rows}" + (" (Pittsburgh scale)" if args.rows == 276 else ""), mdp, paths,
            args.rounds)
    if args.only == "1m":
        mdp = grid_route_mdp(500)
        run("grid 500x500 (metropolitan scale)", mdp, walk_trips(mdp, 2000, 2, 150), args.rounds)
    elif args.large and args.only is None:
        subprocess.run([sys.executable, __file__, "--only", "1m", "--rounds", str(args.rounds)], check=True)


if __name__ == "__main__":
    main()
