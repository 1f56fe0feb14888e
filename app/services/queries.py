"""Answers of the query endpoints, from the active model: destinations, routes, route probability, visitation.

Every answer is a JSON-ready dict (GeoJSON where it is spatial) that names the model
version and network it used. Query points are snapped (one point) or map-matched (a
trace) to the network; a point farther from every road than ``snap_distance_m`` is an
:class:`~app.services.errors.OffNetworkError` naming it, never silently skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from app.services.errors import InvalidInputError, NoActiveModelError, OffNetworkError
from app.services.predictor import Predictor
from maxent_irl.roads import (
    MapMatchingError,
    RoutePlan,
    Snap,
    Trace,
    UnknownSegmentError,
    plan_route,
    route_geometry,
    snap_point,
)
from maxent_irl.roads.snapping import DEFAULT_HEADING_TOLERANCE

if TYPE_CHECKING:
    from app.runtime import Runtime

__all__ = ["DEFAULT_HEADING_TOLERANCE", "active_predictor", "destinations", "match_points", "route_probability",
           "routes", "snap", "state_of", "visitation"]

LonLat = tuple[float, float]


def active_predictor(rt: Runtime) -> Predictor:
    """The predictor serving this query (:class:`NoActiveModelError` if no model is active)."""
    p = rt.predictor
    if p is None:
        raise NoActiveModelError()
    return p


def snap(rt: Runtime, lon: float, lat: float, field: str) -> tuple[int, float]:
    """The segment nearest to a point and its distance (m), within ``snap_distance_m``."""
    max_d = rt.settings.snap_distance_m
    states: Any = ()
    if rt.near_network(lon, lat, max_d):
        states, dist = rt.net.nearest_states(lon, lat, k=1, max_distance_m=max_d)
    if len(states) == 0 or states[0] < 0:
        raise OffNetworkError(f"{field} ({lon}, {lat}) is more than {max_d:g} m from every road of network "
                              f"{rt.net.name}", {"field": field, "point": [lon, lat], "max_distance_m": max_d})
    return int(states[0]), float(dist[0])


def match_points(rt: Runtime, points: Sequence[Sequence[float]], field: str) -> np.ndarray:
    """A query trace as a path of states: one point snaps, several are map-matched."""
    if len(points) == 1:
        state, _ = snap(rt, float(points[0][0]), float(points[0][1]), f"{field}[0]")
        return np.array([state], dtype=np.int64)
    pts = np.asarray([[float(p[0]), float(p[1])] for p in points], dtype=np.float64)
    max_d = rt.settings.snap_distance_m
    if not any(rt.near_network(x, y, max_d) for x, y in pts):
        raise OffNetworkError(f"every point of {field} is more than {max_d:g} m outside network {rt.net.name}",
                              {"field": field, "bbox": list(rt.net.bbox)})
    try:
        result = rt.matcher.match(Trace(pts, None, "query"))
    except MapMatchingError as exc:
        reason = getattr(exc, "reason", "")
        if reason == "off_network":
            raise OffNetworkError(str(exc), {"field": field, "reason": reason}) from None
        raise InvalidInputError(str(exc), {"field": field, "reason": reason}, "map_matching_failed") from None
    if result.unmatched_points:  # every point must be on the network, as a single one must: never skipped unseen
        idx = np.asarray(result.unmatched_points)
        nearest, _ = rt.net.nearest_states(pts[idx, 0], pts[idx, 1], k=1, max_distance_m=max_d)
        off = idx[nearest[:, 0] < 0]
        if off.size:
            shown = ", ".join(f"{field}[{i}]" for i in off[:5]) + (f" and {off.size - 5} more" if off.size > 5 else "")
            raise OffNetworkError(f"{shown}: more than {max_d:g} m from every road of network {rt.net.name}",
                                  {"field": field, "points": off.tolist(), "max_distance_m": max_d})
    states = np.asarray(result.states, dtype=np.int64)
    if states.size == 0:
        raise OffNetworkError(f"no point of {field} lies on the network", {"field": field})
    return states


def state_of(rt: Runtime, segment: Sequence[int], field: str) -> int:
    """State of a segment id ``[u, v, key]`` (``unknown_segment`` if the network lacks it)."""
    try:
        return int(rt.net.state_of(tuple(int(x) for x in segment)))
    except (UnknownSegmentError, ValueError):
        raise InvalidInputError(f"{field}: segment {list(segment)} is not a road segment of network {rt.net.name}",
                                {"field": field, "segment": list(segment)}, "unknown_segment") from None


def _served_by(rt: Runtime, predictor: Predictor) -> dict[str, Any]:
    return {"model_version": predictor.version, "network": rt.network_out()}


def destinations(rt: Runtime, points: Sequence[Sequence[float]], top: int | None, full: bool,
                 field: str, heatmap: bool = False) -> dict[str, Any]:
    """The destination posterior of a partly driven trip over every segment: the top destinations (clustered),
    the point minimizing the expected distance to the destination, and on request the heat map."""
    predictor = active_predictor(rt)
    path = match_points(rt, points, field)
    out = predictor.destinations_answer(path, top or rt.settings.default_top, full, heatmap)
    out["matched"] = {"n_points": len(points), "n_segments": int(path.size),
                      "current_segment": rt.net.geojson.segment_id(int(path[-1]))}
    out.update(_served_by(rt, predictor))
    return out


def _snaps(rt: Runtime, lonlat: LonLat, heading: float | None, tolerance: float, field: str) -> list[Snap]:
    """Every position of a query point on the nearest street (both directions, or those fitting ``heading``)."""
    max_d = rt.settings.snap_distance_m
    snaps = snap_point(rt.net, lonlat[0], lonlat[1], max_d, heading, tolerance) if rt.near_network(
        lonlat[0], lonlat[1], max_d) else []
    if snaps:
        return snaps
    if heading is not None and snap_point(rt.net, lonlat[0], lonlat[1], max_d):
        raise InvalidInputError(
            f"{field} ({lonlat[0]}, {lonlat[1]}): no road within {max_d:g} m heads {heading:g}° ± {tolerance:g}°",
            {"field": field, "point": list(lonlat), "heading": heading, "heading_tolerance": tolerance},
            "no_road_with_heading")
    raise OffNetworkError(f"{field} ({lonlat[0]}, {lonlat[1]}) is more than {max_d:g} m from every road of network "
                          f"{rt.net.name}", {"field": field, "point": list(lonlat), "max_distance_m": max_d})


def _end_info(rt: Runtime, lonlat: LonLat, snap: Snap) -> dict[str, Any]:
    return {"point": list(lonlat), "snapped": [round(snap.lonlat[0], 7), round(snap.lonlat[1], 7)],
            "segment": rt.net.geojson.segment_id(snap.state), "distance_m": round(snap.distance_m, 2),
            "bearing_deg": round(snap.bearing_deg, 1)}


def _plan(rt: Runtime, predictor: Predictor, origin: LonLat, destination: LonLat, headings: tuple[float | None,
          float | None], tolerance: float) -> RoutePlan:
    o = _snaps(rt, origin, headings[0], tolerance, "query.origin")
    d = _snaps(rt, destination, headings[1], tolerance, "query.destination")
    return plan_route(rt.net, predictor.model, o, d, predictor.segment_values)


def routes(rt: Runtime, origin: LonLat, destination: LonLat, alternatives: int, seed: int | None,
           headings: tuple[float | None, float | None] = (None, None),
           heading_tolerance: float = DEFAULT_HEADING_TOLERANCE) -> dict[str, Any]:
    """The most likely route between two points, and the most frequent distinct routes among sampled ones.

    Each point snaps to the nearest street in the direction the route is best driven (or
    the given heading); every route's line runs from the snapped origin to the snapped
    destination, with its ``distance_m`` and ``duration_s``.
    """
    if alternatives > rt.settings.max_alternatives:
        raise InvalidInputError(f"query.alternatives: at most {rt.settings.max_alternatives}",
                                [{"field": "query.alternatives", "message": f"at most {rt.settings.max_alternatives}"}],
                                "validation_error")
    predictor = active_predictor(rt)
    model = predictor.model
    plan = _plan(rt, predictor, origin, destination, headings, heading_tolerance)
    o, d = plan.origin, plan.destination
    paths: list[np.ndarray] = [plan.path]
    shares: list[float | None] = [None]
    if alternatives > 0 and o.state != d.state:
        n = rt.settings.route_samples
        samples = model.sample_paths(o.state, d.state, n, random_state=0 if seed is None else seed)
        counts = Counter(tuple(int(s) for s in p) for p in samples)
        counts.pop(tuple(int(s) for s in plan.path), None)
        for key, c in counts.most_common(alternatives):
            paths.append(np.asarray(key, dtype=np.int64))
            shares.append(round(c / n, 4))
    log_p = model.path_log_prob(paths)
    features = []
    for i, (p, lp, share) in enumerate(zip(paths, log_p, shares, strict=True)):
        line = route_geometry(rt.net, p, o.offset_m, d.offset_m)
        features.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": line.coordinates},
                         "properties": {
                             "rank": i + 1, "kind": "most_likely" if i == 0 else "sample",
                             "probability": float(np.exp(lp)), "log_probability": float(lp),
                             "distance_m": round(line.distance_m, 1), "duration_s": round(line.duration_s, 1),
                             "n_segments": int(p.size), "segments": rt.net.geojson.segment_ids(p),
                             **({} if share is None else {"sample_share": share})}})
    return {"type": "FeatureCollection", "features": features, "origin": _end_info(rt, origin, o),
            "destination": _end_info(rt, destination, d), **_served_by(rt, predictor)}


def route_probability(rt: Runtime, points: Sequence[Sequence[float]] | None,
                      segments: Sequence[Sequence[int]] | None) -> dict[str, Any]:
    """P(path | its first and last segment): ``points`` are map-matched, ``segments`` taken as the path."""
    predictor = active_predictor(rt)
    if points is not None:
        path = match_points(rt, points, "body.points")
    else:
        assert segments is not None
        path = np.asarray([state_of(rt, seg, f"body.segments[{i}]") for i, seg in enumerate(segments)])
    model = predictor.model
    lp = float(model.path_log_prob([path])[0])
    best = model.most_likely_path(int(path[0]), int(path[-1]))
    best_lp = float(model.path_log_prob([best])[0])
    return {
        "log_probability": lp, "probability": float(np.exp(lp)), "most_likely_log_probability": best_lp,
        "is_most_likely": bool(best.size == path.size and np.array_equal(best, path)),
        "n_segments": int(path.size), "segments": rt.net.geojson.segment_ids(path),
        "geometry": rt.net.geojson.path_geometry(path), **_served_by(rt, predictor),
    }


def visitation(rt: Runtime, origin: LonLat, destination: LonLat, min_probability: float,
               headings: tuple[float | None, float | None] = (None, None),
               heading_tolerance: float = DEFAULT_HEADING_TOLERANCE) -> dict[str, Any]:
    """One feature per segment a trip ``origin -> destination`` uses with at least ``min_probability``.

    The ends snap as for :func:`routes` (the directions of the most likely route).
    """
    predictor = active_predictor(rt)
    plan = _plan(rt, predictor, origin, destination, headings, heading_tolerance)
    o, d = plan.origin.state, plan.destination.state
    visits = np.asarray(predictor.model.expected_visits(o, d).states, dtype=float)
    keep = np.flatnonzero(visits >= max(min_probability, 1e-12))
    keep = keep[np.argsort(-visits[keep], kind="stable")]
    features = [rt.net.geojson.segment_feature(s, {"probability": float(min(1.0, visits[s])),
                                                   "expected_visits": float(visits[s])}) for s in keep.tolist()]
    return {
        "type": "FeatureCollection", "features": features,
        "origin": {"point": list(origin), "segment": rt.net.geojson.segment_id(o)},
        "destination": {"point": list(destination), "segment": rt.net.geojson.segment_id(d)},
        **_served_by(rt, predictor),
    }
