"""Does the action model plan better routes when it is fitted on fewer trips?

The probe behind docs/evaluation.md ("2,000 trips"): at the issue's minimum of 2,000 trips
MaxEnt's lead over the action model's most likely path is a third of its lead at 50,000.
This simulates the default evaluation's trips (same seeds, same split), fits the action model
three ways, and prints for each fit its training log-likelihood per trip (on the first 5,000
training trips), its held-out Log Prob, the matching and 90 % match of its most likely route
and of its lowest-cost route, and its time, next to the true θ's most likely route:

- a warm start on ``--warm`` trips, then all training trips (the evaluation's default before),
- a cold start on all training trips (the default now: the same optimum, sooner),
- cold starts on ``--draws`` seeded subsamples of ``--subsample`` trips (the training size of a
  2,000-trip run), so that the spread over draws shows.

The log-likelihood is measured on the first 5,000 training trips, most of which a subsample fit
never saw; "matching" is that of the model's most likely route unless it says lowest-cost.

    .venv/bin/python benchmarks/bench_action_fit_size.py                  # seed 0, 50,000 trips, about 5 min
    .venv/bin/python benchmarks/bench_action_fit_size.py --seed 1 --test-trips 2000
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.baselines import ActionBasedModel
from evaluation.config import EvalConfig
from evaluation.data import get_trips, load_network, split_train_test, usable_paths
from evaluation.metrics import MATCH90, route_matches
from evaluation.models import fit_action_model
from maxent_irl import RouteModel


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--simulate", type=int, default=50000)
    p.add_argument("--test-trips", type=int, default=4000, help="held-out trips scored (default 4000)")
    p.add_argument("--subsample", type=int, default=1600, help="training trips of the small fit (default 1600)")
    p.add_argument("--warm", type=int, default=2000, help="warm-start trips of the first fit (default 2000)")
    p.add_argument("--draws", type=int, default=3, help="subsamples drawn for the small fit (default 3)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    cfg = EvalConfig(seed=args.seed, simulate=args.simulate, progress=False)
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(cfg.seed).spawn(4)]  # as run_evaluation
    net = load_network(cfg)
    raw, true_theta = get_trips(cfg, net, {})
    paths, _ = usable_paths(net.mdp, raw)
    train_idx, test_idx = split_train_test(len(paths), cfg.test_fraction, seeds[0])
    train = [paths[i] for i in train_idx]
    test = [paths[i] for i in test_idx][: args.test_trips]
    L = net.segment_length_m

    def pct(match: np.ndarray) -> str:
        return f"{100 * match.mean():6.2f} % / {100 * (match >= MATCH90 - 1e-12).mean():6.2f} %"

    oracle = route_matches(RouteModel(net.mdp, true_theta).most_likely_path, test, L)
    print(f"{len(train)} training trips, {len(test)} held-out trips scored, seed {args.seed}")
    print(f"{'true θ (most likely route)':45s} matching / 90 %: {pct(oracle)}")
    rng = np.random.default_rng(args.seed + 1)
    n_sub = min(args.subsample, len(train))
    subsamples = [[train[i] for i in np.sort(rng.choice(len(train), n_sub, replace=False))] for _ in range(args.draws)]
    fits = [
        (f"warm start on {args.warm}, then all",
         lambda: fit_action_model(net.mdp, train, 0, 500, args.warm, seeds[1], False)[0]),
        ("cold start on all (the default)", lambda: ActionBasedModel(max_iter=500).fit(net.mdp, train)),
        *[(f"cold start on {n_sub} trips, draw {k}", lambda sub=sub: ActionBasedModel(max_iter=500).fit(net.mdp, sub))
          for k, sub in enumerate(subsamples)],
    ]
    for name, fit in fits:
        t0 = time.perf_counter()
        model = fit()
        secs = time.perf_counter() - t0
        ll = float(np.mean(model.path_log_prob(train[:5000])))
        lp = float(np.mean(model.path_log_prob(test)))
        print(f"{name:45s} train LL/trip {ll:.4f}, held-out Log Prob {lp:.4f}, "
              f"most likely route {pct(route_matches(model.most_likely_path, test, L))}, "
              f"lowest-cost route {pct(route_matches(model.lowest_cost_path, test, L))}, "
              f"{model.n_iter_} iterations, {secs:.0f} s", flush=True)


if __name__ == "__main__":
    main()
