"""Snapping points to segments in either direction, headings, routes between snapped positions, trimmed lines."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Geod

from maxent_irl import RouteModel
from maxent_irl.roads import RoadNetwork, default_true_theta, plan_route, route_geometry, snap_point

GEOD = Geod(ellps="WGS84")


def _geodesic_length(coords: list[list[float]]) -> float:
    c = np.asarray(coords, dtype=float)
    return float(GEOD.line_length(c[:, 0], c[:, 1]))


def _reverses(net: RoadNetwork, a: int, b: int, tol_m: float = 3.0) -> bool:
    """Whether segment b is segment a driven backwards (the same street): a true U-turn, not a loop between two
    different streets that join the same nodes."""
    ga, gb = np.asarray(net.segment_geometry(a)), np.asarray(net.segment_geometry(b))[::-1]
    if ga.shape != gb.shape:
        return False
    return bool(np.all(np.abs(ga - gb) * 111_000 < tol_m))


def _two_way_point(net: RoadNetwork) -> tuple[int, int, np.ndarray]:
    """A segment with its reverse, and a point 2 m off its middle."""
    ids = {tuple(net.segment_id(s)[:2]): s for s in range(net.n_states)}
    for s in range(net.n_states):
        u, v, _ = net.segment_id(s)
        r = ids.get((v, u))
        if r is not None and _reverses(net, s, r) and net.segment_length_m[s] > 80:
            return s, r, net.segment_midpoints[s] + np.array([0.0, 2e-5])
    raise AssertionError("no two-way street")


def test_a_point_snaps_to_both_directions_and_a_heading_picks_one(monaco: RoadNetwork) -> None:
    s, r, (lon, lat) = _two_way_point(monaco)
    snaps = snap_point(monaco, lon, lat, 50.0)
    assert {x.state for x in snaps} == {s, r}
    a, b = sorted(snaps, key=lambda x: x.state)
    assert a.distance_m == pytest.approx(b.distance_m, abs=0.5)
    assert abs((a.bearing_deg - b.bearing_deg) % 360 - 180) < 10  # opposite directions
    assert a.offset_m + b.offset_m == pytest.approx(monaco.segment_length_m[s], abs=1.0)
    heading = next(x for x in snaps if x.state == s).bearing_deg
    only = snap_point(monaco, lon, lat, 50.0, heading=(heading + 20) % 360)
    assert [x.state for x in only] == [s]
    assert snap_point(monaco, lon, lat, 1.0) == []  # nothing within a metre
    sideways = snap_point(monaco, lon, lat, 10.0, heading=(heading + 90) % 360, heading_tolerance=20)
    assert all(x.state not in (s, r) for x in sideways)


def test_route_line_runs_between_the_snapped_positions(monaco: RoadNetwork) -> None:
    s, _, _ = _two_way_point(monaco)
    length = float(monaco.segment_length_m[s])
    g = route_geometry(monaco, [s], 10.0, length - 20.0)  # within one segment
    assert g.distance_m == pytest.approx(length - 30.0, rel=3e-3)  # segment lengths are osmnx's great circles
    assert g.distance_m == pytest.approx(_geodesic_length(g.coordinates), abs=0.05)
    assert g.duration_s == pytest.approx(g.distance_m / (monaco.segment_speed_kph[s] / 3.6), rel=1e-6)
    model = RouteModel(monaco.mdp, default_true_theta(monaco.feature_names))
    path = model.most_likely_path(s, (s + 200) % monaco.n_states)
    whole = route_geometry(monaco, path, 0.0, float(monaco.segment_length_m[path[-1]]))
    assert whole.distance_m == pytest.approx(float(monaco.segment_length_m[path].sum()), rel=3e-3)
    trimmed = route_geometry(monaco, path, 15.0, 5.0)
    cut = 15.0 + (monaco.segment_length_m[path[-1]] - 5.0)
    assert trimmed.distance_m == pytest.approx(whole.distance_m - cut, abs=0.5 + 3e-3 * cut)
    assert trimmed.distance_m == pytest.approx(_geodesic_length(trimmed.coordinates), abs=1e-6)
    start = monaco.points_along(np.array([path[0]]), np.array([15.0]))[0]
    assert np.allclose(trimmed.coordinates[0], start, atol=1e-7)


def test_routes_do_not_start_or_end_with_a_needless_u_turn(andorra: RoadNetwork) -> None:
    """100 random Andorra requests (points near random segments, 30 m of scatter): no route begins or ends by
    driving its first or last street backwards, and every line's geodesic length is its distance within 1 m."""
    model = RouteModel(andorra.mdp, default_true_theta(andorra.feature_names))
    rng = np.random.default_rng(2026)
    n, turned, worst = 0, [], 0.0
    while n < 100:
        a, b = rng.integers(0, andorra.n_states, 2)
        p = andorra.segment_midpoints[[a, b]] + rng.normal(0, 3e-4, (2, 2))
        o, d = snap_point(andorra, *p[0], 200.0), snap_point(andorra, *p[1], 200.0)
        if not o or not d:
            continue
        n += 1
        plan = plan_route(andorra, model, o, d)
        path = plan.path
        if path.size > 1 and (_reverses(andorra, path[0], path[1]) or _reverses(andorra, path[-2], path[-1])):
            turned.append((int(a), int(b)))
        line = route_geometry(andorra, path, plan.origin.offset_m, plan.destination.offset_m)
        worst = max(worst, abs(_geodesic_length(line.coordinates) - line.distance_m))
        assert np.allclose(line.coordinates[0], plan.origin.lonlat, atol=2e-7)
        assert np.allclose(line.coordinates[-1], plan.destination.lonlat, atol=2e-7)
    assert turned == []
    assert worst <= 1.0
