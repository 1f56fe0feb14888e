"""Map matching on Monaco: connected paths, accuracy, unmatched points, breaks, and every bad input."""

from __future__ import annotations

import time

import numpy as np
import pytest

from maxent_irl.roads import (
    InvalidTraceError,
    MapMatcher,
    MapMatchingError,
    RoadNetwork,
    Trace,
    simulate_trips,
    split_trips,
)


def _recall(net: RoadNetwork, true: np.ndarray, got: np.ndarray) -> float:
    L = net.segment_length_m
    t, g = np.unique(true), np.unique(got)
    return float(L[np.intersect1d(t, g)].sum() / L[t].sum())


@pytest.fixture(scope="module")
def sims(monaco: RoadNetwork) -> list:
    return simulate_trips(monaco, n_trips=25, seed=11, noise_m=10, interval_s=10)


def test_matches_simulated_trips(monaco: RoadNetwork, sims: list) -> None:
    matcher = MapMatcher(monaco)
    recalls = []
    for s in sims:
        r = matcher.match(s.trace)
        monaco.mdp.transition_indices(r.states)  # a connected path of the MDP
        assert r.trace_id == s.trace.trace_id
        assert r.point_states.shape == (len(s.trace),)
        matched = r.point_states >= 0
        assert np.all(r.states[r.point_path_index[matched]] == r.point_states[matched])
        assert np.all(np.diff(r.point_path_index[matched]) >= 0)  # points advance along the path
        d = r.point_distances_m[matched]
        # fixes thinned out of the HMM are placed on the path afterwards, so a few may lie farther
        assert np.median(d) < 2 * r.sigma_m and np.mean(d <= r.search_radius_m) > 0.97
        assert np.all(np.diff(r.states) != 0)  # repeats collapsed
        recalls.append(_recall(monaco, s.path, r.states))
    assert np.mean(recalls) >= 0.95
    # the noise level is recovered (Newson & Krumm's MAD estimate)
    assert 6 < np.median([matcher.match(s.trace).sigma_m for s in sims[:5]]) < 14


def test_traces_without_times(monaco: RoadNetwork, sims: list) -> None:
    s = sims[0]
    r = MapMatcher(monaco).match(Trace(s.trace.points, None, "untimed"))
    assert _recall(monaco, s.path, r.states) >= 0.9


def test_deterministic(monaco: RoadNetwork, sims: list) -> None:
    a = MapMatcher(monaco).match(sims[1].trace)
    b = MapMatcher(monaco).match(sims[1].trace)
    assert np.array_equal(a.states, b.states) and np.array_equal(a.point_states, b.point_states)


def test_unmatched_points_are_reported(monaco: RoadNetwork, sims: list) -> None:
    s = sims[2]
    pts = s.trace.points.copy()
    pts[[3, 4]] += [0.0, -0.02]  # 2.2 km south: out at sea
    r = MapMatcher(monaco).match(Trace(pts, s.trace.times, "sea"))
    assert r.unmatched_points == [3, 4]
    assert np.all(r.point_states[[3, 4]] == -1) and np.all(np.isnan(r.point_distances_m[[3, 4]]))
    assert r.matched_fraction == pytest.approx(1 - 2 / len(pts))
    monaco.mdp.transition_indices(r.states)


def test_gaps_give_one_connected_path(monaco: RoadNetwork, sims: list) -> None:
    s = sims[3]
    keep = np.r_[0:5, len(s.trace) - 5 : len(s.trace)]  # a long data gap in the middle
    r = MapMatcher(monaco).match(s.trace.select(keep))
    monaco.mdp.transition_indices(r.states)
    assert _recall(monaco, s.path, r.states) > 0.5
    a, b = sims[4].trace, sims[5].trace  # two unrelated trips glued together
    glued = Trace(np.vstack([a.points, b.points]), None, "glued")
    r = MapMatcher(monaco).match(glued)
    monaco.mdp.transition_indices(r.states)
    assert r.point_path_index[len(a) - 1] < r.point_path_index[len(a)]


