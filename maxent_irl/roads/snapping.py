"""Points on the map to positions on road segments, and routes between such positions.

A user's point lies *on* a segment, not at its end: a route from it starts partway along
one direction of the nearest street and ends partway along a segment. So a point snaps to
both directions of the nearest street (:func:`snap_point`), optionally only to those
heading like the user's ``heading`` (degrees clockwise from north, as OSRM's ``bearings``
and Valhalla's ``heading``); :func:`plan_route` picks the pair of directions whose route
the model rewards most, counting only the part of the end segments actually driven, so a
route does not start or end with a U-turn because the point was snapped to the wrong
direction; :func:`route_geometry` trims the route's line to the snapped positions and
gives its length and driving time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import Geod
from shapely.ops import substring

from maxent_irl import RouteModel
from maxent_irl.exceptions import UnreachableDestinationError
from maxent_irl.roads.exceptions import MapMatchingError
from maxent_irl.roads.network import RoadNetwork

__all__ = ["DEFAULT_HEADING_TOLERANCE", "RouteGeometry", "RoutePlan", "Snap", "plan_route", "route_geometry",
           "segment_values", "snap_point"]

#: Degrees a segment's direction may differ from a requested heading (OSRM's default range is similar).
DEFAULT_HEADING_TOLERANCE = 45.0
#: Segments this much farther than the nearest one still count as "the nearest street" (both directions
#: of a two-way street are equally near; a divided road's two carriageways a few metres apart are not).
_TIE_M = 0.5
_BEARING_STEP_M = 5.0
_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class Snap:
    """A point's position on one directed segment: ``offset_m`` from its start, ``distance_m`` away from the point."""

    state: int
    offset_m: float
    distance_m: float
    lonlat: tuple[float, float]
    bearing_deg: float


@dataclass(frozen=True)
class RoutePlan:
    """The chosen route: its states, the snapped ends, and its reward (the model's log-weight of what is driven)."""

    path: np.ndarray
    origin: Snap
    destination: Snap
    reward: float


@dataclass(frozen=True)
class RouteGeometry:
    """A route's line from the snapped origin to the snapped destination, its length and driving time."""

    coordinates: list[list[float]]
    distance_m: float
    duration_s: float


def snap_point(net: RoadNetwork, lon: float, lat: float, max_distance_m: float, heading: float | None = None,
               heading_tolerance: float = DEFAULT_HEADING_TOLERANCE) -> list[Snap]:
    """The positions of a point on the nearest street, in each direction that fits ``heading``; nearest first.

    Without a heading: both directions of the nearest street (ties within half a metre).
    With one: the nearest segments, within ``max_distance_m``, whose direction at the
    snapped position is within ``heading_tolerance`` degrees of it (so a heading can pick
    the far carriageway of a divided road). An empty list: nothing within reach fits.
    """
    xy = net.projection.forward(np.array([[lon, lat]], dtype=float))
    _, states, dist, offsets = net.candidates(xy, float(max_distance_m))
    if states.size == 0:
        return []
    bearings = _bearings(net, states, offsets)
    keep = np.ones(states.size, dtype=bool)
    if heading is not None:
        diff = np.abs((bearings - float(heading) + 180.0) % 360.0 - 180.0)
        keep = diff <= heading_tolerance
    if not keep.any():
        return []
    nearest = float(dist[keep].min())
    keep &= dist <= nearest + _TIE_M
    points = net.points_along(states[keep], offsets[keep])
    return [Snap(int(s), float(o), float(d), (float(p[0]), float(p[1])), float(b))
            for s, o, d, p, b in zip(states[keep], offsets[keep], dist[keep], points, bearings[keep], strict=True)]


