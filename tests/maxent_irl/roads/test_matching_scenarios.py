"""Map matching on hand-made networks and 1 Hz drives: stops, U-turns, gaps, timestamps, off-road points, confidence.

Networks are built in metres around (5 E, 45 N) and converted to lon/lat; drives move along a
polyline at a constant speed, one fix per second, with Gaussian noise (seeded).
"""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest

from maxent_irl.roads import MapMatcher, RoadNetwork, Trace
from maxent_irl.roads.matching import POINT_REASONS
from maxent_irl.roads.synthetic import grid_network

_M_PER_DEG_LAT = 111_195.0
_LON0, _LAT0 = 5.0, 45.0


def _lonlat(xy: np.ndarray) -> np.ndarray:
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    return np.column_stack([_LON0 + xy[:, 0] / (_M_PER_DEG_LAT * np.cos(np.radians(_LAT0))),
                            _LAT0 + xy[:, 1] / _M_PER_DEG_LAT])


def _network(nodes: dict[int, tuple[float, float]], streets: list[tuple[int, int]]) -> RoadNetwork:
    """Two-way straight streets between the given nodes (metres), every segment kept."""
    G = nx.MultiDiGraph(crs="epsg:4326")
    for n, (x, y) in nodes.items():
        lon, lat = _lonlat([x, y])[0]
        G.add_node(n, x=float(lon), y=float(lat))
    for u, v in streets:
        length = float(np.hypot(*np.subtract(nodes[u], nodes[v])))
        G.add_edge(u, v, 0, length=length, highway="residential", speed_kph=50.0)
        G.add_edge(v, u, 0, length=length, highway="residential", speed_kph=50.0)
    return RoadNetwork.from_graph(G, name="hand-made", strongly_connected=False)


