"""Turning an uploaded document into GPS traces: JSON, GeoJSON, GPX or CSV, and the upload limits.

The format comes from the file name or the content type; the readers are the roads
layer's (:mod:`maxent_irl.roads.gps_io`), whose errors name the offending line or point.

Limits are checked before the work they bound: a JSON document is refused (413) from a
count of its brackets before it is parsed, the API's trip list from the lengths of its
lists before each point is validated, and the readers stop at the first point beyond
``max_points_per_request``. All of it is CPU work: callers run it off the event loop.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from app.schemas import TripsIn
from app.services.errors import InvalidInputError, TooLargeError, UnsupportedMediaTypeError
from app.settings import Settings
from maxent_irl.roads import GPSLimitError, Trace, read_csv, read_geojson, read_gpx

#: What the readers return: one trace per track / feature / trip id.
Traces = list[Trace]

__all__ = [
    "CSV_TYPES",
    "GPX_TYPES",
    "JSON_TYPES",
    "MAX_TRIP_ID_CHARS",
    "Document",
    "Traces",
    "check_limits",
    "loads",
    "request_hash",
    "traces_from_body",
    "traces_from_document",
    "traces_from_documents",
    "traces_from_json",
]

#: Longest trip id (the client's name for a trip) in any format; the JSON schema's limit too.
MAX_TRIP_ID_CHARS = 200
#: Most validation problems listed in an error's details (the API cuts them again).
_MAX_DETAILS = 20


@dataclass(frozen=True)
class Document:
    """One uploaded document: the raw body, or one file of a multipart upload."""

    raw: bytes
    filename: str | None = None
    content_type: str | None = None
    is_body: bool = False  # a raw request body (JSON unless its type says otherwise)


def request_hash(documents: list[Document], params: dict[str, Any]) -> str:
    """A digest of what an upload sent (documents and options), to tell a retry from another request.

    Multipart boundaries are not part of it: the same files sent again by another client
    (curl draws a new boundary each time) are the same request.
    """
    h = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    for d in documents:
        h.update(json.dumps([d.filename, (d.content_type or "").split(";")[0].strip().lower(), d.is_body]).encode())
        h.update(hashlib.sha256(d.raw).digest())
    return h.hexdigest()

JSON_TYPES = {"application/json", "application/geo+json", "application/vnd.geo+json"}
GPX_TYPES = {"application/gpx+xml", "application/xml", "text/xml"}
CSV_TYPES = {"text/csv", "application/csv"}


def loads(raw: bytes | str, what: str = "body", settings: Settings | None = None) -> Any:
    """``json.loads`` whose every failure is an ``invalid_json`` error (JSON nested too deeply included).

    With ``settings``, a document with more arrays and objects than an upload within the point
    and trip limits can hold is refused (413) from a count of its brackets, before it is parsed:
    parsing allocates about 100 bytes per array.
    """
    if settings is not None:
        data = raw.encode() if isinstance(raw, str) else raw
        containers = data.count(b"[") + data.count(b"{")
        bound = 4 * settings.max_points_per_request + 8 * settings.max_trips_per_request + 1000
        if containers > bound:
            raise TooLargeError(
                f"{what} holds {containers} JSON arrays and objects; an upload of at most "
                f"{settings.max_points_per_request} points and {settings.max_trips_per_request} trips holds at most "
                f"{bound}", {"max_points_per_request": settings.max_points_per_request,
                             "max_trips_per_request": settings.max_trips_per_request})
    try:
        return json.loads(raw)
    except RecursionError:
        message = "nested too deeply"
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 text ({exc.reason} at byte {exc.start})"
    except ValueError as exc:
        message = str(exc)[:200]
    raise InvalidInputError(f"{what} is not valid JSON: {message}", [{"field": what, "message": message}],
                            "invalid_json")


def validation_error(exc: ValidationError, prefix: tuple[str, ...] = ("body",)) -> InvalidInputError:
    """A pydantic error as the API's ``validation_error`` (one entry per field, the first few, dotted location)."""
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    details: list[dict[str, Any]] = [
        {"field": ".".join(str(p) for p in (*prefix, *e.get("loc", ()))), "message": e.get("msg", "invalid"),
         "type": e.get("type", "")} for e in errors[: _MAX_DETAILS - 1]]
    if len(errors) > len(details):
        details.append({"truncated": True, "shown": len(details), "total": len(errors),
                        "message": f"{len(errors) - len(details)} more not shown"})
    first = details[0] if details else {"field": "body", "message": "invalid"}
    message = f"{first['field']}: {first['message']}" + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")
    return InvalidInputError(message, details, "validation_error")


def _check_counts(settings: Settings, data: Any) -> None:
    """413 from the lengths of the API's ``{"trips": [{"points": [...]}]}`` lists, before pydantic looks at a point."""
    trips = data.get("trips") if isinstance(data, dict) else None
    if not isinstance(trips, list):
        return
    sizes = [len(t["points"]) if isinstance(t, dict) and isinstance(t.get("points"), list) else 0 for t in trips]
    check_counts(settings, sizes)


