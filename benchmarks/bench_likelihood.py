"""Time one log-likelihood + gradient evaluation, and a full fit, against Ziebart's Algorithm 1.

Prints, for each graph: states, transitions, trips, destinations, the time of one
evaluation of the fast passes (median of --repeat), peak memory of the process, and the
same evaluation by a plain implementation of Algorithm 1 (fixed horizon N, all
destinations as one dense block per iteration) run in this process, with their ratio
and the agreement of the two log-likelihoods.

Algorithm 1 needs N large enough to converge; N is the first of 100, 200, 400, ... for
which its log-likelihood is within 1e-6 (relative) of the exact one. On the large graph
running it for all 500 destinations would take hours, so it runs on a subset of
destinations (with their trips) and its time is scaled linearly: the printout says so.

It also times the same evaluation under SuperLU's minimum-degree ordering (``mmd``)
instead of the default METIS nested dissection, to show what the ordering buys.

    python benchmarks/bench_likelihood.py               # Andorra (real OSM) + ~7k grid + 300k grid
    python benchmarks/bench_likelihood.py --skip-large  # the two small graphs only
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maxent_irl import MaxEntIRL, RouteMDP, RouteModel
from maxent_irl.linsolve import fill_reducing_ordering
from maxent_irl.objective import TripSet, log_likelihood_and_gradient, make_trip_set
from maxent_irl.reference import algorithm1_log_likelihood_and_gradient
from maxent_irl.synthetic import grid_route_mdp
from maxent_irl.uncertainty import covariance, information_matrix

GRID_THETA = np.array([-5.0, -3.0, -0.9, -0.4, -4.5, -0.4])  # minor/major km, left, right, u-turn, segment


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def sample_trips(mdp: RouteMDP, theta: np.ndarray, n_trips: int, n_dest: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    dests = rng.choice(mdp.n_states, n_dest, replace=False)
    d = np.concatenate([dests, rng.choice(dests, n_trips - n_dest)])
    o = rng.integers(0, mdp.n_states, n_trips)
    o[o == d] = (o[o == d] + 1) % mdp.n_states
    return RouteModel(mdp, theta).sample_trips(o, d, random_state=seed)


def time_eval(
    mdp: RouteMDP, trips: TripSet, theta: np.ndarray, ordering: np.ndarray, repeat: int
) -> tuple[float, float, np.ndarray]:
    logw = mdp.features @ theta
    times, ll, grad = [], 0.0, np.zeros(mdp.n_features)
    for _ in range(repeat):
        t = time.perf_counter()
        ll, grad = log_likelihood_and_gradient(mdp, trips, logw, ordering=ordering)
        times.append(time.perf_counter() - t)
    return float(np.median(times)), ll, grad


def time_algorithm1(mdp: RouteMDP, trips: TripSet, theta: np.ndarray, ll_exact: float) -> tuple[float, int, float]:
    """Time of Algorithm 1 at the first horizon N of 100, 200, 400, ... that reaches 1e-6 relative accuracy."""
    logw = mdp.features @ theta
    for n_iter in (100 * 2**i for i in range(9)):
        t = time.perf_counter()
        ll, _ = algorithm1_log_likelihood_and_gradient(mdp, trips, logw, n_iter)
        dt = time.perf_counter() - t
        if np.isfinite(ll) and abs(ll - ll_exact) <= 1e-6 * abs(ll_exact):
            return dt, n_iter, ll
    return dt, n_iter, ll


def subset(paths: list[np.ndarray], n_dest: int) -> list[np.ndarray]:
    dests = np.unique([p[-1] for p in paths])[:n_dest]
    return [p for p in paths if p[-1] in set(dests.tolist())]


def run(name: str, mdp: RouteMDP, theta: np.ndarray, n_trips: int, n_dest: int, repeat: int,
        fit: bool, alg1_dest: int | None) -> None:
    print(f"\n== {name}: {mdp.n_states:,} states, {mdp.n_transitions:,} transitions, {mdp.n_features} features")
    t = time.perf_counter()
    ordering = fill_reducing_ordering(mdp.adjacency())
    print(f"   fill-reducing ordering (once per MDP): {time.perf_counter() - t:.2f} s")
    t = time.perf_counter()
    paths = sample_trips(mdp, theta, n_trips, n_dest, seed=1)
    trips = make_trip_set(mdp, paths)
    n_d = np.unique(trips.destinations).size
    print(f"   sampled {trips.n_trips:,} trips to {n_d} destinations (mean {np.mean([len(p) for p in paths]):.0f} "
          f"states) in {time.perf_counter() - t:.1f} s")
    dt, ll, grad = time_eval(mdp, trips, theta, ordering, repeat)
    print(f"   fast passes: one log-likelihood + gradient = {dt:.3f} s (median of {repeat}); "
          f"peak RSS so far {peak_rss_gb():.2f} GB")
    t = time.perf_counter()
    mmd = fill_reducing_ordering(mdp.adjacency(), method="mmd")
    t_order = time.perf_counter() - t
    dt_mmd, ll_mmd, grad_mmd = time_eval(mdp, trips, theta, mmd, repeat)
    rel_grad = float(np.abs(grad - grad_mmd).max() / np.abs(grad).max())
    print(f"   with SuperLU's minimum-degree ordering instead (computed in {t_order:.2f} s): {dt_mmd:.3f} s "
          f"(default METIS ordering {dt_mmd / dt:.2f}x faster; log-likelihoods differ by {abs(ll - ll_mmd):.1e}, "
          f"gradients by {rel_grad:.1e} relative)")
    if alg1_dest is None:
        t1, n_iter, ll1 = time_algorithm1(mdp, trips, theta, ll)
        print(f"   Algorithm 1 (N={n_iter}): {t1:.3f} s, log-lik {ll1:.6f} vs {ll:.6f}; ratio {t1 / dt:.1f}x")
    else:
        sub = subset(paths, alg1_dest)
        sub_trips = make_trip_set(mdp, sub)
        ll_sub, _ = log_likelihood_and_gradient(mdp, sub_trips, mdp.features @ theta, ordering=ordering)
        t1, n_iter, ll1 = time_algorithm1(mdp, sub_trips, theta, ll_sub)
        scaled = t1 * n_d / alg1_dest
        print(f"   Algorithm 1 (N={n_iter}) on {alg1_dest} of {n_d} destinations ({sub_trips.n_trips} trips): "
              f"{t1:.1f} s, log-lik {ll1:.6f} vs {ll_sub:.6f}; scaled to all destinations {scaled:.0f} s "
              f"(extrapolated); ratio {scaled / dt:.0f}x")
    if fit:
        t = time.perf_counter()
        est = MaxEntIRL().fit(mdp, paths)
        elapsed = time.perf_counter() - t
        used = mdp.features[trips.transition_counts > 0].any(axis=0)  # features the trips exercise at all
        err = np.abs(est.theta_ - theta) / np.abs(theta)
        # how far each weight may be from the truth at this sample size: its standard error
        cov = covariance(information_matrix(mdp, paths, est.theta_, ordering=ordering))
        with np.errstate(invalid="ignore", divide="ignore"):
            se = np.sqrt(np.diag(cov))
            z = (est.theta_ - theta) / se
            pinned = used & (se / np.abs(est.theta_) <= 0.015)  # as `routeirl evaluate`'s "exercised"
        finite_z = used & np.isfinite(z)
        print(f"   full fit: {elapsed:.2f} s, {est.n_iter_} iterations; of the {int(used.sum())} features the trips "
              f"use, {int(pinned.sum())} pinned down (relative SE <= 1.5 %)"
              + (f", all within {100 * err[pinned].max():.1f} % of the truth" if pinned.any() else "")
              + f"; error / SE over the {int(finite_z.sum())} identified ones: max |z| {np.abs(z[finite_z]).max():.2f}"
              f" (rare features are not identified by {trips.n_trips} trips: max relative error {err[used].max():.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-large", action="store_true", help="skip the 300k-state graph")
    ap.add_argument("--only-large", action="store_true", help="only the 300k-state graph")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from maxent_irl.roads import RoadNetwork, default_true_theta

    if not args.only_large:
        net = RoadNetwork.load(Path(__file__).resolve().parents[1] / "data" / "andorra_drive.osm.bz2")
        run("Andorra (OSM, embedded default)", net.mdp, default_true_theta(net.feature_names), 1800, 450,
            args.repeat, fit=True, alg1_dest=None)
        run("grid 42x42 (~7k states)", grid_route_mdp(42), GRID_THETA, 1800, 450, args.repeat, fit=True,
            alg1_dest=None)
    if not args.skip_large:
        big = grid_route_mdp(276)
        run("grid 276x276 (Pittsburgh scale)", big, GRID_THETA, 1000, 500, max(1, args.repeat - 1), fit=False,
            alg1_dest=10)


if __name__ == "__main__":
    main()