def _drive(polyline: list[tuple[float, float]], speed: float, noise: float, seed: int,
           stop: tuple[int, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """1 Hz fixes (metres) along ``polyline`` at ``speed`` m/s, Gaussian ``noise``; ``stop=(vertex, seconds)``."""
    xy, t, _ = _drive_stop(polyline, speed, noise, seed, stop)
    return xy, t


def _drive_stop(polyline: list[tuple[float, float]], speed: float, noise: float, seed: int,
                stop: tuple[int, float] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_drive`, and which fixes are at the standstill."""
    pts = np.asarray(polyline, dtype=float)
    seg = np.hypot(*np.diff(pts, axis=0).T)
    cum = np.r_[0.0, np.cumsum(seg)]
    s = np.arange(0.0, cum[-1], speed)
    still = np.zeros(s.size, dtype=bool)
    if stop is not None:
        at = cum[stop[0]]
        s = np.r_[s[s < at], np.full(int(stop[1]), at), s[s >= at]]
        still = np.r_[np.zeros(int((s < at).sum()), dtype=bool), np.ones(int(stop[1]), dtype=bool),
                      np.zeros(s.size - int((s < at).sum()) - int(stop[1]), dtype=bool)]
    xy = np.column_stack([np.interp(s, cum, pts[:, 0]), np.interp(s, cum, pts[:, 1])])
    rng = np.random.default_rng(seed)
    return xy + rng.normal(0.0, noise, xy.shape), np.arange(len(s), dtype=float), still


def _uturns(net: RoadNetwork, states: np.ndarray) -> int:
    ids = net.segment_ids
    return sum(int(ids[a, 0] == ids[b, 1] and ids[a, 1] == ids[b, 0]) for a, b in itertools.pairwise(states))


def _check_shape(net: RoadNetwork, trace: Trace, r: object) -> None:
    """The per-point and per-piece fields agree with each other and with ``states``."""
    n = len(trace)
    assert r.point_states.shape == r.point_piece.shape == r.point_confidence.shape == (n,)
    assert r.point_lonlat.shape == (n, 2) and len(r.point_reason) == n
    ok = r.point_states >= 0
    assert [i for i in range(n) if not ok[i]] == r.unmatched_points
    assert all((r.point_reason[i] is None) == ok[i] for i in range(n))
    assert all(x in POINT_REASONS for x in r.point_reason if x is not None)
    assert np.all((r.point_confidence[ok] > 0) & (r.point_confidence[ok] <= 1 + 1e-9))
    assert r.confidence == pytest.approx(float(np.mean(r.point_confidence[ok])))
    assert np.all(r.states[r.point_path_index[ok]] == r.point_states[ok])
    covered = np.concatenate([p.points for p in r.pieces])
    assert np.array_equal(np.sort(covered), np.flatnonzero(ok))
    assert r.breaks == [p.first_point for p in r.pieces[1:]]
    for k, p in enumerate(r.pieces):
        net.mdp.transition_indices(p.states)  # each piece is a connected path
        assert np.all(r.point_piece[p.points] == k)
        assert np.all(np.isin(r.point_states[p.points], p.states))
        assert 0 <= p.length_m <= net.segment_length_m[p.states].sum() + 1e-6
        assert p.confidence == pytest.approx(float(np.mean(r.point_confidence[p.points])))
    # snapped positions lie on the matched segments, at the reported distance from the fixes
    xy = net.projection.forward(trace.points[ok])
    snapped = net.projection.forward(r.point_lonlat[ok])
    assert np.allclose(np.hypot(*(xy - snapped).T), r.point_distances_m[ok], atol=0.5)


@pytest.fixture(scope="module")
def grid() -> RoadNetwork:
    return grid_network(8)  # two-way 100 m streets, junctions at (5 E + j dlon, 45 N + i dlat)


def _grid_xy(grid: RoadNetwork, i: int, j: int) -> tuple[float, float]:
    """Metres (in this file's frame) of grid junction (row i, column j)."""
    return (j * 100.0, i * 100.0)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("timed", [True, False])
def test_a_stop_with_drift_makes_no_loop_or_uturn(grid: RoadNetwork, seed: int, timed: bool) -> None:
    # east along a street, three minutes at a standstill with wandering fixes, then on east
    # (the matcher before pieces and the off-road candidate made a loop or U-turn on 2 of these 20 drives)
    route = [_grid_xy(grid, 3, j) for j in range(0, 7)]
    xy, t, still = _drive_stop(route, speed=8.0, noise=3.0, seed=seed, stop=(3, 180))
    rng = np.random.default_rng(100 + seed)
    walk = np.cumsum(rng.normal(0.0, 1.5, (int(still.sum()), 2)), axis=0)
    xy[still] += np.clip(walk, -15.0, 15.0)  # drift up to 15 m along and across the street
    trace = Trace(_lonlat(xy), t if timed else None, "stop")
    r = MapMatcher(grid).match(trace)
    _check_shape(grid, trace, r)
    assert len(r.pieces) == 1 and r.unmatched_points == []
    states = r.pieces[0].states
    assert _uturns(grid, states) == 0
    assert len(set(states.tolist())) == states.size  # no segment twice: no loop
    ids = grid.segment_ids[states]
    assert np.all(ids[:, 1] - ids[:, 0] == 1)  # every segment heads east along the street


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("where", ["junction", "mid-block"])
def test_a_real_uturn_is_kept(grid: RoadNetwork, seed: int, where: str) -> None:
    # east for 400 m, turn back (at a junction, or in the middle of a block), west for 300 m
    turn_x = 400.0 if where == "junction" else 450.0
    route = [(0.0, 300.0), (turn_x, 300.0), (turn_x - 300.0, 300.0)]
    xy, t = _drive(route, speed=8.0, noise=3.0, seed=seed)
    trace = Trace(_lonlat(xy), t, "uturn")
    r = MapMatcher(grid).match(trace)
    _check_shape(grid, trace, r)
    assert len(r.pieces) == 1
    states = r.pieces[0].states
    assert _uturns(grid, states) == 1
    ids = grid.segment_ids[states]
    east = ids[:, 1] - ids[:, 0] == 1
    assert east[0] and not east[-1]  # out east, back west
    assert np.flatnonzero(~east).min() > np.flatnonzero(east).max()  # one turn, not a zigzag


def _missing_link(detour_m: float) -> RoadNetwork:
    """Street A (x 0..500) and street B (x 700..1200) on y = 0, joined only by a detour north of the gap."""
    h = (detour_m - 200.0) / 2.0
    nodes = {1: (0.0, 0.0), 2: (250.0, 0.0), 3: (500.0, 0.0), 4: (500.0, h), 5: (700.0, h),
             6: (700.0, 0.0), 7: (950.0, 0.0), 8: (1200.0, 0.0)}
    return _network(nodes, [(1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7), (7, 8)])


def _across_the_gap(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """72 km/h along y = 0 from x = 0 to 1200, no fix for the 10 s between x = 500 and 700 (no road there)."""
    xy, t = _drive([(0.0, 0.0), (1200.0, 0.0)], speed=20.0, noise=3.0, seed=seed)
    gap = (xy[:, 0] > 505.0) & (xy[:, 0] < 695.0)
    return xy[~gap], t[~gap]


@pytest.mark.parametrize("seed", range(3))
def test_timestamps_reject_a_detour_implying_300_kmh(seed: int) -> None:
    # the only route across the gap is an 833 m detour, driven in 10 s: 300 km/h. Without times it is
    # plausible (the fixes are 200 m apart); with them it is not, and the match splits in two pieces
    net = _missing_link(833.0)
    xy, t = _across_the_gap(seed)
    detour = {net.state_of((3, 4, 0)), net.state_of((4, 5, 0)), net.state_of((5, 6, 0))}
    untimed = MapMatcher(net).match(Trace(_lonlat(xy), None, "untimed"))
    assert not untimed.used_times and len(untimed.pieces) == 1
    assert detour <= set(untimed.pieces[0].states.tolist())
    trace = Trace(_lonlat(xy), t, "timed")
    timed = MapMatcher(net).match(trace)
    _check_shape(net, trace, timed)
    assert timed.used_times and len(timed.pieces) == 2
    first_after = int(np.flatnonzero(xy[:, 0] > 600.0)[0])
    assert timed.breaks == [first_after]
    assert not detour & set(np.concatenate([p.states for p in timed.pieces]).tolist())
    # ... and ``states`` still joins the pieces, as it always did
    net.mdp.transition_indices(timed.states)
    assert detour <= set(timed.states.tolist())
    # ignoring the times on purpose gives the untimed answer
    assert len(MapMatcher(net, use_times=False).match(trace).pieces) == 1


def test_a_gap_no_route_bridges_splits_into_pieces() -> None:
    # two streets with no road between them at all: two pieces, with or without times, nothing invented
    nodes = {1: (0.0, 0.0), 2: (250.0, 0.0), 3: (500.0, 0.0), 6: (560.0, 0.0), 7: (800.0, 0.0), 8: (1000.0, 0.0)}
    net = _network(nodes, [(1, 2), (2, 3), (6, 7), (7, 8)])
    xy, t = _drive([(0.0, 0.0), (1000.0, 0.0)], speed=10.0, noise=3.0, seed=5)
    for times in (t, None):
        trace = Trace(_lonlat(xy), times, "apart")
        r = MapMatcher(net).match(trace)
        _check_shape(net, trace, r)
        assert len(r.pieces) == 2
        a, b = r.pieces
        assert set(net.segment_ids[a.states][:, 0]) <= {1, 2} and set(net.segment_ids[b.states][:, 0]) <= {6, 7}
        assert a.length_m == pytest.approx(500.0, abs=20.0) and b.length_m == pytest.approx(440.0, abs=20.0)
        assert r.states.size == a.states.size + b.states.size  # no route to join them: side by side


def test_an_outlier_is_left_out_and_the_route_kept(grid: RoadNetwork) -> None:
    xy, t = _drive([(0.0, 300.0), (600.0, 300.0)], speed=10.0, noise=3.0, seed=7)
    i = 35
    xy[i, 1] += 45.0  # one fix 45 m off the street, in the middle of a block
    trace = Trace(_lonlat(xy), t, "outlier")
    r = MapMatcher(grid).match(trace)
    _check_shape(grid, trace, r)
    assert r.point_reason[i] == "outlier" and r.unmatched_points == [i]
    assert len(r.pieces) == 1 and _uturns(grid, r.states) == 0
    ids = grid.segment_ids[r.states]
    assert np.all(ids[:, 1] - ids[:, 0] == 1)  # straight along the street


def test_points_far_from_every_road_are_off_network(grid: RoadNetwork) -> None:
    xy, t = _drive([(0.0, 300.0), (600.0, 300.0)], speed=10.0, noise=3.0, seed=8)
    xy[[20, 21]] = [[5000.0, 5000.0], [5001.0, 5001.0]]
    trace = Trace(_lonlat(xy), t, "far")
    r = MapMatcher(grid).match(trace)
    _check_shape(grid, trace, r)
    assert r.unmatched_points == [20, 21] and r.point_reason[20] == r.point_reason[21] == "off_network"
    assert np.all(np.isnan(r.point_lonlat[[20, 21]])) and np.all(r.point_piece[[20, 21]] == -1)


def test_confidence_is_low_between_parallel_roads_and_high_on_a_lone_one() -> None:
    # two parallel streets 6 m apart, joined at both ends, and fixes between them with 8 m GPS noise:
    # both fit about equally well. The same fixes along a lone street leave no doubt.
    nodes = {1: (0.0, 0.0), 2: (100.0, 3.0), 3: (400.0, 3.0), 4: (100.0, -3.0), 5: (400.0, -3.0), 6: (500.0, 0.0)}
    twin = _network(nodes, [(1, 2), (2, 3), (3, 6), (1, 4), (4, 5), (5, 6)])
    lone = _network({1: (0.0, 0.0), 2: (250.0, 0.0), 3: (500.0, 0.0)}, [(1, 2), (2, 3)])
    for seed in range(3):
        xy, t = _drive([(0.0, 0.0), (500.0, 0.0)], speed=10.0, noise=1.0, seed=seed)
        r = MapMatcher(twin, sigma_m=8.0).match(Trace(_lonlat(xy), t, "between"))
        middle = (xy[:, 0] > 150.0) & (xy[:, 0] < 350.0)
        assert np.all(r.point_confidence[middle] < 0.8)
        assert r.confidence < 0.85
        r = MapMatcher(lone, sigma_m=8.0).match(Trace(_lonlat(xy), t, "alone"))
        assert np.all(r.point_confidence > 0.95) and r.confidence > 0.95


def test_summary_reports_pieces_and_reasons(grid: RoadNetwork) -> None:
    xy, t = _drive([(0.0, 300.0), (600.0, 300.0)], speed=10.0, noise=3.0, seed=8)
    xy[[20, 21]] = [[5000.0, 5000.0], [5001.0, 5001.0]]
    r = MapMatcher(grid).match(Trace(_lonlat(xy), t, "far"))
    s = r.summary()
    assert s["n_pieces"] == 1 and s["unmatched_reasons"] == {"off_network": 2} and s["used_times"] is True
    assert 0 < s["confidence"] <= 1
    d = r.pieces[0].to_dict()
    assert d["first_point"] == 0 and d["last_point"] == len(xy) - 1 and d["n_points"] == len(xy) - 2
