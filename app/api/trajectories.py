"""``/v1/trajectories``: upload GPS trips (JSON, GeoJSON, GPX, CSV), list and read them back.

An upload is split at stops (time gaps / dwells), cleaned (too short, too noisy, too
cyclic, off the network: rejected with a reason, as Ziebart et al. discard unusable
trips), map-matched, and the accepted trips are stored in one durable transaction before
the 201 is sent.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from app.api.common import ERROR_RESPONSES, segment_ids
from app.deps import ApiKey, DbId, PageParams, RuntimeDep
from app.errors import ApiError
from app.runtime import Runtime
from app.schemas import IngestOut, Page, TripsIn
from app.storage import NewTrip

router = APIRouter(prefix="/v1/trajectories", tags=["trajectories"], responses=ERROR_RESPONSES)
log = logging.getLogger(__name__)

JSON_TYPES = {"application/json", "application/geo+json", "application/vnd.geo+json"}
GPX_TYPES = {"application/gpx+xml", "application/xml", "text/xml"}
CSV_TYPES = {"text/csv", "application/csv"}

_UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "Trips as JSON (`{\"trips\": [{\"id\", \"points\": [[lon, lat], ...], \"times\"}]}`), "
        "GeoJSON (LineString / MultiPoint features; times in `properties.times`), or a GPX / CSV document "
        "(raw body or multipart `file` upload; CSV columns `trip_id, lon, lat, timestamp`).",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/TripsIn"}},
            "application/geo+json": {"schema": {"type": "object"}},
            "application/gpx+xml": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"}}},
                }
            },
        },
    }
}


@dataclass
class _Upload:
    """A trace with the position of the trip it came from in the upload."""

    index: int
    trace: Any


def _validation_error(exc: ValidationError, prefix: tuple[str, ...] = ("body",)) -> RequestValidationError:
    errors = [{**e, "loc": (*prefix, *e.get("loc", ()))} for e in exc.errors(include_url=False)]
    return RequestValidationError(errors)


def _json_traces(data: Any) -> list[Any]:
    from maxent_irl.roads import Trace, read_geojson

    if isinstance(data, dict) and "type" in data and "trips" not in data:
        return read_geojson(data)
    try:
        trips = TripsIn.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc) from None
    return [
        Trace(np.asarray([p[:2] for p in t.points], dtype=float), t.time_seconds(), t.id or f"trip{i}")
        for i, t in enumerate(trips.trips)
    ]


def _loads(raw: bytes) -> Any:
    """``json.loads`` whose every failure is a ``ValueError`` (JSON nested too deeply overflows the stack)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _file_traces(raw: bytes, filename: str | None, content_type: str | None) -> list[Any]:
    from maxent_irl.roads import read_csv, read_gpx

    name = (filename or "").lower()
    ctype = (content_type or "").split(";")[0].strip().lower()
    if name.endswith(".gpx") or ctype in GPX_TYPES:
        return read_gpx(raw)
    if name.endswith(".csv") or ctype in CSV_TYPES:
        return read_csv(raw)
    if name.endswith((".geojson", ".json")) or ctype in JSON_TYPES:
        try:
            data = _loads(raw)
        except ValueError as exc:
            raise ApiError(422, "invalid_json", f"{filename or 'file'}: not valid JSON: {exc}") from None
        return _json_traces(data)
    raise ApiError(
        415,
        "unsupported_media_type",
        f"cannot tell the format of {filename or 'the upload'!r} ({ctype or 'no content type'}):"
        " use .gpx, .csv, .geojson or .json",
        {"filename": filename, "content_type": ctype},
    )


async def _read_traces(request: Request) -> list[Any]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        form = await request.form()
        files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        if not files:
            raise ApiError(422, "validation_error", "body.file: no file in the multipart upload",
                           [{"field": "body.file", "message": "at least one file is required"}])
        traces = []
        for f in files:
            traces.extend(_file_traces(await f.read(), f.filename, f.content_type))
        return traces
    body = await request.body()
    if not body.strip():
        raise ApiError(422, "validation_error", "body: a request body is required",
                       [{"field": "body", "message": "a request body is required"}])
    if ctype in JSON_TYPES or ctype == "":
        try:
            data = _loads(body)
        except ValueError as exc:
            raise ApiError(422, "invalid_json", f"body is not valid JSON: {exc}",
                           [{"field": "body", "message": str(exc)}]) from None
        return _json_traces(data)
    return _file_traces(body, None, ctype)


def _check_limits(rt: Runtime, traces: list[Any]) -> None:
    s = rt.settings
    if len(traces) > s.max_trips_per_request:
        raise ApiError.too_large(
            f"{len(traces)} trips in one upload; the limit is {s.max_trips_per_request}",
            {"max_trips_per_request": s.max_trips_per_request},
        )
    for i, tr in enumerate(traces):
        if len(tr) > s.max_points_per_trip:
            raise ApiError.too_large(
                f"trip {i} ({tr.trace_id!r}) has {len(tr)} points; the limit is {s.max_points_per_trip}",
                {"max_points_per_trip": s.max_points_per_trip, "trip": i},
            )
    total = sum(len(t) for t in traces)
    if total > s.max_points_per_request:
        raise ApiError.too_large(
            f"{total} points in one upload; the limit is {s.max_points_per_request}",
            {"max_points_per_request": s.max_points_per_request},
        )