def test_break_when_no_route_fits(monaco: RoadNetwork) -> None:
    # two fixes on a long one-way segment, the second 100 m *behind* the first: no route joins
    # them except going round the block, which the HMM's backtracking rule forbids, so the
    # chain restarts (a "break") and the gap is filled by the loop back onto the segment
    ends = monaco.segment_ids[:, :2].tolist()
    twins = {tuple(x) for x in ends}
    one_way = [s for s, (u, v) in enumerate(ends) if (v, u) not in twins and monaco.segment_length_m[s] > 250]
    s = one_way[0]
    pts = monaco.points_along(np.array([s, s]), np.array([180.0, 80.0]))
    r = MapMatcher(monaco, sigma_m=5, search_radius_m=3).match(Trace(pts, None, "backwards"))
    assert r.breaks == [1]
    assert r.states[0] == s and r.states[-1] == s and r.states.size > 2
    monaco.mdp.transition_indices(r.states)


def test_match_many_turns_errors_into_rejections(monaco: RoadNetwork, sims: list) -> None:
    bad = Trace([[7.42, 43.73]], None, "one")
    off = Trace([[2.35, 48.85], [2.36, 48.86]], None, "paris")
    results, rejected = MapMatcher(monaco).match_many([sims[0].trace, bad, off])
    assert [r.trace_id for r in results] == [sims[0].trace.trace_id]
    assert [(r.trace_id, r.reason) for r in rejected] == [("one", "too_short"), ("paris", "off_network")]


@pytest.mark.parametrize(
    ("trace", "error", "reason"),
    [
        (Trace(np.zeros((0, 2)), None, "empty"), InvalidTraceError, "too_short"),
        (Trace([[7.42, 43.73]], None, "one"), InvalidTraceError, "too_short"),
        (Trace([[7.42, 43.73], [np.nan, 43.74]], None, "nan"), InvalidTraceError, "invalid_coordinates"),
        (Trace([[7.42, 43.73], [7.42, -91.0]], None, "range"), InvalidTraceError, "invalid_coordinates"),
        (Trace([[7.42, 43.73], [7.421, 43.731]], [10.0, 5.0], "back"), InvalidTraceError, "non_monotonic_time"),
        (Trace([[2.35, 48.85], [2.36, 48.86]], None, "paris"), MapMatchingError, "off_network"),
    ],
)
def test_bad_traces_raise_clear_errors(monaco: RoadNetwork, trace: Trace, error: type, reason: str) -> None:
    with pytest.raises(error) as e:
        MapMatcher(monaco).match(trace)
    assert e.value.reason == reason and isinstance(e.value, ValueError)
    assert trace.trace_id in str(e.value)


def test_100k_points_error_fast_then_split(monaco: RoadNetwork, sims: list) -> None:
    pts = np.concatenate([s.trace.points for s in sims])
    big = Trace(np.resize(pts, (100_000, 2)), None, "big")
    t0 = time.perf_counter()
    with pytest.raises(InvalidTraceError) as e:
        MapMatcher(monaco).match(big)
    assert e.value.reason == "too_many_points" and time.perf_counter() - t0 < 0.5
    parts = split_trips(big, max_points=20_000)
    assert [len(p) for p in parts] == [20_000] * 5
    r = MapMatcher(monaco).match(parts[0])  # each piece matches
    monaco.mdp.transition_indices(r.states)


def test_parameter_validation(monaco: RoadNetwork) -> None:
    with pytest.raises(ValueError):
        MapMatcher(monaco, sigma_m=-1)
    with pytest.raises(ValueError):
        MapMatcher(monaco, max_candidates=0)
    with pytest.raises(TypeError):
        MapMatcher(monaco).match([[7.42, 43.73]])  # type: ignore[arg-type]
