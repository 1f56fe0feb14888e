"""``GET /health`` (the process answers) and ``GET /ready`` (a model is loaded: queries work)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app import __version__
from app.api.deps import RuntimeDep
from app.schemas import HealthOut, ReadyOut

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut, summary="Liveness: the process is up")
def health() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


@router.get(
    "/ready",
    response_model=ReadyOut,
    summary="Readiness: a model is active and the database answers",
    responses={503: {"model": ReadyOut, "description": "Not ready yet (e.g. the demo model is training)"}},
)
def ready(rt: RuntimeDep) -> JSONResponse:
    body = rt.readiness()
    return JSONResponse(body, status_code=200 if body["ready"] else 503)
