"""Traces, trip splitting at stops, and rejection of unusable trips with machine-readable reasons."""

from __future__ import annotations

import numpy as np
import pytest

from maxent_irl.roads import (
    REJECTION_REASONS,
    InvalidTraceError,
    RoadNetwork,
    Trace,
    clean_paths,
    clean_trips,
    path_revisit_fraction,
    simulate_trips,
    split_trips,
)

M_PER_DEG_LAT = 111_195.0


def _line(n: int, step_m: float = 100.0, dt: float = 10.0, lon0: float = 7.42, lat0: float = 43.73) -> Trace:
    """A straight northbound drive with ``n`` points, ``step_m`` apart, every ``dt`` seconds."""
    lat = lat0 + np.arange(n) * step_m / M_PER_DEG_LAT
    return Trace(np.column_stack([np.full(n, lon0), lat]), np.arange(n) * dt, "line")


def test_trace_validation() -> None:
    assert Trace(np.zeros((0, 2))).n_points == 0
    with pytest.raises(InvalidTraceError) as e:
        Trace(np.zeros((3, 3)))
    assert e.value.reason == "invalid_coordinates"
    with pytest.raises(InvalidTraceError) as e:
        Trace(np.zeros((3, 2)), [1.0, 2.0])
    assert e.value.reason == "invalid_times"
    with pytest.raises(InvalidTraceError):
        Trace([["a", "b"]])
    tr = Trace([[7.42, 43.73], [7.42, 43.74]], [5, 3], "t")
    assert tr.problem() is not None and tr.problem()[0] == "non_monotonic_time"
    with pytest.raises(InvalidTraceError, match="backwards") as e:
        tr.validate()
    assert e.value.reason == "non_monotonic_time" and e.value.trace_id == "t"
    assert Trace([[7.42, 43.73], [7.42, 43.74]], [3, 3]).problem() is None  # equal times are allowed
    assert Trace([[7.42, 43.73], [np.inf, 43.74]]).problem()[0] == "invalid_coordinates"  # type: ignore[index]
    assert Trace([[181.0, 43.73]]).problem()[0] == "invalid_coordinates"  # type: ignore[index]
    assert Trace([[7.42, 43.73]], [np.nan]).problem()[0] == "invalid_times"  # type: ignore[index]
    with pytest.raises(ValueError):
        Trace(np.ones((2, 2))).points[0, 0] = 5.0  # read-only


def test_split_at_time_gap() -> None:
    a, b = _line(10), _line(10, lat0=43.74)
    joined = Trace(np.vstack([a.points, b.points]), np.r_[a.times, b.times + 1000.0], "day")
    parts = split_trips(joined, gap_s=300)
    assert [p.trace_id for p in parts] == ["day#0", "day#1"]
    assert [p.n_points for p in parts] == [10, 10]
    assert split_trips(joined, gap_s=2000)[0] is joined  # unsplit traces come back as they are


def test_split_at_dwell() -> None:
    drive = _line(20)
    stop_pts = np.repeat(drive.points[-1:], 40, axis=0) + np.random.default_rng(0).normal(0, 5e-5, (40, 2))
    t_end = drive.times[-1]
    stop_t = t_end + 10 + np.arange(40) * 10.0  # 400 s parked within ~10 m, logging every 10 s
    after = _line(20, lat0=drive.points[-1, 1] + 100 / M_PER_DEG_LAT)  # leaves: the next fix is 100 m on
    pts = np.vstack([drive.points, stop_pts, after.points])
    times = np.r_[drive.times, stop_t, after.times + stop_t[-1] + 10]
    parts = split_trips(Trace(pts, times, "d"), dwell_s=300, dwell_radius_m=50)
    assert len(parts) == 2
    # the dwell's inner points are gone: trip 2 starts at the last fix of the stop
    assert parts[0].n_points == 20 and parts[1].n_points == 21
    assert parts[0].times[-1] == drive.times[-1]  # type: ignore[index]
    # a shorter stop is not a dwell
    assert len(split_trips(Trace(pts, times, "d"), dwell_s=1000, dwell_radius_m=50)) == 1


def test_split_edge_cases() -> None:
    no_times = Trace(_line(30).points, None, "nt")
    assert split_trips([no_times]) == [no_times]
    chunks = split_trips([no_times], max_points=12)
    assert [c.n_points for c in chunks] == [12, 12, 6]
    bad = Trace([[7.42, 43.73], [np.nan, 43.74]], [0, 1000], "bad")
    assert split_trips(bad) == [bad]  # left whole for clean_trips to report
    with pytest.raises(ValueError):
        split_trips(no_times, gap_s=0)


def test_a_trace_that_splitting_would_erase_comes_back_whole() -> None:
    """All gaps (times in ms read as seconds, sparse logging) or all stop: never silently gone."""
    sparse = _line(8, step_m=2000.0, dt=400.0)  # one fix every 400 s: every gap is a stop
    assert split_trips(sparse, gap_s=300) == [sparse]
    kept, rejected = clean_trips(split_trips(sparse, gap_s=300))
    assert len(kept) + len(rejected) == 1  # judged: kept or rejected with a reason, not dropped
    creep = _line(600, step_m=0.05, dt=1.0)  # 30 m in 10 min: one long dwell
    assert split_trips(creep, dwell_s=300, dwell_radius_m=50) == [creep]
    kept, rejected = clean_trips(split_trips(creep))
    assert not kept and rejected[0].reason == "too_short"
    # one lone fix inside a stop is still dropped when the rest of the trace moves
    a, b = _line(10), _line(10, lat0=43.75)
    lone = Trace(np.vstack([a.points, [[7.5, 43.8]], b.points]), np.r_[a.times, 1000.0, b.times + 2000.0], "x")
    assert [p.n_points for p in split_trips(lone, gap_s=300)] == [10, 10]


