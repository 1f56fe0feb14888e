"""Models and jobs as the API shows them; starting a training job; switching the active model."""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.schemas import TrainRequest
from app.services.errors import (
    ConflictError,
    InvalidInputError,
    NoActiveModelError,
    NotFoundError,
    TooManyRequestsError,
)
from app.services.training import selection_from_options
from app.storage import CANCELLED, FINAL_STATUSES, JobRecord, ModelRecord, ReceiptKey
from maxent_irl.roads import weights_as_seconds

if TYPE_CHECKING:
    from app.runtime import Runtime

__all__ = ["TRAIN_SCOPE", "TrainingAnswer", "activate", "cancel_job", "get_job", "get_model", "job_view", "model_out",
           "model_view", "start_training"]

#: The endpoint whose answers are kept under an Idempotency-Key.
TRAIN_SCOPE = "POST /v1/models"
#: Retry-After of a 429 too_many_jobs (seconds): about a short training job.
RETRY_AFTER_S = 30


@dataclass(frozen=True)
class TrainingAnswer:
    """The queued job as the API shows it (``JobOut``); ``replayed`` for an answer kept under an Idempotency-Key."""

    body: dict[str, Any]
    replayed: bool = False

log = logging.getLogger(__name__)


def job_view(job: JobRecord) -> dict[str, Any]:
    """A job as the API shows it (``JobOut``), with links to itself and its model."""
    links = {"self": f"/v1/jobs/{job.id}"}
    if job.model_id is not None:
        links["model"] = f"/v1/models/{job.model_id}"
    return {"id": job.id, "kind": job.kind, "status": job.status, "options": job.options, "progress": job.progress,
            "error": job.error, "model_id": job.model_id, "created_at": job.created_at, "started_at": job.started_at,
            "finished_at": job.finished_at, "links": links}


def model_view(record: ModelRecord, network_features: list[str] | None = None) -> dict[str, Any]:
    """A model as the API shows it (``ModelOut``): weights, standard errors, and seconds where the roads layer can.

    ``network_features``: every feature of the network, so those the model has no weight for
    are listed too (``absent``: no training trip used them; ``not_trained``: not asked for).
    """
    weights = dict(zip(record.feature_names, record.theta, strict=True))
    seconds: dict[str, float] | None
    try:
        seconds = {k: float(v) for k, v in weights_as_seconds(record.theta, record.feature_names).items()}
        seconds = {k: v for k, v in seconds.items() if math.isfinite(v)}
    except ValueError:  # features the roads layer cannot express in seconds (no anchor road)
        log.debug("no seconds-per-km view of model %d", record.id, exc_info=True)
        seconds = None
    se = record.metrics.get("standard_errors") or {}
    absent = set(record.metrics.get("absent_features") or [])
    features = []
    for name in network_features or record.feature_names:
        status = "learned" if name in weights else "absent" if name in absent else "not_trained"
        features.append({"name": name, "status": status, "weight": weights.get(name),
                         "standard_error": se.get(name) if name in weights else None,
                         "seconds": None if seconds is None or name not in weights else seconds.get(name)})
    return {"id": record.id, "active": record.active,
            "network": {"name": record.network_name, "fingerprint": record.network}, "created_at": record.created_at,
            "job_id": record.job_id, "weights": weights, "features": features, "seconds_per_km": seconds,
            "options": record.options, "metrics": record.metrics}


def model_out(rt: Runtime, record: ModelRecord) -> dict[str, Any]:
    """:func:`model_view` with every feature of the network the model was trained on, when it is the service's."""
    return model_view(record, list(rt.net.mdp.feature_names) if record.network == rt.fingerprint else None)


def get_model(rt: Runtime, model_id: int | None) -> ModelRecord:
    """A stored model; ``None`` means the active one."""
    if model_id is None:
        active = rt.storage.models.active_id(rt.fingerprint)
        record = None if active is None else rt.storage.models.get(active)
        if record is None:
            raise NoActiveModelError()
        return record
    record = rt.storage.models.get(model_id)
    if record is None:
        raise NotFoundError.of("model", model_id)
    return record


def get_job(rt: Runtime, job_id: int) -> JobRecord:
    job = rt.storage.jobs.get(job_id)
    if job is None:
        raise NotFoundError.of("job", job_id)
    return job


