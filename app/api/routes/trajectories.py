"""``/v1/trajectories``: upload GPS trips (JSON, GeoJSON, GPX, CSV), list and read them back.

What happens to an upload (split, clean, match, store) is :func:`app.services.ingest.ingest`.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from app.api.deps import ERROR_RESPONSES, IDEMPOTENCY_KEY_PATTERN, ApiKey, DbId, PageParams, RuntimeDep
from app.api.documents import UPLOAD_DOC, read_documents
from app.api.errors import error_response
from app.schemas import DeletedOut, ErrorOut, IngestOut, Page, TagName
from app.services.ingest import upload as upload_documents
from app.services.trips import delete_tagged, delete_trip, trip_geojson, trip_summary

router = APIRouter(prefix="/v1/trajectories", tags=["trajectories"], responses=ERROR_RESPONSES)
log = logging.getLogger(__name__)

@router.post(
    "",
    status_code=201,
    response_model=IngestOut,
    dependencies=[ApiKey],
    openapi_extra=UPLOAD_DOC,
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
    documents = await read_documents(request)
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
