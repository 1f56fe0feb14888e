"""Map-matching throughput (GPS points per second) and accuracy on the default network (Andorra).

Simulated drivers (default true theta) give traces with a known route; each is matched
with the default MapMatcher. Reported per setting: points/s cold (first pass: the
Dijkstra rows are computed as they are needed) and warm (second pass over the same
traces: rows cached, the steady state of a long-running service), and the share of the
true route's length the matched path covers (recall) and vice versa (precision).

    .venv/bin/python benchmarks/bench_map_matching.py            # 200 trips per setting
    .venv/bin/python benchmarks/bench_map_matching.py --trips 50 --json out.json
    .venv/bin/python benchmarks/bench_map_matching.py --grid-states 100000 --trips 20   # large synthetic grid

``--grid-states N`` replaces Andorra (2,366 states) by a synthetic grid of two-way 100 m
streets with about N states (directed segments), built with ``RoadNetwork.from_graph``:
the matcher's cost must not grow with the size of the network, only with the trace.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maxent_irl.roads import MapMatcher, RoadNetwork, read_gpx, simulate_trips
from maxent_irl.roads.synthetic import grid_network

GPX = Path(__file__).resolve().parents[1] / "data" / "andorra_for_map_matching.gpx"


def _cover(net: RoadNetwork, a: np.ndarray, b: np.ndarray) -> float:
    L = net.segment_length_m
    ua = np.unique(a)
    return float(L[np.intersect1d(ua, b)].sum() / L[ua].sum())


def grid_network_of(n_states: int, seed: int = 0) -> RoadNetwork:
    """A square grid of two-way 100 m streets (junctions jittered by 5 m) with about ``n_states`` segments."""
    side = max(3, round(0.5 + (0.25 + n_states) ** 0.5 / 2))  # 4 side (side - 1) directed segments
    return grid_network(side, jitter=0.05, seed=seed)


def run(trips: int, seed: int, settings: list[tuple[float, float]], grid_states: int | None = None
        ) -> list[dict[str, float]]:
    t0 = time.perf_counter()
    net = RoadNetwork.default(cache_dir=False) if grid_states is None else grid_network_of(grid_states)
    print(f"network: {net!r}, built in {time.perf_counter() - t0:.2f} s")
    print(f"{os.cpu_count()} CPUs; numpy {np.__version__}")
    rows = []
    for noise, interval in settings:
        sims = simulate_trips(net, n_trips=trips, seed=seed, noise_m=noise, interval_s=interval,
                              min_od_distance_m=1000.0 if grid_states is None else 2000.0)
        n_points = sum(len(s.trace) for s in sims)
        net._routers.clear()  # cold start for every setting
        matcher = MapMatcher(net)
        t = time.perf_counter()
        results = [matcher.match(s.trace) for s in sims]
        cold = time.perf_counter() - t
        t = time.perf_counter()
        for s in sims:
            matcher.match(s.trace)
        warm = time.perf_counter() - t
        recall = np.mean([_cover(net, s.path, r.states) for s, r in zip(sims, results, strict=True)])
        precision = np.mean([_cover(net, r.states, s.path) for s, r in zip(sims, results, strict=True)])
        min_recall = np.min([_cover(net, s.path, r.states) for s, r in zip(sims, results, strict=True)])
        row = {
            "n_states": net.n_states, "noise_m": noise, "interval_s": interval, "trips": trips, "points": n_points,
            "points_per_s_cold": n_points / cold, "points_per_s_warm": n_points / warm,
            "recall": float(recall), "min_recall": float(min_recall), "precision": float(precision),
        }
        rows.append(row)
        print(
            f"noise {noise:4.0f} m, every {interval:4.0f} s: {n_points:7d} points, "
            f"{row['points_per_s_cold']:8.0f} pts/s cold, {row['points_per_s_warm']:8.0f} pts/s warm, "
            f"recall {recall:.4f} (min {min_recall:.3f}), precision {precision:.4f}"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trips", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--grid-states", type=int, default=None,
                        help="match on a synthetic grid of about this many states instead of Andorra")
    args = parser.parse_args()
    settings = [(10.0, 10.0), (30.0, 10.0), (10.0, 1.0), (30.0, 1.0)]
    if args.grid_states is not None:
        rows = run(args.trips, args.seed, settings[:2], args.grid_states)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))
        return
    rows = run(args.trips, args.seed, settings)
    net = RoadNetwork.default(cache_dir=False)
    (trace,) = read_gpx(GPX)
    r = MapMatcher(net).match(trace)
    net.mdp.transition_indices(r.states)  # raises unless one connected path
    print(f"GPX {GPX.name}: {len(trace)} points, no times -> {r.states.size} connected segments "
          f"({net.segment_length_m[r.states].sum():.0f} m), unmatched {len(r.unmatched_points)}, "
          f"max point distance {np.nanmax(r.point_distances_m):.1f} m, "
          f"median {np.nanmedian(r.point_distances_m):.1f} m")
    rows.append({"gpx_segments": int(r.states.size), "gpx_max_distance_m": float(np.nanmax(r.point_distances_m))})
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
