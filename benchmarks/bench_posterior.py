"""Time the destination posterior over every segment of a large network (issue 14: <= 50 ms on 300k states).

A query is two rows of ``M = (I - W)^-1`` (two transposed solves with the model's factorization,
made once) plus the vector arithmetic of ``log P(d) + log M[B, d] - log M[A, d]`` and the
normalization; the optional summaries (clusters, expected-distance point) are timed apart.
The reference in the same process is the same posterior computed with the other solve mode
(a factorization of ``(I - W)^T`` used without transposing vs SuperLU's transposed solve).

    python benchmarks/bench_posterior.py                 # 300k-state grid (276 x 276 blocks), 50 queries
    python benchmarks/bench_posterior.py --side 100 --queries 200
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maxent_irl import RouteModel
from maxent_irl.destination_summaries import DestinationSummarizer, geometric_median
from maxent_irl.synthetic import grid_route_mdp

THETA = np.array([-5.0, -3.0, -0.9, -0.4, -4.5, -0.4])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=274, help="grid side (states = 4 side (side - 1))")
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    mdp = grid_route_mdp(a.side, u_turns=True)
    print(f"grid: {mdp.n_states:,} states, {mdp.n_transitions:,} transitions")
    model = RouteModel(mdp, THETA)
    t0 = time.perf_counter()
    model.system  # noqa: B018 - the factorization, once per model
    t_factor = time.perf_counter() - t0
    print(f"factorization (once per model): {t_factor:.2f} s")
    rng = np.random.default_rng(a.seed)
    prior = np.log(rng.random(mdp.n_states) + 0.1)
    prior -= np.logaddexp.reduce(prior)
    paths = []
    while len(paths) < a.queries:
        o, d = rng.integers(0, mdp.n_states, 2)
        p = model.most_likely_path(int(o), int(d))
        if p.size >= 4:
            paths.append(p[: max(2, p.size // 2)])
    times = []
    for p in paths:
        model._rows.clear()  # fresh rows: every query solves for both of its ends
        t0 = time.perf_counter()
        lp = model.destination_log_posterior(p, prior)
        post = np.exp(lp - lp.max())
        post /= post.sum()
        times.append(time.perf_counter() - t0)
    t = np.array(times) * 1e3
    print(f"posterior over all {mdp.n_states:,} segments: median {np.median(t):.1f} ms, p90 {np.percentile(t, 90):.1f} "
          f"ms, max {t.max():.1f} ms ({a.queries} queries)")
    # the same queries once the transposed factor exists (what the service prepares for large networks)
    model.system.lu.prepare_transposed_solves()
    fast = []
    for p in paths:
        model._rows.clear()
        t0 = time.perf_counter()
        lp2 = model.destination_log_posterior(p, prior)
        post = np.exp(lp2 - lp2.max())
        post /= post.sum()
        fast.append(time.perf_counter() - t0)
    f = np.array(fast) * 1e3
    print(f"with (I - W)^T factorized too: median {np.median(f):.1f} ms, p90 {np.percentile(f, 90):.1f} ms, "
          f"max {f.max():.1f} ms; ratio to the transposed solves above {np.median(t) / np.median(f):.2f}")
    np.testing.assert_allclose(np.exp(lp2 - lp2.max()), np.exp(lp - lp.max()), atol=1e-12)  # same answer
    # a trip in progress: the same start A, a new current segment B each time (one new row per query)
    start = paths[0][0]
    follow = []
    for p in paths[1:]:
        q = model.most_likely_path(int(start), int(p[-1]))
        t0 = time.perf_counter()
        lp3 = model.destination_log_posterior(q, prior)
        post = np.exp(lp3 - lp3.max())
        post /= post.sum()
        follow.append(time.perf_counter() - t0)
    g = np.array(follow) * 1e3
    print(f"a trip in progress (its start's row kept, one new row per query): median {np.median(g):.1f} ms, "
          f"p90 {np.percentile(g, 90):.1f} ms, max {g.max():.1f} ms")
    xy = np.column_stack([rng.random(mdp.n_states), rng.random(mdp.n_states)]) * 27_000  # summaries on a 27 km square
    summ = DestinationSummarizer(xy)
    t0 = time.perf_counter()
    summ.top_destinations(post, 500.0, k=5)
    t_cl = time.perf_counter() - t0
    t0 = time.perf_counter()
    geometric_median(xy, post, mass=0.999)
    t_gm = time.perf_counter() - t0
    print(f"summaries of one posterior: clusters {t_cl * 1e3:.1f} ms, expected-distance point {t_gm * 1e3:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
