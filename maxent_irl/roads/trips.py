"""From raw GPS traces to trips: split at stops, then reject the unusable ones with a reason.

Ziebart et al. discard about 30 % of their trips (too short, too cyclic, too noisy);
:func:`clean_trips` does the same and says why for each, in machine-readable form.
Distances for these tests are measured on the trace *thinned* to points at least
``thin_m`` apart, so GPS jitter at low speed does not pass for driven distance.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from maxent_irl.roads.geo import haversine_m, thin_indices
from maxent_irl.roads.trace import Trace, TripRejection

if TYPE_CHECKING:
    from maxent_irl.roads.network import RoadNetwork

__all__ = ["clean_paths", "clean_trips", "path_revisit_fraction", "split_trips", "thinned_length_m"]

logger = logging.getLogger(__name__)


def split_trips(
    traces: Trace | Iterable[Trace],
    gap_s: float = 300.0,
    dwell_s: float = 300.0,
    dwell_radius_m: float = 50.0,
    max_points: int | None = None,
) -> list[Trace]:
    """Split traces into trips at stops.

    A stop is a time gap longer than ``gap_s`` between two points, or a *dwell*: the
    vehicle stays within ``dwell_radius_m`` of a point for at least ``dwell_s``
    (stay-point detection); the dwell's inner points are dropped, the trip before
    it ends where the dwell starts and the next one starts where it ends. With
    ``max_points``, pieces longer than that are cut into consecutive chunks too.
    Parts are named ``<trace_id>#<k>`` when a trace is split, and parts of fewer
    than 2 points (a lone fix inside a stop) are dropped. A trace that splitting would
    leave with no part of 2 points (every gap over ``gap_s``, e.g. times in milliseconds
    read as seconds or one fix every 10 min, or one long dwell) is returned whole instead
    of vanishing: :func:`clean_trips` then keeps it or says why not. Traces without times, or
    with invalid coordinates or times, cannot be split by time and are returned
    whole (apart from ``max_points`` chunking); :func:`clean_trips` reports them.
    """
    if isinstance(traces, Trace):
        traces = [traces]
    for name, val in (("gap_s", gap_s), ("dwell_s", dwell_s), ("dwell_radius_m", dwell_radius_m)):
        if not (val > 0):
            raise ValueError(f"{name} must be positive, got {val}")
    if max_points is not None and max_points < 2:
        raise ValueError(f"max_points must be >= 2, got {max_points}")
    out: list[Trace] = []
    for tr in traces:
        pieces = [(0, len(tr))]
        if tr.times is not None and len(tr) > 1 and tr.problem() is None:
            pieces = _stop_pieces(tr, gap_s, dwell_s, dwell_radius_m)
        if max_points is not None:
            pieces = [(a, min(a + max_points, b)) for s, b in pieces for a in range(s, b, max_points)]
        if pieces == [(0, len(tr))]:
            out.append(tr)
            continue
        kept = [(a, b) for a, b in pieces if b - a >= 2]
        if not kept:  # all gaps or all stop: keep it whole, so that clean_trips judges it and says why
            out.append(tr)
            continue
        for k, (a, b) in enumerate(kept):
            out.append(tr.select(slice(a, b), f"{tr.trace_id}#{k}"))
    return out


def _stop_pieces(tr: Trace, gap_s: float, dwell_s: float, radius_m: float) -> list[tuple[int, int]]:
    """``[start, end)`` index ranges of the moving parts between stops."""
    t, pts = tr.times, tr.points
    assert t is not None
    n = len(tr)
    gaps = np.flatnonzero(np.diff(t) > gap_s)
    cuts: list[tuple[int, int]] = [(int(g), int(g) + 1) for g in gaps]  # (end of a trip, start of the next)
    # a dwell from i needs the fix dwell_s later to be within the radius too: a vectorized
    # necessary condition, so only those anchors get the exact (sequential) scan
    k = np.searchsorted(t, t + dwell_s)
    inside = k < n
    cand = np.flatnonzero(inside)
    cand = cand[haversine_m(pts[cand], pts[k[cand]]) <= radius_m]
    pos = 0
    for i in cand:
        if i < pos:
            continue
        j = _stay_end(pts, t, int(i), radius_m, gap_s)
        if t[j] - t[i] >= dwell_s:
            cuts.append((int(i), j))
            pos = j
    cuts.sort()
    pieces, start = [], 0
    for end, nxt in cuts:
        pieces.append((start, end + 1))
        start = nxt
    pieces.append((start, n))
    return pieces


def _stay_end(pts: np.ndarray, t: np.ndarray, i: int, radius_m: float, gap_s: float, chunk: int = 128) -> int:
    """Last index ``j`` such that points ``i..j`` are all within ``radius_m`` of point ``i`` (no gap inside)."""
    n = len(pts)
    j = i
    while j < n - 1:
        hi = min(n, j + 1 + chunk)
        d = haversine_m(pts[i], pts[j + 1 : hi])
        gaps = np.diff(t[j:hi]) > gap_s
        out = np.flatnonzero((d > radius_m) | gaps)
        if out.size:
            return j + int(out[0])
        j = hi - 1
    return j


def thinned_length_m(points: np.ndarray, thin_m: float, chunk: int = 256) -> tuple[float, np.ndarray]:
    """Length of the polyline through points kept at least ``thin_m`` apart, and the kept indices."""
    idx = thin_indices(points, thin_m, haversine_m, chunk)
    length = float(haversine_m(points[idx[:-1]], points[idx[1:]]).sum()) if idx.size > 1 else 0.0
    return length, idx


def clean_trips(
    traces: Trace | Iterable[Trace],
    net: RoadNetwork | None = None,
    *,
    min_points: int = 5,
    min_length_m: float = 500.0,
    min_extent_m: float = 250.0,
    max_return_ratio: float = 2.0,
    max_speed_kmh: float = 250.0,
    jitter_m: float = 100.0,
    spike_m: float = 150.0,
    max_noisy_fraction: float = 0.1,
    off_network_m: float = 100.0,
    max_off_network_fraction: float = 0.5,
    max_points: int | None = 20_000,
    thin_m: float = 100.0,
) -> tuple[list[Trace], list[TripRejection]]:
    """Keep the usable trips; return ``(kept, rejections)``, one :class:`TripRejection` per rejected trace.

    Checks, first failure wins:

    ``invalid_coordinates`` / ``invalid_times`` / ``non_monotonic_time`` / ``too_many_points``
        see :meth:`Trace.problem` (``max_points=None``: no limit);
    ``too_short``
        fewer than ``min_points`` points, a thinned length under ``min_length_m``, or
        never farther than ``min_extent_m`` from the start (a parked, jittering logger);
    ``off_network`` (only with ``net``)
        more than ``max_off_network_fraction`` of the points farther than
        ``off_network_m`` from every routable segment;
    ``too_noisy``
        more than ``max_noisy_fraction`` of the points are impossible: farther from
        the previous point than ``max_speed_kmh`` allows plus ``jitter_m`` (timed
        traces; the allowance keeps 1 Hz fixes with 30 m noise), or an out-and-back
        spike (both neighbours more than ``spike_m`` away but close to each other);
    ``too_cyclic``
        the trip came back: its farthest point from the start is more than
        ``max_return_ratio`` times as far as its end (round trips, out and back).
        Measured on positions, not on the driven length, because the length of a
        dense noisy trace is inflated by the noise (30 m noise at 1 Hz doubles it),
        while the extent is not: on trips simulated on both shipped networks the
        ratio stays under 1.6 at the 99th percentile, at 10 or 30 m noise. Loops in
        the middle of a trip show on the matched path instead: :func:`clean_paths`.
    """
    if isinstance(traces, Trace):
        traces = [traces]
    kept: list[Trace] = []
    rejected: list[TripRejection] = []
    for tr in traces:
        reason = _rejection(
            tr, net, min_points, min_length_m, min_extent_m, max_return_ratio, max_speed_kmh, jitter_m, spike_m,
            max_noisy_fraction,
            off_network_m, max_off_network_fraction, max_points, thin_m,
        )
        if reason is None:
            kept.append(tr)
        else:
            rejected.append(TripRejection(tr.trace_id, *reason))
    if rejected:
        logger.info("clean_trips: kept %d, rejected %d", len(kept), len(rejected))
    return kept, rejected


def _rejection(
    tr: Trace, net: RoadNetwork | None, min_points: int, min_length_m: float, min_extent_m: float,
    max_return_ratio: float,
    max_speed_kmh: float, jitter_m: float, spike_m: float, max_noisy_fraction: float, off_network_m: float,
    max_off_network_fraction: float, max_points: int | None, thin_m: float,
) -> tuple[str, str] | None:
    problem = tr.problem(max_points=max_points, min_points=1)
    if problem is not None:
        return problem
    n = len(tr)
    if n < min_points:
        return "too_short", f"{n} point(s), fewer than {min_points}"
    length, _ = thinned_length_m(tr.points, thin_m)
    if length < min_length_m:
        return "too_short", f"{length:.0f} m driven, less than {min_length_m:g} m"
    from_start = haversine_m(tr.points[0], tr.points)
    extent = float(from_start.max())
    if extent < min_extent_m:
        return "too_short", f"never farther than {extent:.0f} m from the start (minimum {min_extent_m:g} m)"
    if net is not None:
        _, dist = net.nearest_states(tr.points[:, 0], tr.points[:, 1], k=1, max_distance_m=off_network_m)
        off = float(np.mean(~np.isfinite(dist[:, 0])))
        if off > max_off_network_fraction:
            return "off_network", f"{off:.0%} of the points are more than {off_network_m:g} m from any road"
    noisy = _noisy_points(tr, max_speed_kmh, jitter_m, spike_m)
    if noisy.mean() > max_noisy_fraction:
        return "too_noisy", f"{noisy.mean():.0%} of the points are implausible (> {max_speed_kmh:g} km/h, or spikes)"
    displacement = float(from_start[-1])
    if extent > max_return_ratio * displacement:
        return "too_cyclic", (
            f"went {extent:.0f} m from the start but ended {displacement:.0f} m from it "
            f"(ratio > {max_return_ratio:g}: a round trip)"
        )
    return None


def _noisy_points(tr: Trace, max_speed_kmh: float, jitter_m: float, spike_m: float) -> np.ndarray:
    """``(n,)`` bool: points reached implausibly fast, or out-and-back spikes."""
    n = len(tr)
    bad = np.zeros(n, dtype=bool)
    if n < 2:
        return bad
    step = tr.step_distances_m()
    if tr.times is not None:
        dt = np.maximum(np.diff(tr.times), 0.0)
        bad[1:] |= step > max_speed_kmh / 3.6 * dt + jitter_m
    if n >= 3:
        skip = haversine_m(tr.points[:-2], tr.points[2:])
        spike = (step[:-1] > spike_m) & (step[1:] > spike_m) & (skip < 0.5 * np.minimum(step[:-1], step[1:]))
        bad[1:-1] |= spike
    return bad


def path_revisit_fraction(net: RoadNetwork, states: np.ndarray) -> float:
    """Share of a path's length on segments driven before, in either direction (loops, out-and-back)."""
    path = net.mdp.check_states(states, "path state")
    if path.size < 2:
        return 0.0
    ids = net.segment_ids[path]
    undirected = np.sort(ids[:, :2], axis=1)
    _, first = np.unique(undirected, axis=0, return_index=True)
    again = np.ones(path.size, dtype=bool)
    again[first] = False
    L = net.segment_length_m[path]
    return float(L[again].sum() / L.sum())