def test_100k_point_trace_is_split_not_hung() -> None:
    n = 100_000
    rng = np.random.default_rng(0)
    lat = 43.73 + np.cumsum(rng.uniform(0, 2, n)) / M_PER_DEG_LAT  # 1 Hz, ~1 m/s
    tr = Trace(np.column_stack([np.full(n, 7.42), lat]), np.arange(n, dtype=float), "huge")
    parts = split_trips(tr, max_points=20_000)
    assert [p.n_points for p in parts] == [20_000] * 5
    kept, rejected = clean_trips([tr])
    assert not kept and rejected[0].reason == "too_many_points"


@pytest.mark.parametrize(
    ("trace", "reason"),
    [
        (Trace(np.zeros((0, 2)), None, "empty"), "too_short"),
        (Trace([[7.42, 43.73]], None, "one"), "too_short"),
        (_line(3), "too_short"),
        (_line(8, step_m=20), "too_short"),  # 140 m
        (Trace(7.42 + np.random.default_rng(0).uniform(0, 1e-3, (100, 2)) + [0, 36.31], None, "parked"), "too_short"),
        (Trace([[7.42, 43.73], [np.nan, 43.74]] * 4, None, "nan"), "invalid_coordinates"),
        (Trace([[7.42, 43.73], [7.42, 91.0]] * 4, None, "range"), "invalid_coordinates"),
        (Trace(_line(10).points, np.r_[0, 20, 10, np.arange(3, 10) * 10.0], "back"), "non_monotonic_time"),
    ],
)
def test_clean_trips_reasons(trace: Trace, reason: str) -> None:
    kept, rejected = clean_trips([trace])
    assert kept == [] and len(rejected) == 1
    assert rejected[0].reason == reason and rejected[0].reason in REJECTION_REASONS
    assert rejected[0].trace_id == trace.trace_id and rejected[0].message


def test_clean_trips_cyclic_noisy_off_network(monaco: RoadNetwork) -> None:
    out_and_back = _line(20)
    back = Trace(np.vstack([out_and_back.points, out_and_back.points[::-1]]), np.arange(40) * 10.0, "round")
    assert clean_trips([back])[1][0].reason == "too_cyclic"
    spiky = _line(30).points.copy()
    spiky[1::3, 0] += 0.01  # every third point jumps ~800 m east and back
    noisy = Trace(spiky, np.arange(30) * 10.0, "spiky")
    assert clean_trips([noisy])[1][0].reason == "too_noisy"
    teleport = _line(30, step_m=300)
    fast = Trace(teleport.points, np.arange(30) * 0.5, "fast")  # 300 m every 0.5 s: 2,160 km/h
    assert clean_trips([fast])[1][0].reason == "too_noisy"
    paris = Trace(np.column_stack([np.full(20, 2.35), 48.85 + np.arange(20) * 0.001]), None, "paris")
    assert clean_trips([paris], monaco)[1][0].reason == "off_network"
    assert clean_trips([paris])[0] == [paris]  # without a network there is nothing to check against


def test_simulated_trips_pass_the_checks(monaco: RoadNetwork) -> None:
    sims = simulate_trips(monaco, n_trips=60, seed=3, noise_m=30, interval_s=1)
    kept, rejected = clean_trips([s.trace for s in sims], monaco)
    assert len(kept) >= 57, [r.message for r in rejected]  # 1 Hz with 30 m noise is not "too noisy"


def test_clean_paths(monaco: RoadNetwork) -> None:
    sims = simulate_trips(monaco, n_trips=30, seed=4, noise_m=0)
    kept, rejected = clean_paths(monaco, [(s.trace.trace_id, s.path) for s in sims])
    assert len(kept) >= 28
    twin_of = {}
    for st in range(monaco.n_states):
        idx, nxt = monaco.mdp.successors(st)
        if monaco.is_uturn[idx].any():
            twin_of[st] = int(nxt[monaco.is_uturn[idx]][0])
    path = [next(iter(twin_of))]  # a walk on two-way streets, no U-turns
    for _ in range(12):
        idx, nxt = monaco.mdp.successors(path[-1])
        ok = [int(b) for j, b in zip(idx, nxt, strict=True) if int(b) in twin_of and not monaco.is_uturn[j]]
        if not ok or ok[0] in path:
            break
        path.append(ok[0])
    assert len(path) >= 3
    path = np.array(path)
    there_and_back = np.r_[path, [twin_of[int(x)] for x in path[::-1]]]  # drive back the same way
    monaco.mdp.transition_indices(there_and_back)  # a valid path
    assert path_revisit_fraction(monaco, there_and_back) == pytest.approx(0.5)
    assert path_revisit_fraction(monaco, path) == 0.0
    _, rejected = clean_paths(monaco, [("tb", there_and_back), ("one", path[:1])])
    assert [r.reason for r in rejected] == ["too_cyclic", "too_short"]
