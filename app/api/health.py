"""``GET /health`` (the process answers) and ``GET /ready`` (a model is loaded: queries work)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.deps import RuntimeDep
from app.schemas import HealthOut, ReadyOut

router = APIRouter(tags=["health"])

VERSION = "0.1.0"


@router.get("/health", response_model=HealthOut, summary="Liveness: the process is up")
def health() -> dict:
    return {"status": "ok", "version": VERSION}


@router.get(
    "/ready",
    response_model=ReadyOut,
    summary="Readiness: a model is active and the database answers",
    responses={503: {"model": ReadyOut, "description": "Not ready yet (e.g. the demo model is training)"}},
)
def ready(rt: RuntimeDep) -> JSONResponse:
    db_ok = rt.storage.ping()
    version = rt.model_version
    body = {"ready": bool(db_ok and version is not None), "model_version": version, "network": rt.network_out()}
    if not db_ok:
        body["reason"] = "the database does not answer"
    elif version is None:
        running = rt.storage.unfinished_jobs(rt.fingerprint)
        body["reason"] = (
            f"no active model yet; job {running[0].id} is {running[0].status}"
            if running
            else "no active model: post trips and train one (POST /v1/models)"
        )
    else:
        body["trips"] = rt.storage.count_trips(rt.fingerprint)
    return JSONResponse(body, status_code=200 if body["ready"] else 503)