def start_training(rt: Runtime, request: TrainRequest, idempotency_key: str | None = None) -> TrainingAnswer:
    """Queue a training job on the stored trips (the worker process runs it) and wake the job runner.

    At most ``max_unfinished_jobs`` jobs wait or run at once (429 ``too_many_jobs`` beyond). With
    ``idempotency_key`` the answer is stored with the job, in one transaction: a retry gets the
    first answer (the job as it was queued) and queues nothing; the key with other options is a
    422 ``idempotency_key_reused``.
    """
    key = None
    if idempotency_key is not None:
        key = ReceiptKey(TRAIN_SCOPE, idempotency_key,
                         hashlib.sha256(request.model_dump_json().encode()).hexdigest())
        stored = rt.storage.idempotency.get(key.scope, key.key)
        if stored is not None:
            return _replay(stored.request_hash, stored.body, key)
    names = rt.net.mdp.feature_names
    if request.features is not None:
        unknown = [f for f in request.features if f not in names]
        if unknown or len(set(request.features)) != len(request.features):
            raise InvalidInputError(
                f"unknown or repeated features {unknown or request.features}; the network has {list(names)}",
                {"unknown": unknown, "available": list(names)}, "unknown_feature")
    options = request.model_dump(exclude={"trips"})
    options["trips"] = None if request.trips is None else request.trips.as_options()
    n_trips = rt.storage.trips.count_selected(rt.fingerprint, selection_from_options(options))
    if n_trips < rt.settings.min_training_trips:
        what = "selected" if request.trips is not None else "stored"
        raise ConflictError(
            f"{n_trips} trips are {what} for this network; training needs at least {rt.settings.min_training_trips}",
            {"trips": n_trips, "min_training_trips": rt.settings.min_training_trips}, "not_enough_trips")
    options["max_iter"] = request.max_iter or rt.settings.max_iter
    if options["regularization"] is None:
        options["regularization"] = rt.settings.default_regularization
    limit = rt.settings.max_unfinished_jobs

    def answer(job: JobRecord | None) -> tuple[int, dict[str, Any]]:
        if job is None:
            raise TooManyRequestsError(
                f"{limit} training jobs are already queued or running (the limit): wait for one to finish, or "
                "cancel one (DELETE /v1/jobs/{id})", {"max_unfinished_jobs": limit}, "too_many_jobs", RETRY_AFTER_S)
        return 202, job_view(job)

    if key is None:
        job = rt.storage.jobs.create_limited("train", rt.fingerprint, options, limit)
        out = TrainingAnswer(answer(job)[1])
    else:
        receipt, fresh = rt.storage.jobs.create_once("train", rt.fingerprint, options, limit, key, answer,
                                                     rt.settings.idempotency_ttl_s)
        out = TrainingAnswer(receipt.body) if fresh else _replay(receipt.request_hash, receipt.body, key)
    rt.jobs.wake()
    return out


def _replay(stored_hash: str, body: dict[str, Any], key: ReceiptKey) -> TrainingAnswer:
    if stored_hash != key.request_hash:
        raise InvalidInputError(
            f"the Idempotency-Key {key.key!r} was used for another training request: use a new key for a new request",
            {"header": "Idempotency-Key"}, "idempotency_key_reused")
    return TrainingAnswer(body, replayed=True)


def cancel_job(rt: Runtime, job_id: int) -> JobRecord:
    """Cancel a queued or running job (a running worker is stopped within a second); a final job stays as it is."""
    job = get_job(rt, job_id)
    if job.status in FINAL_STATUSES:
        raise ConflictError(f"job {job_id} is already {job.status}", {"status": job.status}, "job_finished")
    rt.storage.jobs.finish(job_id, CANCELLED, error="cancelled by a client")
    rt.jobs.wake()  # the runner stops the worker at its next tick
    return get_job(rt, job_id)


def activate(rt: Runtime, model_id: int) -> ModelRecord:
    """Make a model active, or leave the previous one active if this one cannot be loaded."""
    record = get_model(rt, model_id)
    if record.network != rt.fingerprint:
        raise ConflictError(
            f"model {model_id} was trained on network {record.network_name} ({record.network[:12]}),"
            f" the service runs {rt.label}",
            {"model_network": record.network, "service_network": rt.fingerprint}, "model_network_mismatch")
    previous = rt.storage.models.active_id(rt.fingerprint)
    rt.storage.models.activate(model_id)
    rt.refresh()
    if rt.model_version != model_id:  # e.g. weights whose partition function diverges
        if previous is not None:
            rt.storage.models.activate(previous)
            rt.refresh()
        raise ConflictError(f"model {model_id} is stored but cannot be loaded; not activated", None,
                            "model_not_loadable")
    return get_model(rt, model_id)
