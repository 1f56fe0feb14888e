"""Turning an uploaded document into GPS traces: JSON, GeoJSON, GPX or CSV, and the upload limits.

The format comes from the file name or the content type; the readers are the roads
layer's (:mod:`maxent_irl.roads.gps_io`), whose errors name the offending line or point.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from pydantic import ValidationError

from app.schemas import TripsIn
from app.services.errors import InvalidInputError, TooLargeError, UnsupportedMediaTypeError
from app.settings import Settings
from maxent_irl.roads import Trace, read_csv, read_geojson, read_gpx

#: What the readers return: one trace per track / feature / trip id.
Traces = list[Trace]

__all__ = [
    "CSV_TYPES",
    "GPX_TYPES",
    "JSON_TYPES",
    "Traces",
    "check_limits",
    "loads",
    "traces_from_body",
    "traces_from_document",
    "traces_from_json",
]

JSON_TYPES = {"application/json", "application/geo+json", "application/vnd.geo+json"}
GPX_TYPES = {"application/gpx+xml", "application/xml", "text/xml"}
CSV_TYPES = {"text/csv", "application/csv"}


def loads(raw: bytes | str, what: str = "body") -> Any:
    """``json.loads`` whose every failure is an ``invalid_json`` error (JSON nested too deeply included)."""
    try:
        return json.loads(raw)
    except RecursionError:
        message = "nested too deeply"
    except ValueError as exc:
        message = str(exc)
    raise InvalidInputError(f"{what} is not valid JSON: {message}", [{"field": what, "message": message}],
                            "invalid_json")


def validation_error(exc: ValidationError, prefix: tuple[str, ...] = ("body",)) -> InvalidInputError:
    """A pydantic error as the API's ``validation_error`` (one entry per field, dotted location)."""
    details = [{"field": ".".join(str(p) for p in (*prefix, *e.get("loc", ()))), "message": e.get("msg", "invalid"),
                "type": e.get("type", "")} for e in exc.errors(include_url=False)]
    first = details[0] if details else {"field": "body", "message": "invalid"}
    message = f"{first['field']}: {first['message']}" + (f" (and {len(details) - 1} more)" if len(details) > 1 else "")
    return InvalidInputError(message, details, "validation_error")


def traces_from_json(data: Any) -> list[Trace]:
    """GeoJSON (any object with a ``type``) or the API's own ``{"trips": [...]}`` document."""
    if isinstance(data, dict) and "type" in data and "trips" not in data:
        return read_geojson(data)
    try:
        trips = TripsIn.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None
    out = []
    for i, t in enumerate(trips.trips):
        times = t.time_seconds()
        out.append(Trace(np.asarray([p[:2] for p in t.points], dtype=float),
                         None if times is None else np.asarray(times, dtype=float), t.id or f"trip{i}"))
    return out


def traces_from_document(raw: bytes, filename: str | None, content_type: str | None) -> list[Trace]:
    """The traces of one uploaded document; the format from its name, else its content type."""
    name = (filename or "").lower()
    ctype = (content_type or "").split(";")[0].strip().lower()
    if name.endswith(".gpx") or (not name and ctype in GPX_TYPES):
        return read_gpx(raw)
    if name.endswith(".csv") or (not name and ctype in CSV_TYPES):
        return read_csv(raw)
    if name.endswith((".geojson", ".json")) or (not name and ctype in JSON_TYPES):
        return traces_from_json(loads(raw, filename or "file"))
    if ctype in GPX_TYPES:
        return read_gpx(raw)
    if ctype in CSV_TYPES:
        return read_csv(raw)
    if ctype in JSON_TYPES:
        return traces_from_json(loads(raw, filename or "file"))
    raise UnsupportedMediaTypeError(
        f"cannot tell the format of {filename or 'the upload'!r} ({ctype or 'no content type'}):"
        " use .gpx, .csv, .geojson or .json",
        {"filename": filename, "content_type": ctype},
    )


def check_limits(settings: Settings, traces: list[Trace]) -> None:
    """413 ``payload_too_large`` for too many trips, points per trip or points in all."""
    if len(traces) > settings.max_trips_per_request:
        raise TooLargeError(f"{len(traces)} trips in one upload; the limit is {settings.max_trips_per_request}",
                            {"max_trips_per_request": settings.max_trips_per_request})
    for i, tr in enumerate(traces):
        if len(tr) > settings.max_points_per_trip:
            raise TooLargeError(
                f"trip {i} ({tr.trace_id!r}) has {len(tr)} points; the limit is {settings.max_points_per_trip}",
                {"max_points_per_trip": settings.max_points_per_trip, "trip": i})
    total = sum(len(t) for t in traces)
    if total > settings.max_points_per_request:
        raise TooLargeError(f"{total} points in one upload; the limit is {settings.max_points_per_request}",
                            {"max_points_per_request": settings.max_points_per_request})


def traces_from_body(body: bytes, content_type: str | None) -> list[Trace]:
    """The traces of a raw request body: JSON when the type says so or says nothing, else by content type."""
    if not body.strip():
        raise InvalidInputError("body: a request body is required",
                                [{"field": "body", "message": "a request body is required"}], "validation_error")
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in JSON_TYPES or ctype == "":
        return traces_from_json(loads(body))
    return traces_from_document(body, None, ctype)
