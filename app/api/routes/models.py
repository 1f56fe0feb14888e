"""``/v1/models``: start training (202 + job), list and inspect models, switch the active one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response

from app.api.deps import ERROR_RESPONSES, IDEMPOTENCY_KEY_PATTERN, ApiKey, DbId, PageParams, RuntimeDep
from app.schemas import ErrorOut, JobOut, ModelOut, Page, TrainRequest
from app.services import models as service

router = APIRouter(prefix="/v1/models", tags=["models"], responses=ERROR_RESPONSES)


@router.post("", status_code=202, response_model=JobOut, dependencies=[ApiKey],
             responses={429: {"model": ErrorOut, "description": "Too many jobs queued or running "
                              "(`too_many_jobs`, ROUTEIRL_MAX_UNFINISHED_JOBS); see Retry-After"}},
             summary="Train a model on the stored trips (runs in a worker process)")
def train(
    rt: RuntimeDep,
    response: Response,
    body: TrainRequest | None = None,
    idempotency_key: Annotated[str | None, Header(
        alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Any unique string: a retry with the same key and options gets the first answer and "
        "queues no second job.")] = None,
) -> dict[str, Any]:
    """Queues a training job and answers at once; poll ``GET /v1/jobs/{id}``. When the job
    succeeds the new model becomes active (unless ``activate`` is false); if it fails, the
    previous model stays active. At most ``ROUTEIRL_MAX_UNFINISHED_JOBS`` jobs wait or run at
    once: 429 ``too_many_jobs`` (with ``Retry-After``) beyond."""
    answer = service.start_training(rt, body or TrainRequest(), idempotency_key)
    response.headers["Location"] = f"/v1/jobs/{answer.body['id']}"
    if answer.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return answer.body


@router.get("", response_model=Page, summary="List models, newest first")
def list_models(
    rt: RuntimeDep,
    page: PageParams,
    all_networks: Annotated[bool, Query(description="Include models of other networks")] = False,
) -> dict[str, Any]:
    models, total = rt.storage.models.page(None if all_networks else rt.fingerprint, page.limit, page.offset)
    return {"total": total, "limit": page.limit, "offset": page.offset,
            "items": [service.model_out(rt, m) for m in models]}


@router.get("/active", response_model=ModelOut, summary="The active model")
def get_active(rt: RuntimeDep) -> dict[str, Any]:
    return service.model_out(rt, service.get_model(rt, None))


@router.get("/{model_id}", response_model=ModelOut, summary="A model: weights, seconds per km, metrics")
def get_model(rt: RuntimeDep, model_id: DbId) -> dict[str, Any]:
    return service.model_out(rt, service.get_model(rt, model_id))


@router.post("/{model_id}/activate", response_model=ModelOut, dependencies=[ApiKey],
             summary="Make a model the active one")
def activate(rt: RuntimeDep, request: Request, model_id: DbId) -> dict[str, Any]:
    record = service.activate(rt, model_id)
    request.state.model_version = model_id
    return service.model_out(rt, record)
