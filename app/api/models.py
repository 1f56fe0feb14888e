"""``/v1/models``: start training (202 + job), list and inspect models, switch the active one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.api.common import ERROR_RESPONSES, job_out, model_out
from app.deps import ApiKey, DbId, PageParams, RuntimeDep
from app.errors import ApiError
from app.schemas import JobOut, ModelOut, Page, TrainRequest

router = APIRouter(prefix="/v1/models", tags=["models"], responses=ERROR_RESPONSES)


@router.post(
    "",
    status_code=202,
    response_model=JobOut,
    dependencies=[ApiKey],
    summary="Train a model on the stored trips (runs in a worker process)",
)
def train(rt: RuntimeDep, response: Response, body: TrainRequest | None = None) -> dict:
    """Queues a training job and answers at once; poll ``GET /v1/jobs/{id}``. When the job
    succeeds the new model becomes active (unless ``activate`` is false); if it fails, the
    previous model stays active."""
    body = body or TrainRequest()
    names = rt.net.mdp.feature_names
    if body.features is not None:
        unknown = [f for f in body.features if f not in names]
        if unknown or len(set(body.features)) != len(body.features):
            raise ApiError(
                422,
                "unknown_feature",
                f"unknown or repeated features {unknown or body.features}; the network has {list(names)}",
                {"unknown": unknown, "available": list(names)},
            )
    n_trips = rt.storage.count_trips(rt.fingerprint)
    if n_trips < rt.settings.min_training_trips:
        raise ApiError(
            409,
            "not_enough_trips",
            f"{n_trips} trips are stored for this network; training needs at least {rt.settings.min_training_trips}",
            {"trips": n_trips, "min_training_trips": rt.settings.min_training_trips},
        )
    options = body.model_dump()
    options["max_iter"] = body.max_iter or rt.settings.max_iter
    job = rt.storage.create_job("train", rt.fingerprint, options)
    rt.jobs.wake()
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return job_out(job)


@router.get("", response_model=Page, summary="List models, newest first")
def list_models(
    rt: RuntimeDep,
    page: PageParams,
    all_networks: Annotated[bool, Query(description="Include models of other networks")] = False,
) -> dict:
    models, total = rt.storage.list_models(None if all_networks else rt.fingerprint, page.limit, page.offset)
    return {"total": total, "limit": page.limit, "offset": page.offset, "items": [model_out(m) for m in models]}


@router.get("/active", response_model=ModelOut, summary="The active model")
def get_active(rt: RuntimeDep) -> dict:
    model_id = rt.storage.active_model_id(rt.fingerprint)
    record = None if model_id is None else rt.storage.get_model(model_id)
    if record is None:
        raise ApiError.no_active_model()
    return model_out(record)


@router.get("/{model_id}", response_model=ModelOut, summary="A model: weights, seconds per km, metrics")
def get_model(rt: RuntimeDep, model_id: DbId) -> dict:
    record = rt.storage.get_model(model_id)
    if record is None:
        raise ApiError.not_found("model", model_id)
    return model_out(record)


@router.post(
    "/{model_id}/activate",
    response_model=ModelOut,
    dependencies=[ApiKey],
    summary="Make a model the active one",
)
def activate(rt: RuntimeDep, request: Request, model_id: DbId) -> dict:
    record = rt.storage.get_model(model_id)
    if record is None:
        raise ApiError.not_found("model", model_id)
    if record.network != rt.fingerprint:
        raise ApiError(
            409,
            "model_network_mismatch",
            f"model {model_id} was trained on network {record.network_name} ({record.network[:12]}),"
            f" the service runs {rt.label}",
            {"model_network": record.network, "service_network": rt.fingerprint},
        )
    previous = rt.storage.active_model_id(rt.fingerprint)
    rt.storage.activate_model(model_id)
    rt.refresh()
    if rt.model_version != model_id:  # e.g. weights whose partition function diverges
        if previous is not None:
            rt.storage.activate_model(previous)
            rt.refresh()
        raise ApiError(409, "model_not_loadable", f"model {model_id} is stored but cannot be loaded; not activated")
    request.state.model_version = model_id
    record = rt.storage.get_model(model_id)
    assert record is not None
    return model_out(record)
