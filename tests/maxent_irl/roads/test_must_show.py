"""The issue's "must show" checks, on the embedded default network (Andorra)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maxent_irl.roads import MapMatcher, RoadNetwork, read_gpx, simulate_trips

GPX_FILE = Path(__file__).resolve().parents[3] / "data" / "andorra_for_map_matching.gpx"


def _length_recall(net: RoadNetwork, true: np.ndarray, got: np.ndarray) -> float:
    """Share of the true route's length that the matched path covers."""
    L = net.segment_length_m
    t = np.unique(true)
    return float(L[np.intersect1d(t, got)].sum() / L[t].sum())


@pytest.mark.slow
@pytest.mark.parametrize(("noise_m", "required"), [(10.0, 0.95), (30.0, 0.85)])
def test_simulated_traces_match_the_true_route(andorra: RoadNetwork, noise_m: float, required: float) -> None:
    sims = simulate_trips(andorra, n_trips=60, seed=2024, noise_m=noise_m, interval_s=10)
    matcher = MapMatcher(andorra)  # defaults: the noise level is estimated per trace
    recall, precision = [], []
    for s in sims:
        r = matcher.match(s.trace)
        andorra.mdp.transition_indices(r.states)
        recall.append(_length_recall(andorra, s.path, r.states))
        precision.append(_length_recall(andorra, r.states, s.path))
    assert np.mean(recall) >= required
    # the matched path is not padded with detours to get there (measured: 0.99 at 10 m, 0.95 at 30 m)
    assert np.mean(precision) >= required


def test_gpx_without_times_matches_to_one_connected_path(andorra: RoadNetwork) -> None:
    (trace,) = read_gpx(GPX_FILE.read_bytes())
    assert trace.times is None and len(trace) == 21
    r = MapMatcher(andorra).match(trace)
    andorra.mdp.transition_indices(r.states)  # one connected path
    assert r.unmatched_points == [] and r.breaks == []
    assert np.all(r.point_distances_m <= 50.0)
    # the path covers the drawn route: 0.675 km long, so at least that much road
    assert andorra.segment_length_m[r.states].sum() >= 0.6 * trace.length_m
