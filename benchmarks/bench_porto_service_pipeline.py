"""The service's destination pipeline on real Porto trips, under the challenge's protocol.

``bench_porto_destinations.py`` compares prior and stop-profile variants with its own posterior
code; this script runs exactly what a training job and a query of the service run, on the same
trips, split and queries:

1. Trips: ``train.1k.csv`` matched whole, kept and split by start time as in
   ``bench_porto_destinations.py`` (its ``match_trips``: both ends inside the network; the last
   30 % by start time are the test trips).
2. Training as the service does: ``MaxEntIRL(l2=1e-3, nonpositive_rewards=True)`` on the whole
   matched paths (trips may pass their destination), then ``fit_destination_prior``.
3. Queries: for each test trip and 20/40/60/80 %, the first fixes (by count, as the ECML/PKDD
   2015 challenge) map-matched on their own; ``DestinationPredictor.answer`` gives the
   expected-distance point and the top-5 clusters. Truth and the "last point" baseline are GPS
   fixes (the trip's last, the query's last).

Prints, per fraction, the mean error of the posterior's point and of the last fix with the paired
95 % interval of their difference, and the share of top-5 answers within 500 m.

    .venv/bin/python benchmarks/bench_porto_service_pipeline.py        # about 5 min on 2 cores
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_porto_destinations import DATA, FRACTIONS, INTERVAL_S, match_trips, n_observed, paired, read_trips

from maxent_irl import MaxEntIRL
from maxent_irl.exceptions import MaxEntIRLError
from maxent_irl.roads import InvalidTraceError, MapMatcher, MapMatchingError, RoadNetwork, Trace
from maxent_irl.roads.destinations import DestinationPredictor, fit_destination_prior

HIT_M = 500.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--test-fraction", type=float, default=0.3)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    net = RoadNetwork.load(a.data / "porto_center_drive.graphml.gz")
    trips, dropped = match_trips(net, read_trips(a.data / "train.1k.csv"))
    trips.sort(key=lambda t: t.start)
    n_test = round(a.test_fraction * len(trips))
    train, test = trips[:-n_test], trips[-n_test:]
    print(f"{len(trips)} trips kept ({dict(dropped)} dropped); {len(train)} train, {len(test)} test (split by time)")

    t0 = time.perf_counter()
    est = MaxEntIRL(l2=1e-3, nonpositive_rewards=True).fit(net.mdp, [t.path for t in train])
    print(f"MaxEnt fit (costs only): {time.perf_counter() - t0:.0f} s, {est.n_iter_} iterations, {est.message_}")
    t0 = time.perf_counter()
    params = fit_destination_prior(net, est.model_, [t.path for t in train])
    print(f"destination prior: {time.perf_counter() - t0:.0f} s, gamma {params.gamma:g}, stop profile "
          f"{params.notes['stop_profile']} (out-of-fold errors, m: {params.notes['stop_mean_error_m']})")
    predictor = DestinationPredictor(net, est.model_, params, [int(t.path[-1]) for t in train])

    matcher = MapMatcher(net)
    rows: dict[float, list[tuple[float, float, float]]] = {f: [] for f in FRACTIONS}
    failed = 0
    for t in test:
        for f in FRACTIONS:
            k = n_observed(len(t.lonlat), f)
            try:
                res = matcher.match(Trace(t.lonlat[:k], t.start + INTERVAL_S * np.arange(k), t.trip_id))
                ans = predictor.answer(np.asarray(res.states), top=5)
            except (InvalidTraceError, MapMatchingError, MaxEntIRLError):
                failed += 1
                continue
            point = net.projection.forward(ans.point_lonlat.reshape(1, 2))[0]
            centres = np.array([c.xy for c in ans.clusters])
            truth = t.xy[-1]
            rows[f].append((float(np.hypot(*(point - truth))) / 1000, float(np.hypot(*(t.xy[k - 1] - truth))) / 1000,
                            float(np.any(np.hypot(*(centres - truth).T) <= HIT_M))))
    print(f"queries that failed to match or answer: {failed}")
    print("observed  n  posterior km  last fix km  posterior - last fix [95 %]  top-5 within 500 m")
    for f, r in rows.items():
        arr = np.array(r)
        d = paired(arr[:, 0], arr[:, 1])
        print(f"{f:>6.0%} {len(arr):4d}  {arr[:, 0].mean():11.3f}  {arr[:, 1].mean():11.3f}  "
              f"{d['diff']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]       {arr[:, 2].mean():.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
