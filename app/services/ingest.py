"""Upload -> trips: split at stops, clean, map-match, store; every trip accepted with an id or rejected with a reason.

As Ziebart et al. discard unusable trips, an upload's traces are split into trips at
stops (time gaps, dwells), trips that are too short, too noisy, too cyclic or off the
network are rejected with a reason, and the rest are map-matched. The accepted trips are
stored in one durable transaction before the answer is sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from app.storage import NewTrip
from maxent_irl.roads import InvalidTraceError, MapMatchingError, Trace, clean_trips, split_trips

if TYPE_CHECKING:
    from app.runtime import Runtime

__all__ = ["ingest"]

log = logging.getLogger(__name__)


@dataclass
class _Piece:
    """A trip cut from the upload, with the position of the trace it came from."""

    index: int
    trace: Trace


def _rejection(piece: _Piece, reason: str, message: str) -> dict[str, Any]:
    return {"trace_id": piece.trace.trace_id, "index": piece.index, "reason": reason, "message": message}


def ingest(rt: Runtime, traces: list[Trace], split: bool, clean: bool, tag: str | None = None) -> dict[str, Any]:
    """Split, clean, match and store ``traces``; the ``IngestOut`` answer. CPU-bound: call it off the event loop."""
    pieces = [_Piece(i, t) for i, t in enumerate(traces)]
    if split:
        pieces = [_Piece(p.index, part) for p in pieces for part in split_trips(p.trace)]
    accepted: list[tuple[_Piece, Any]] = []
    rejected: list[dict[str, Any]] = []
    margin = max(rt.settings.snap_distance_m, 250.0)
    for p in pieces:
        pts = np.asarray(p.trace.points, dtype=float)
        finite = pts[np.isfinite(pts).all(axis=1)] if len(pts) else pts
        if len(pts) and not any(rt.near_network(x, y, margin) for x, y in finite):
            rejected.append(_rejection(p, "off_network",
                                       f"no point lies within {margin:g} m of network {rt.net.name}'s area"))
            continue
        if clean:
            _, rejections = clean_trips([p.trace], rt.net, min_points=rt.settings.min_trip_points,
                                        min_length_m=rt.settings.min_trip_length_m)
            if rejections:
                rejected.append(_rejection(p, rejections[0].reason, rejections[0].message))
                continue
        try:
            result = rt.matcher.match(p.trace)
        except (InvalidTraceError, MapMatchingError) as exc:
            rejected.append(_rejection(p, exc.reason, str(exc)))
            continue
        if len(result.states) < 2:
            rejected.append(_rejection(p, "too_short", "the matched path has a single road segment"))
            continue
        accepted.append((p, result))
    new = [
        NewTrip(points=np.round(p.trace.points, 7).tolist(),
                times=None if p.trace.times is None else [float(t) for t in p.trace.times],
                path=[int(s) for s in result.states], trace_id=p.trace.trace_id, tag=tag)
        for p, result in accepted
    ]
    ids = rt.storage.trips.insert(rt.fingerprint, new) if new else []
    log.info("ingested %d trips, rejected %d", len(ids), len(rejected))
    return {
        "accepted": [
            {"id": trip_id, "trace_id": p.trace.trace_id, "n_points": len(p.trace),
             "n_segments": len(result.states), "unmatched_points": len(result.unmatched_points)}
            for trip_id, (p, result) in zip(ids, accepted, strict=True)
        ],
        "rejected": rejected,
        "network": rt.network_out(),
        "model_version": rt.model_version,
    }
