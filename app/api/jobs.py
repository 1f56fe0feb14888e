"""``GET /v1/jobs[/{id}]``: training jobs, their status and live progress."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from app.api.common import ERROR_RESPONSES, job_out
from app.deps import DbId, PageParams, RuntimeDep
from app.errors import ApiError
from app.schemas import JobOut, Page

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERROR_RESPONSES)


@router.get("", response_model=Page, summary="List jobs, newest first")
def list_jobs(
    rt: RuntimeDep,
    page: PageParams,
    status: Annotated[
        Literal["queued", "running", "succeeded", "failed", "interrupted"] | None, Query(description="Filter")
    ] = None,
) -> dict:
    jobs, total = rt.storage.list_jobs(page.limit, page.offset, status)
    return {"total": total, "limit": page.limit, "offset": page.offset, "items": [job_out(j) for j in jobs]}


@router.get("/{job_id}", response_model=JobOut, summary="A job's status and progress")
def get_job(rt: RuntimeDep, job_id: DbId) -> dict:
    """Progress has ``iteration``, ``log_likelihood``, ``grad_norm``, ``elapsed_s`` and a ``stage``."""
    job = rt.storage.get_job(job_id)
    if job is None:
        raise ApiError.not_found("job", job_id)
    return job_out(job)