def traces_from_json(data: Any, settings: Settings | None = None, max_points: int | None = None) -> list[Trace]:
    """GeoJSON (any object with a ``type``) or the API's own ``{"trips": [...]}`` document."""
    if isinstance(data, dict) and "type" in data and "trips" not in data:
        return _read(read_geojson, data, max_points)
    if settings is not None:
        _check_counts(settings, data)
    try:
        trips = TripsIn.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None
    out = []
    for i, t in enumerate(trips.trips):
        if t.id is not None and not _is_text(t.id):
            raise InvalidInputError(f"body.trips.{i}.id: not valid Unicode text (a lone surrogate)",
                                    [{"field": f"body.trips.{i}.id", "message": "not valid Unicode text",
                                      "type": "string_unicode"}], "validation_error")
        times = t.time_seconds()
        out.append(Trace(np.asarray([p[:2] for p in t.points], dtype=float),
                         None if times is None else np.asarray(times, dtype=float), t.id or f"trip{i}"))
    return out


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _read(reader: Any, source: Any, max_points: int | None) -> list[Trace]:
    """A roads reader with the service's limits; its GPSLimitError is the API's 413."""
    try:
        traces: list[Trace] = reader(source, max_points=max_points, max_id_length=MAX_TRIP_ID_CHARS)
    except GPSLimitError as exc:
        raise TooLargeError(str(exc), {exc.limit: exc.value}) from None
    return traces


def traces_from_document(raw: bytes, filename: str | None, content_type: str | None,
                         settings: Settings | None = None, max_points: int | None = None) -> list[Trace]:
    """The traces of one uploaded document; the format from its name, else its content type."""
    if settings is not None and max_points is None:
        max_points = settings.max_points_per_request
    name = (filename or "").lower()
    ctype = (content_type or "").split(";")[0].strip().lower()
    what = filename or "file"
    if name.endswith(".gpx") or (not name and ctype in GPX_TYPES):
        return _read(read_gpx, raw, max_points)
    if name.endswith(".csv") or (not name and ctype in CSV_TYPES):
        return _read(read_csv, raw, max_points)
    if name.endswith((".geojson", ".json")) or (not name and ctype in JSON_TYPES):
        return traces_from_json(loads(raw, what, settings), settings, max_points)
    if ctype in GPX_TYPES:
        return _read(read_gpx, raw, max_points)
    if ctype in CSV_TYPES:
        return _read(read_csv, raw, max_points)
    if ctype in JSON_TYPES:
        return traces_from_json(loads(raw, what, settings), settings, max_points)
    raise UnsupportedMediaTypeError(
        f"cannot tell the format of {filename or 'the upload'!r} ({ctype or 'no content type'}):"
        " use .gpx, .csv, .geojson or .json",
        {"filename": filename, "content_type": ctype},
    )


def check_counts(settings: Settings, sizes: list[int]) -> None:
    """413 ``payload_too_large`` for too many trips, points per trip or points in all (``sizes``: points per trip)."""
    if len(sizes) > settings.max_trips_per_request:
        raise TooLargeError(f"{len(sizes)} trips in one upload; the limit is {settings.max_trips_per_request}",
                            {"max_trips_per_request": settings.max_trips_per_request})
    for i, n in enumerate(sizes):
        if n > settings.max_points_per_trip:
            raise TooLargeError(f"trip {i} has {n} points; the limit is {settings.max_points_per_trip}",
                                {"max_points_per_trip": settings.max_points_per_trip, "trip": i})
    total = sum(sizes)
    if total > settings.max_points_per_request:
        raise TooLargeError(f"{total} points in one upload; the limit is {settings.max_points_per_request}",
                            {"max_points_per_request": settings.max_points_per_request})


def check_limits(settings: Settings, traces: list[Trace]) -> None:
    """413 ``payload_too_large`` for too many trips, points per trip or points in all."""
    check_counts(settings, [len(t) for t in traces])


def traces_from_body(body: bytes, content_type: str | None, settings: Settings | None = None) -> list[Trace]:
    """The traces of a raw request body: JSON when the type says so or says nothing, else by content type."""
    if not body.strip():
        raise InvalidInputError("body: a request body is required",
                                [{"field": "body", "message": "a request body is required"}], "validation_error")
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in JSON_TYPES or ctype == "":
        return traces_from_json(loads(body, "body", settings), settings,
                                None if settings is None else settings.max_points_per_request)
    return traces_from_document(body, None, ctype, settings)


def traces_from_documents(settings: Settings, documents: list[Document]) -> list[Trace]:
    """Every trace of an upload (its documents read in order, the point budget shared), within the limits."""
    traces: list[Trace] = []
    for d in documents:
        left = settings.max_points_per_request - sum(len(t) for t in traces)
        if d.is_body:
            traces.extend(traces_from_body(d.raw, d.content_type, settings))
        else:
            traces.extend(traces_from_document(d.raw, d.filename, d.content_type, settings, max(left, 0)))
        check_limits(settings, traces)
    return traces
