"""``/v1/trajectories``: upload GPS trips (JSON, GeoJSON, GPX, CSV), list and read them back.

What happens to an upload (split, clean, match, store) is :func:`app.services.ingest.ingest`.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.datastructures import UploadFile

from app.api.deps import ERROR_RESPONSES, IDEMPOTENCY_KEY_PATTERN, ApiKey, DbId, PageParams, RuntimeDep
from app.api.errors import error_response
from app.schemas import DeletedOut, ErrorOut, IngestOut, Page, TagName, TripsIn
from app.services import uploads
from app.services.errors import field_error
from app.services.ingest import upload as upload_documents
from app.services.trips import delete_tagged, delete_trip, trip_geojson, trip_summary

router = APIRouter(prefix="/v1/trajectories", tags=["trajectories"], responses=ERROR_RESPONSES)
log = logging.getLogger(__name__)

def _self_contained(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with its nested models inlined: the body is read by hand, so FastAPI does not put
    ``model`` in the document's components and a ``$ref`` to it would dangle (ReDoc refuses the whole document)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        return [inline(v) for v in node] if isinstance(node, list) else node

    return inline(schema)


_UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "Trips as JSON (`{\"trips\": [{\"id\", \"points\": [[lon, lat], ...], \"times\"}]}`), "
        "GeoJSON (LineString / MultiPoint features; times in `properties.times`), or a GPX / CSV document "
        "(raw body or multipart `file` upload; CSV columns `trip_id, lon, lat, timestamp`).",
        "content": {
            "application/json": {"schema": _self_contained(TripsIn)},
            "application/geo+json": {"schema": {
                "type": "object", "required": ["type"],
                "properties": {"type": {"type": "string", "enum": [
                    "FeatureCollection", "Feature", "LineString", "MultiLineString", "MultiPoint", "Point"]}},
            }},
            "application/gpx+xml": {"schema": {"type": "string", "minLength": 1, "pattern": "\\S"}},
            "text/csv": {"schema": {"type": "string", "minLength": 1, "pattern": "\\S"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "array", "minItems": 1, "maxItems": 20,
                                            "items": {"type": "string", "format": "binary"}}},
                },
                # the format of a file comes from its name, else from its part's content type
                "encoding": {"file": {"contentType": "application/gpx+xml, text/csv, application/geo+json"}},
            },
        },
    }
}


#: Most files (and other fields) of a multipart upload.
_MAX_PARTS = 20


async def _read_documents(request: Request) -> list[uploads.Document]:
    """The documents of the body: each ``file`` part of a multipart upload, or the raw body.

    Only the bytes are read here (the multipart parser streams); parsing them is CPU work
    that runs on the thread pool with the rest of the upload.
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        form = await request.form(max_files=_MAX_PARTS, max_fields=_MAX_PARTS)
        files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        if not files:
            raise field_error("body.file", "at least one file is required")
        return [uploads.Document(await f.read(), f.filename, f.content_type) for f in files]
    return [uploads.Document(await request.body(), None, ctype, is_body=True)]


@router.post(
    "",
    status_code=201,
    response_model=IngestOut,
    dependencies=[ApiKey],
    openapi_extra=_UPLOAD_DOC,
    responses={422: {"model": ErrorOut, "description": "Malformed input, or no trip of the upload is usable "
                     "(`no_trips_accepted`: nothing stored; `details.rejected` says why), or an Idempotency-Key "
                     "reused for another request (`idempotency_key_reused`)"}},
    summary="Upload GPS trips (JSON, GeoJSON, GPX or CSV); map-match and store them",
)
async def upload(
    rt: RuntimeDep,
    request: Request,
    split: Annotated[bool, Query(description="Split traces into trips at stops (time gaps, dwells)")] = True,
    clean: Annotated[bool, Query(description="Reject too short / noisy / cyclic / off-network trips")] = True,
    tag: Annotated[TagName | None, Query(description="A label for these trips, to train on (or delete) them later")
                   ] = None,
    idempotency_key: Annotated[str | None, Header(
        alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Any unique string (1-255 visible ASCII characters): a retry with the same key and the same "
        "body gets the first answer (header Idempotent-Replayed: true) and stores nothing again.")] = None,
) -> Any:
    """201 with ``accepted`` (a stored id per trip) and ``rejected`` (trips not used, each with a
    ``reason``). A malformed body is a 422, an upload with no usable trip a 422 ``no_trips_accepted``
    (nothing stored); too many trips or points a 413."""
    documents = await _read_documents(request)
    answer = await run_in_threadpool(upload_documents, rt, documents, split=split, clean=clean, tag=tag,
                                     idempotency_key=idempotency_key)
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    if answer.status >= 400:
        body = answer.body
        return error_response(answer.status, body["code"], body["message"], body.get("details"), headers)
    return JSONResponse(answer.body, status_code=answer.status, headers=headers)


@router.get("", response_model=Page, dependencies=[ApiKey], summary="List stored trips (oldest first)")
def list_trajectories(
    rt: RuntimeDep,
    page: PageParams,
    all_networks: Annotated[bool, Query(description="Include trips stored for other networks")] = False,
    tag: Annotated[TagName | None, Query(description="Only trips uploaded with this tag")] = None,
) -> dict[str, Any]:
    trips, total = rt.storage.trips.page(None if all_networks else rt.fingerprint, page.limit, page.offset, tag)
    return {"total": total, "limit": page.limit, "offset": page.offset,
            "items": [trip_summary(rt, t) for t in trips]}


@router.get("/{trip_id}", dependencies=[ApiKey],
            summary="One trip: GPS points and matched path as a GeoJSON FeatureCollection")
def get_trajectory(rt: RuntimeDep, trip_id: DbId) -> dict[str, Any]:
    """Two features: ``kind: gps`` (the raw points as a LineString, with ``times``) and
    ``kind: matched`` (the map-matched path, with its segment ids)."""
    return trip_geojson(rt, trip_id)


@router.delete("/{trip_id}", status_code=204, dependencies=[ApiKey], summary="Delete a stored trip")
def delete_trajectory(rt: RuntimeDep, trip_id: DbId) -> Response:
    """The next training job does without it; models already trained keep their weights."""
    delete_trip(rt, trip_id)
    return Response(status_code=204)


@router.delete("", response_model=DeletedOut, dependencies=[ApiKey], summary="Delete every trip with a tag")
def delete_trajectories(
    rt: RuntimeDep,
    tag: Annotated[TagName, Query(description="Delete the trips uploaded with this tag (required)")],
) -> dict[str, Any]:
    return {"deleted": delete_tagged(rt, tag)}
