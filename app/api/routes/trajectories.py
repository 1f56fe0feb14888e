"""``/v1/trajectories``: upload GPS trips (JSON, GeoJSON, GPX, CSV), list and read them back.

What happens to an upload (split, clean, match, store) is :func:`app.services.ingest.ingest`.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from starlette.datastructures import UploadFile

from app.api.deps import ERROR_RESPONSES, ApiKey, DbId, PageParams, RuntimeDep
from app.schemas import DeletedOut, IngestOut, Page, TagName, TripsIn
from app.services import uploads
from app.services.errors import field_error
from app.services.ingest import ingest
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


async def _read_traces(request: Request) -> uploads.Traces:
    """The traces of the body: a multipart upload (each ``file`` part a document) or a raw document."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        form = await request.form()
        files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        if not files:
            raise field_error("body.file", "at least one file is required")
        traces: uploads.Traces = []
        for f in files:
            traces.extend(uploads.traces_from_document(await f.read(), f.filename, f.content_type))
        return traces
    return uploads.traces_from_body(await request.body(), ctype)


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
    tag: Annotated[TagName | None, Query(description="A label for these trips, to train on (or delete) them later")
                   ] = None,
) -> dict[str, Any]:
    """201 with ``accepted`` (a stored id per trip) and ``rejected`` (trips not used, each with a
    ``reason``). A malformed body is a 422; too many trips or points a 413."""
    traces = await _read_traces(request)
    uploads.check_limits(rt.settings, traces)
    return await run_in_threadpool(ingest, rt, traces, split, clean, tag)


@router.get("", response_model=Page, summary="List stored trips (oldest first)")
def list_trajectories(
    rt: RuntimeDep,
    page: PageParams,
    all_networks: Annotated[bool, Query(description="Include trips stored for other networks")] = False,
    tag: Annotated[TagName | None, Query(description="Only trips uploaded with this tag")] = None,
) -> dict[str, Any]:
    trips, total = rt.storage.trips.page(None if all_networks else rt.fingerprint, page.limit, page.offset, tag)
    return {"total": total, "limit": page.limit, "offset": page.offset,
            "items": [trip_summary(rt, t) for t in trips]}


@router.get("/{trip_id}", summary="One trip: GPS points and matched path as a GeoJSON FeatureCollection")
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