def ingest(rt: Runtime, traces: list[Any], split: bool, clean: bool) -> dict[str, Any]:
    """Split, clean, match and store; returns the IngestOut body. Runs on a worker thread."""
    from maxent_irl.roads import InvalidTraceError, MapMatchingError, clean_trips, split_trips

    uploads = [_Upload(i, t) for i, t in enumerate(traces)]
    if split:
        uploads = [_Upload(u.index, piece) for u in uploads for piece in split_trips(u.trace)]
    accepted: list[tuple[_Upload, Any]] = []
    rejected: list[dict[str, Any]] = []
    margin = max(rt.settings.snap_distance_m, 250.0)
    for u in uploads:
        pts = np.asarray(u.trace.points, dtype=float)
        if len(pts) and not any(rt.near_network(x, y, margin) for x, y in pts if np.isfinite(x) and np.isfinite(y)):
            rejected.append({"trace_id": u.trace.trace_id, "index": u.index, "reason": "off_network",
                             "message": f"no point lies within {margin:g} m of network {rt.net.name}'s area"})
            continue
        if clean:
            _, rejections = clean_trips(
                [u.trace], rt.net, min_points=rt.settings.min_trip_points, min_length_m=rt.settings.min_trip_length_m
            )
            if rejections:
                r = rejections[0]
                rejected.append({"trace_id": u.trace.trace_id, "index": u.index, "reason": r.reason,
                                 "message": r.message})
                continue
        try:
            result = rt.matcher.match(u.trace)
        except (InvalidTraceError, MapMatchingError) as exc:
            rejected.append({"trace_id": u.trace.trace_id, "index": u.index, "reason": exc.reason,
                             "message": str(exc)})
            continue
        if len(result.states) < 2:
            rejected.append({"trace_id": u.trace.trace_id, "index": u.index, "reason": "too_short",
                             "message": "the matched path has a single road segment"})
            continue
        accepted.append((u, result))
    new = [
        NewTrip(
            points=np.round(u.trace.points, 7).tolist(),
            times=None if u.trace.times is None else [float(t) for t in u.trace.times],
            path=[int(s) for s in result.states],
            trace_id=u.trace.trace_id,
        )
        for u, result in accepted
    ]
    ids = rt.storage.insert_trips(rt.fingerprint, new) if new else []
    log.info("ingested %d trips, rejected %d", len(ids), len(rejected))
    return {
        "accepted": [
            {
                "id": trip_id,
                "trace_id": u.trace.trace_id,
                "n_points": len(u.trace),
                "n_segments": len(result.states),
                "unmatched_points": len(result.unmatched_points),
            }
            for trip_id, (u, result) in zip(ids, accepted, strict=True)
        ],
        "rejected": rejected,
        "network": rt.network_out(),
        "model_version": rt.model_version,
    }


@router.post(
    "",
    status_code=201,
    response_model=IngestOut,
    dependencies=[ApiKey],
    openapi_extra=_UPLOAD_DOC,
    summary="Upload GPS trips (JSON, GeoJSON, GPX or CSV); map-match and store them",
)
async def upload(
    rt: RuntimeDep,
    request: Request,
    split: Annotated[bool, Query(description="Split traces into trips at stops (time gaps, dwells)")] = True,
    clean: Annotated[bool, Query(description="Reject too short / noisy / cyclic / off-network trips")] = True,
) -> dict[str, Any]:
    """201 with ``accepted`` (a stored id per trip) and ``rejected`` (trips not used, each with a
    ``reason``). A malformed body is a 422; too many trips or points a 413."""
    traces = await _read_traces(request)
    _check_limits(rt, traces)
    return await run_in_threadpool(ingest, rt, traces, split, clean)


def _summary(rt: Runtime, trip: Any) -> dict[str, Any]:
    same = trip.network == rt.fingerprint
    return {
        "id": trip.id,
        "trace_id": trip.trace_id,
        "source": trip.source,
        "created_at": trip.created_at,
        "n_points": trip.n_points,
        "n_segments": trip.path_length,
        "origin_segment": segment_ids(rt, [trip.origin])[0] if same else None,
        "destination_segment": segment_ids(rt, [trip.destination])[0] if same else None,
    }


@router.get("", response_model=Page, summary="List stored trips (oldest first)")
def list_trajectories(
    rt: RuntimeDep,
    page: PageParams,
    all_networks: Annotated[bool, Query(description="Include trips stored for other networks")] = False,
) -> dict[str, Any]:
    trips, total = rt.storage.list_trips(None if all_networks else rt.fingerprint, page.limit, page.offset)
    return {"total": total, "limit": page.limit, "offset": page.offset, "items": [_summary(rt, t) for t in trips]}


@router.get("/{trip_id}", summary="One trip: GPS points and matched path as a GeoJSON FeatureCollection")
def get_trajectory(rt: RuntimeDep, trip_id: DbId) -> dict[str, Any]:
    """Two features: ``kind: gps`` (the raw points as a LineString, with ``times``) and
    ``kind: matched`` (the map-matched path, with its segment ids)."""
    trip = rt.storage.get_trip(trip_id)
    if trip is None:
        raise ApiError.not_found("trajectory", trip_id)
    features: list[dict[str, Any]] = [
        {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": trip.points},
            "properties": {"kind": "gps", "times": trip.times, "n_points": trip.n_points},
        }
    ]
    if trip.network == rt.fingerprint:
        path = np.asarray(trip.path, dtype=np.int64)
        features.append(
            {
                "type": "Feature",
                "geometry": rt.path_geometry(path),
                "properties": {
                    "kind": "matched",
                    "n_segments": int(path.size),
                    "segments": segment_ids(rt, path),
                    "length_m": round(float(rt.net.segment_length_m[path].sum()), 1),
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "features": features,
        "id": trip.id,
        "trace_id": trip.trace_id,
        "source": trip.source,
        "created_at": trip.created_at,
        "network": {"fingerprint": trip.network, "name": rt.net.name if trip.network == rt.fingerprint else None},
        "model_version": rt.model_version,
    }
