"""Conversions and helpers shared by the routers."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from fastapi import Request

from app.errors import ApiError
from app.predictor import Predictor
from app.runtime import Runtime
from app.storage import JobRecord, ModelRecord

__all__ = ["ERROR_RESPONSES", "active_predictor", "job_out", "model_out", "parse_lonlat", "parse_lonlat_list"]

log = logging.getLogger(__name__)

#: Documented error responses (the body of each is app.schemas.ErrorOut).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or wrong X-API-Key (write endpoints, when a key is set)"},
    404: {"description": "Unknown id"},
    409: {"description": "No active model, or a conflict with the current state"},
    413: {"description": "Body or point count over the limits"},
    422: {"description": "Malformed input, point off the network, invalid path"},
}


def active_predictor(rt: Runtime, request: Request | None = None) -> Predictor:
    """The predictor serving this request (409 ``no_active_model`` if there is none).

    Records its version in ``request.state`` so the response header names the model used.
    """
    p = rt.predictor
    if p is None:
        raise ApiError.no_active_model()
    if request is not None:
        request.state.model_version = p.version
    return p


def job_out(job: JobRecord) -> dict[str, Any]:
    links = {"self": f"/v1/jobs/{job.id}"}
    if job.model_id is not None:
        links["model"] = f"/v1/models/{job.model_id}"
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "options": job.options,
        "progress": job.progress,
        "error": job.error,
        "model_id": job.model_id,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "links": links,
    }


def model_out(record: ModelRecord) -> dict[str, Any]:
    weights = dict(zip(record.feature_names, record.theta, strict=True))
    seconds: dict[str, float] | None
    try:
        from maxent_irl.roads import weights_as_seconds

        seconds = {k: float(v) for k, v in weights_as_seconds(record.theta, record.feature_names).items()}
        seconds = {k: v for k, v in seconds.items() if math.isfinite(v)}
    except Exception:  # a model whose features the roads layer cannot express in seconds
        log.debug("no seconds-per-km view of model %d", record.id, exc_info=True)
        seconds = None
    return {
        "id": record.id,
        "active": record.active,
        "network": {"name": record.network_name, "fingerprint": record.network},
        "created_at": record.created_at,
        "job_id": record.job_id,
        "weights": weights,
        "seconds_per_km": seconds,
        "options": record.options,
        "metrics": record.metrics,
    }


def _field_error(field: str, message: str) -> ApiError:
    return ApiError(422, "validation_error", f"{field}: {message}", [{"field": field, "message": message}])


def parse_lonlat(text: str, field: str) -> tuple[float, float]:
    """``"lon,lat"`` (or ``"lon,lat,alt"``) -> ``(lon, lat)``; a 422 ``validation_error`` naming ``field`` otherwise."""
    parts = text.strip().split(",")
    if len(parts) not in (2, 3):
        raise _field_error(field, f"expected 'lon,lat', got {text!r}")
    try:
        lon, lat, *_alt = (float(p) for p in parts)  # an altitude may follow; it is checked, then ignored
    except ValueError:
        raise _field_error(field, f"expected numbers 'lon,lat' (or 'lon,lat,alt'), got {text!r}") from None
    if not (math.isfinite(lon) and math.isfinite(lat)) or not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise _field_error(field, f"longitude must be in [-180, 180] and latitude in [-90, 90], got {text!r}")
    return lon, lat


def parse_lonlat_list(text: str, field: str, max_points: int) -> list[tuple[float, float]]:
    """``"lon,lat;lon,lat;..."`` -> list (413 over ``max_points``)."""
    items = [t for t in text.split(";") if t.strip()]
    if not items:
        raise _field_error(field, "at least one 'lon,lat' pair is required")
    if len(items) > max_points:
        raise ApiError.too_large(
            f"{len(items)} points in the query; the limit is {max_points}", {"max_query_points": max_points}
        )
    return [parse_lonlat(t, f"{field}[{i}]") for i, t in enumerate(items)]


# --- snapping and matching query input ---------------------------------------------------------------
def snap(rt: Runtime, lon: float, lat: float, field: str) -> tuple[int, float]:
    """The segment nearest to a point, within ``snap_distance_m`` (422 ``point_off_network`` else)."""
    max_d = rt.settings.snap_distance_m
    states: Any = ()
    if rt.near_network(lon, lat, max_d):
        states, dist = rt.net.nearest_states(lon, lat, k=1, max_distance_m=max_d)
    if len(states) == 0 or states[0] < 0:
        raise ApiError.off_network(
            f"{field} ({lon}, {lat}) is more than {max_d:g} m from every road of network {rt.net.name}",
            {"field": field, "point": [lon, lat], "max_distance_m": max_d},
        )
    return int(states[0]), float(dist[0])


def match_points(rt: Runtime, points: list[tuple[float, float]] | list[Any], field: str) -> np.ndarray:
    """A query trace as a path of states: one point snaps, several are map-matched."""
    from maxent_irl.roads import MapMatchingError, Trace

    if len(points) == 1:
        state, _ = snap(rt, float(points[0][0]), float(points[0][1]), f"{field}[0]")
        return np.array([state], dtype=np.int64)
    pts = np.asarray([[float(p[0]), float(p[1])] for p in points], dtype=np.float64)
    max_d = rt.settings.snap_distance_m
    if not any(rt.near_network(x, y, max_d) for x, y in pts):
        raise ApiError.off_network(
            f"every point of {field} is more than {max_d:g} m outside network {rt.net.name}",
            {"field": field, "bbox": list(rt.net.bbox)},
        )
    try:
        result = rt.matcher.match(Trace(pts, None, "query"))
    except MapMatchingError as exc:
        reason = getattr(exc, "reason", "")
        if reason == "off_network":
            raise ApiError.off_network(str(exc), {"field": field, "reason": reason}) from None
        raise ApiError(422, "map_matching_failed", str(exc), {"field": field, "reason": reason}) from None
    if result.unmatched_points:  # every point must be on the network, as a single one must: never skipped unseen
        idx = np.asarray(result.unmatched_points)
        nearest, _ = rt.net.nearest_states(pts[idx, 0], pts[idx, 1], k=1, max_distance_m=max_d)
        off = idx[nearest[:, 0] < 0]
        if off.size:
            shown = ", ".join(f"{field}[{i}]" for i in off[:5]) + (f" and {off.size - 5} more" if off.size > 5 else "")
            raise ApiError.off_network(
                f"{shown}: more than {max_d:g} m from every road of network {rt.net.name}",
                {"field": field, "points": off.tolist(), "max_distance_m": max_d},
            )
    states = np.asarray(result.states, dtype=np.int64)
    if states.size == 0:
        raise ApiError.off_network(f"no point of {field} lies on the network", {"field": field})
    return states


def segment_ids(rt: Runtime, states: np.ndarray | list[int]) -> list[list[int]]:
    return [[int(x) for x in rt.net.segment_id(int(s))] for s in states]
