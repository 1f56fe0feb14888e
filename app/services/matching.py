"""Map matching alone (``POST /v1/match``): GPS traces in, matched pieces and per-point placements out, nothing stored.

Modelled on OSRM's ``/match`` with this service's conventions (``[lon, lat]``, GeoJSON,
``{code, message, details}`` errors): ``features`` are the matched pieces of every trace as
LineStrings (a trace splits into pieces where no plausible route joins its points), and
``traces`` gives, for every input point, where it was placed (``location``, ``segment``,
``distance_m``, ``confidence``) or why it was not (``reason``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from app.services.errors import InvalidInputError
from app.services.uploads import Document, check_limits, traces_from_documents
from maxent_irl.roads import InvalidTraceError, MapMatchingError, Trace, route_geometry
from maxent_irl.roads.matching import MatchResult

if TYPE_CHECKING:
    from app.runtime import Runtime

__all__ = ["match_documents"]


def _round(x: float, digits: int = 3) -> float | None:
    return None if not math.isfinite(x) else round(float(x), digits)


def _piece_feature(rt: Runtime, result: MatchResult, index: int, trace: Trace, k: int) -> dict[str, Any]:
    piece = result.pieces[k]
    states = piece.states
    first, last = piece.first_point, piece.last_point
    start = result.point_offsets_m[first] if result.point_path_index[first] == 0 else 0.0
    end_state = int(states[-1])
    end = float(rt.net.segment_length_m[end_state])
    if result.point_states[last] == end_state and math.isfinite(result.point_offsets_m[last]):
        end = float(result.point_offsets_m[last])
    if states.size == 1:
        end = max(end, float(start))
    line = route_geometry(rt.net, states, float(start), end)
    return {"type": "Feature", "geometry": {"type": "LineString", "coordinates": line.coordinates}, "properties": {
        "trace": index, "trace_id": trace.trace_id, "piece": k, "confidence": _round(piece.confidence, 4),
        "distance_m": round(line.distance_m, 1), "duration_s": round(line.duration_s, 1),
        "first_point": first, "last_point": last, "n_points": int(piece.points.size),
        "n_segments": int(states.size), "segments": rt.net.geojson.segment_ids(states)}}


def _tracepoints(rt: Runtime, result: MatchResult) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(len(result.point_states)):
        s = int(result.point_states[i])
        if s < 0:
            out.append({"index": i, "location": None, "segment": None, "distance_m": None, "confidence": None,
                        "piece": None, "reason": result.point_reason[i] or "off_network"})
            continue
        lon, lat = result.point_lonlat[i]
        out.append({"index": i, "location": [round(float(lon), 7), round(float(lat), 7)],
                    "segment": rt.net.geojson.segment_id(s), "distance_m": _round(result.point_distances_m[i], 2),
                    "confidence": _round(result.point_confidence[i], 4), "piece": int(result.point_piece[i]),
                    "reason": None})
    return out


def match_documents(rt: Runtime, documents: list[Document]) -> dict[str, Any]:
    """Match every trace of the documents; 422 ``no_trace_matched`` when none can be. CPU-bound: off the event loop."""
    traces = traces_from_documents(rt.settings, documents)
    check_limits(rt.settings, traces)
    features: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for index, trace in enumerate(traces):
        try:
            result = rt.matcher.match(trace)
        except (InvalidTraceError, MapMatchingError) as exc:
            rejected.append({"index": index, "trace_id": trace.trace_id, "reason": exc.reason, "message": str(exc)})
            continue
        features.extend(_piece_feature(rt, result, index, trace, k) for k in range(len(result.pieces)))
        summaries.append({"index": index, "trace_id": trace.trace_id, "n_points": len(trace),
                          "n_matched": int(np.sum(result.point_states >= 0)), "n_pieces": len(result.pieces),
                          "confidence": _round(result.confidence, 4), "used_times": bool(result.used_times),
                          "tracepoints": _tracepoints(rt, result)})
    if not summaries:
        first = rejected[0] if rejected else {"reason": "empty", "message": "no trace in the request"}
        raise InvalidInputError(f"no trace could be matched: {first['message']}",
                                {"rejected": rejected[:20], "n_rejected": len(rejected)},
                                "point_off_network" if first["reason"] == "off_network" else "no_trace_matched")
    return {"type": "FeatureCollection", "features": features, "traces": summaries, "rejected": rejected,
            "network": rt.network_out()}