def clean_paths(
    net: RoadNetwork,
    paths: Iterable[tuple[str, np.ndarray]],
    *,
    min_segments: int = 2,
    max_revisit_fraction: float = 0.25,
) -> tuple[list[tuple[str, np.ndarray]], list[TripRejection]]:
    """Path-level checks after map matching; ``paths`` are ``(trace_id, states)``.

    ``too_short``: fewer than ``min_segments`` states (the model needs a transition).
    ``too_cyclic``: more than ``max_revisit_fraction`` of the length re-drives a road
    already driven (:func:`path_revisit_fraction`): loops and going back the same way.
    A U-turn right after the start re-drives only the first segment, so it passes.
    """
    kept, rejected = [], []
    for trace_id, states in paths:
        states = np.asarray(states)
        if states.size < min_segments:
            msg = f"{states.size} segment(s), fewer than {min_segments}"
            rejected.append(TripRejection(trace_id, "too_short", msg))
            continue
        frac = path_revisit_fraction(net, states)
        if frac > max_revisit_fraction:
            msg = f"{frac:.0%} of the matched path re-drives roads already driven (> {max_revisit_fraction:.0%})"
            rejected.append(TripRejection(trace_id, "too_cyclic", msg))
            continue
        kept.append((trace_id, states))
    return kept, rejected
