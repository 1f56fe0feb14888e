"""``POST /v1/match``: map-match GPS traces (JSON, GeoJSON, GPX, CSV), answer where each point lies; store nothing."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from app.api.deps import ERROR_RESPONSES, RuntimeDep
from app.api.documents import UPLOAD_DOC, read_documents
from app.services.matching import match_documents

router = APIRouter(prefix="/v1/match", tags=["match"], responses=ERROR_RESPONSES)


@router.post("", openapi_extra=UPLOAD_DOC,
             summary="Map-match GPS traces: pieces and per-point placements (stores nothing)")
async def match(rt: RuntimeDep, request: Request) -> Any:
    """Takes what ``POST /v1/trajectories`` takes. The answer is a GeoJSON FeatureCollection: one LineString
    per matched piece (``trace``, ``piece``, ``confidence``, ``distance_m``, ``duration_s``, ``segments``,
    ``first_point`` / ``last_point``: a trace splits where no plausible route joins its points), ``traces``
    with, per input point, its snapped ``location``, ``segment``, ``distance_m``, ``confidence`` and ``piece``
    (or ``reason`` why it is not matched: ``off_network``, ``outlier``), and ``rejected`` traces with a
    reason. A request none of whose traces can be matched is a 422."""
    documents = await read_documents(request)
    return JSONResponse(await run_in_threadpool(match_documents, rt, documents))
