"""Does the action model's lowest-cost route ("Action (costs)") reach the true θ's most likely route?

The quick probe behind docs/evaluation.md ("The action model's fit is a constrained maximum
likelihood"): simulate MaxEnt drivers with ``default_true_theta``, optionally with some weights
replaced, fit the action-based model on the training share, and print the true θ's most likely
route minus each of the action model's routes (matching and 90 % match, paired 95 % intervals)
on the held-out trips, with the fit's status. MaxEnt's most likely route converges to the true θ's,
so this measures the ceiling of "MaxEnt − Action (costs)" without fitting MaxEnt.

    .venv/bin/python benchmarks/bench_action_costs.py                          # 12,000 trips, seed 0
    .venv/bin/python benchmarks/bench_action_costs.py --weight segment=-0.2    # the paper's ~1.4 s per edge
    .venv/bin/python benchmarks/bench_action_costs.py --network data/monaco_drive.osm.bz2 --seed 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.calibration import calibrate_temperature
from evaluation.data import split_train_test, usable_paths
from evaluation.metrics import MATCH90, paired_difference, route_matches
from evaluation.models import fit_action_model
from maxent_irl import RouteModel
from maxent_irl.roads import RoadNetwork, default_true_theta, simulate_trips


def _weight(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    return name, float(value)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trips", type=int, default=12000)
    p.add_argument("--test-fraction", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--network", default=None, help="OSM file or saved .npz (default: Andorra)")
    p.add_argument("--od", choices=("random", "clustered"), default="random")
    p.add_argument("--temperature", type=float, default=None, help="default: calibrated (target 90%% share 0.5)")
    p.add_argument("--weight", type=_weight, action="append", default=[], metavar="NAME=VALUE",
                   help="replace one weight of default_true_theta (before dividing by the temperature)")
    a = p.parse_args(argv)

    start = time.perf_counter()
    net = RoadNetwork.default() if a.network is None else RoadNetwork.load(a.network)
    names = list(net.feature_names)
    base = default_true_theta(names)
    for name, value in a.weight:
        base[names.index(name)] = value
    temperature = a.temperature
    if temperature is None:
        temperature = calibrate_temperature(net, 0.5, seed=np.random.default_rng([a.seed, 1]), od=a.od,
                                            theta=base).temperature
    theta = base / temperature
    sims = simulate_trips(net, theta, n_trips=a.trips, seed=a.seed, od=a.od)
    paths, _ = usable_paths(net.mdp, [s.path for s in sims])
    train_idx, test_idx = split_train_test(len(paths), a.test_fraction, a.seed)
    train, test = [paths[i] for i in train_idx], [paths[i] for i in test_idx]
    action, _ = fit_action_model(net.mdp, train, max_trips=0, max_iter=500, warm_trips=2000, seed=a.seed,
                                 progress=False)
    L = net.segment_length_m
    true_match = route_matches(RouteModel(net.mdp, theta).most_likely_path, test, L)
    out: dict = {"weights": dict(a.weight), "temperature": round(temperature, 3), "n_train": len(train),
                 "n_test": len(test), "action_fit": {"converged": action.converged_, "n_iter": action.n_iter_,
                                                     "n_at_min_cost": action.n_at_min_cost_,
                                                     "message": action.message_},
                 "true_theta": {"matching": round(100 * true_match.mean(), 2),
                                "match90": round(100 * np.mean(true_match >= MATCH90 - 1e-12), 2)}}
    for label, predict in (("Action", action.most_likely_path), ("Action (costs)", action.lowest_cost_path)):
        m = route_matches(predict, test, L)
        out[f"true θ − {label}"] = {
            metric: [round(100 * v, 2) for v in paired_difference(a_, b_).values()]
            for metric, a_, b_ in (("matching pp [95% CI]", true_match, m),
                                   ("90% match pp [95% CI]", true_match >= MATCH90 - 1e-12, m >= MATCH90 - 1e-12))}
    out["seconds"] = round(time.perf_counter() - start, 1)
    for key, value in out.items():
        print(f"{key}: {json.dumps(value, ensure_ascii=False)}")
    return out


if __name__ == "__main__":
    main()
