"""``GET /v1/jobs[/{id}]``: training jobs, their status and live progress."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from app.api.deps import ERROR_RESPONSES, ApiKey, DbId, PageParams, RuntimeDep
from app.schemas import JobOut, Page
from app.services import models as service

JobStatus = Literal["queued", "running", "succeeded", "failed", "interrupted", "cancelled"]

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERROR_RESPONSES)


@router.get("", response_model=Page, summary="List jobs, newest first")
def list_jobs(
    rt: RuntimeDep,
    page: PageParams,
    status: Annotated[JobStatus | None, Query(description="Filter")] = None,
) -> dict[str, Any]:
    jobs, total = rt.storage.jobs.page(page.limit, page.offset, status)
    return {"total": total, "limit": page.limit, "offset": page.offset, "items": [service.job_view(j) for j in jobs]}


@router.get("/{job_id}", response_model=JobOut, summary="A job's status and progress")
def get_job(rt: RuntimeDep, job_id: DbId) -> dict[str, Any]:
    """Progress has ``iteration``, ``log_likelihood``, ``grad_norm``, ``elapsed_s`` and a ``stage``."""
    return service.job_view(service.get_job(rt, job_id))


@router.delete("/{job_id}", response_model=JobOut, dependencies=[ApiKey], summary="Cancel a queued or running job")
def cancel_job(rt: RuntimeDep, job_id: DbId) -> dict[str, Any]:
    """The job becomes ``cancelled`` at once; a running worker stops within about a second and writes no
    model (the previous model stays active). A job that already finished is a 409 ``job_finished``."""
    return service.job_view(service.cancel_job(rt, job_id))