def _bearings(net: RoadNetwork, states: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Direction (degrees clockwise from north) of each segment at the given offsets."""
    length = net.segment_length_m[states]
    a = net.points_along(states, np.clip(offsets - _BEARING_STEP_M, 0.0, length))
    b = net.points_along(states, np.clip(offsets + _BEARING_STEP_M, 0.0, length))
    pa, pb = net.projection.forward(a), net.projection.forward(b)
    return np.degrees(np.arctan2(pb[:, 0] - pa[:, 0], pb[:, 1] - pa[:, 1])) % 360.0


def segment_values(model: RouteModel) -> np.ndarray:
    """``(n,)`` what driving each whole segment is worth to the model: the log-weight of entering it, turn left out.

    A transition's features describe the entered segment (its km by class, speed and lanes,
    the per-segment constant) and the turn; without the ``turn_*`` features every entry of
    a segment is worth the same, which is the value of the segment itself.
    """
    mdp = model.mdp
    keep = np.array([not name.startswith("turn_") for name in mdp.feature_names])
    logw = mdp.features[:, keep] @ model.theta[keep] / model.alpha
    out = np.full(mdp.n_states, -np.inf)
    np.maximum.at(out, mdp.dst, logw)
    return out


def plan_route(net: RoadNetwork, model: RouteModel, origins: Sequence[Snap], destinations: Sequence[Snap],
               values: np.ndarray | None = None) -> RoutePlan:
    """The most rewarded route over every pair of snapped origin and destination positions.

    A route's reward is the model's log-weight of its transitions, plus what the part of the
    first segment ahead of the origin is worth, minus the part of the last segment beyond
    the destination (neither is driven), segments valued by :func:`segment_values` (pass
    them as ``values`` to reuse them). A destination behind the origin on the same segment
    needs a loop back to it. Raises :class:`UnreachableDestinationError` if no pair is joined.
    """
    if not origins or not destinations:
        raise MapMatchingError("nothing to route between: a point has no snapped position", "off_network")
    value = segment_values(model) if values is None else values
    length = net.segment_length_m
    best: RoutePlan | None = None
    for o in origins:
        for d in destinations:
            try:
                path = _path(model, o, d)
            except UnreachableDestinationError:
                continue
            t = model.mdp.transition_indices(path)
            reward = float(model.logw[t].sum())
            if path.size == 1:  # within one segment: only the stretch between the two positions
                reward += float(value[o.state]) * (d.offset_m - o.offset_m) / length[o.state]
            else:
                reward += float(value[o.state]) * (1.0 - o.offset_m / length[o.state])
                reward -= float(value[d.state]) * (1.0 - d.offset_m / length[d.state])
            if best is None or reward > best.reward:
                best = RoutePlan(path, o, d, reward)
    if best is None:
        raise UnreachableDestinationError("no route joins the origin to the destination")
    return best


def _path(model: RouteModel, o: Snap, d: Snap) -> np.ndarray:
    """Most likely path between two positions; on one segment with the destination behind, a loop back to it."""
    if o.state != d.state or d.offset_m >= o.offset_m:
        return model.most_likely_path(o.state, d.state)
    best, best_reward = None, -np.inf
    idx, nxt = model.mdp.successors(o.state)
    for j, s in zip(idx.tolist(), nxt.tolist(), strict=True):
        try:
            rest = model.most_likely_path(s, d.state)
        except UnreachableDestinationError:
            continue
        reward = float(model.logw[j] + model.logw[model.mdp.transition_indices(rest)].sum())
        if reward > best_reward:
            best, best_reward = np.concatenate([[o.state], rest]), reward
    if best is None:
        raise UnreachableDestinationError(f"no loop leads back to state {d.state}")
    return best


def route_geometry(net: RoadNetwork, path: Sequence[int] | np.ndarray, start_offset_m: float,
                   end_offset_m: float, precision: int = 7) -> RouteGeometry:
    """The line of ``path`` from ``start_offset_m`` along its first segment to ``end_offset_m`` along its last.

    ``distance_m`` is the line's own length on the WGS84 ellipsoid (geodesic, as
    ``pyproj.Geod(ellps="WGS84").line_length`` measures it: a sphere's great circles read
    about 0.2 % shorter at mid latitudes); ``duration_s`` drives each piece at its
    segment's speed.
    """
    path = np.asarray(path, dtype=np.int64)
    length = net.segment_length_m[path]
    starts = np.zeros(path.size)
    ends = length.copy()
    starts[0] = min(max(start_offset_m, 0.0), length[0])
    ends[-1] = min(max(end_offset_m, 0.0), length[-1])
    if path.size == 1:
        ends[0] = max(ends[0], starts[0])
    coords: list[np.ndarray] = []
    duration = 0.0
    for s, a, b in zip(path.tolist(), starts, ends, strict=True):
        piece = np.round(_piece(net, s, a, b), precision)
        duration += _GEOD.line_length(piece[:, 0], piece[:, 1]) / max(float(net.segment_speed_kph[s]) / 3.6, 0.1)
        if coords and piece.shape[0] and np.array_equal(coords[-1][-1], piece[0]):
            piece = piece[1:]
        if piece.shape[0]:
            coords.append(piece)
    line = np.vstack(coords)
    if line.shape[0] == 1:
        line = np.vstack([line, line])
    distance = float(_GEOD.line_length(line[:, 0], line[:, 1]))
    return RouteGeometry(line.tolist(), distance, float(duration))


def _piece(net: RoadNetwork, state: int, start_m: float, end_m: float) -> np.ndarray:
    """``(k, 2)`` lon/lat of a segment between two offsets (metres along it), its vertices included."""
    full = np.asarray(net.segment_geometry(state), dtype=float)
    total = float(net.segment_length_m[state])
    if start_m <= 1e-9 and end_m >= total - 1e-9:
        return full
    line = shapely.linestrings(net.projection.forward(full))
    scale = float(shapely.length(line)) / max(total, 1e-9)  # offsets are in the segment's own length unit
    part = substring(line, start_m * scale, end_m * scale)
    xy = shapely.get_coordinates(part)
    return np.asarray(net.projection.inverse(xy), dtype=float)
