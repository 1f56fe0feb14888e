"""Running one training job: read the trips, fit, score on held-out trips, store and activate the model.

:func:`run_job` runs in the worker process (:mod:`app.jobs.worker`), so a crash cannot take
the API down: the job is then marked failed and the previous model stays active, because a
model is only written and activated in the job's last, single transaction
(:meth:`~app.storage.JobStore.complete_training`).

A ``demo`` job first simulates trips on the network (if none are stored yet), so a fresh
service on the embedded network answers queries without any upload.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any

import numpy as np

from app.services.network import load_network
from app.settings import Settings
from app.storage import FAILED, RUNNING, NewTrip, Storage
from maxent_irl import FitProgress, MaxEntIRL, RouteModel
from maxent_irl.model_selection import train_test_split
from maxent_irl.roads import RoadNetwork, default_true_theta, simulate_trips

__all__ = ["JobAbortedError", "run_job"]

log = logging.getLogger(__name__)

#: Minimum seconds between two progress writes (each one is an fsynced transaction).
PROGRESS_EVERY_S = 0.2


class JobAbortedError(Exception):
    """The job must stop: its API process died or the job was marked final elsewhere."""


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def _path_metrics(model: RouteModel, paths: list[np.ndarray]) -> dict[str, Any]:
    """Log-likelihood totals and per-trip / per-segment means: comparable across data sizes."""
    if not paths:
        return {"n_trips": 0}
    lp = np.asarray(model.path_log_prob(paths), dtype=float)
    n_seg = sum(len(p) for p in paths)
    return {
        "n_trips": len(paths),
        "n_segments": int(n_seg),
        "log_likelihood": _finite(lp.sum()),
        "mean_log_likelihood_per_trip": _finite(lp.mean()),
        "mean_log_likelihood_per_segment": _finite(lp.sum() / max(1, n_seg)),
    }


def _route_metrics(model: RouteModel, paths: list[np.ndarray], limit: int = 200) -> dict[str, Any]:
    """How well the most likely route reproduces the driven one (on up to ``limit`` trips):
    the share of trips matched exactly, and the mean Jaccard overlap of their segments.
    Easier to read than a log-likelihood when comparing models."""
    sample = [p for p in paths if p.size >= 2][:limit]
    if not sample:
        return {}
    exact, overlap = 0, 0.0
    for p in sample:
        best = model.most_likely_path(int(p[0]), int(p[-1]))
        exact += int(best.size == p.size and np.array_equal(best, p))
        a, b = set(p.tolist()), set(best.tolist())
        overlap += len(a & b) / len(a | b)
    return {"most_likely_route_exact": round(exact / len(sample), 4),
            "most_likely_route_overlap": round(overlap / len(sample), 4), "n_route_trips": len(sample)}


def _simulate_demo(storage: Storage, net: RoadNetwork, settings: Settings, job_id: int) -> int:
    """Simulate and store ``settings.demo_trips`` trips (true paths as the matched paths)."""
    sims = simulate_trips(net, n_trips=settings.demo_trips, seed=settings.demo_seed)
    trips = []
    for i, sim in enumerate(sims):
        pts = np.asarray(sim.trace.points, dtype=float)
        times = None if sim.trace.times is None else [float(t) for t in np.asarray(sim.trace.times, dtype=float)]
        trips.append(
            NewTrip(
                points=pts.round(7).tolist(),
                times=times,
                path=[int(s) for s in sim.path],
                trace_id=str(getattr(sim.trace, "trace_id", None) or f"demo-{i}"),
                source="demo",
            )
        )
    storage.trips.insert(net.fingerprint, trips)
    log.info("job %d: stored %d simulated demo trips", job_id, len(trips))
    return len(trips)


def run_job(settings: Settings, job_id: int, parent_pid: int | None = None) -> int:
    """Run job ``job_id`` to completion; returns the process exit code (0 also for a clean failure)."""
    storage = Storage(settings.database_path)
    job = storage.jobs.get(job_id)
    if job is None or job.status != RUNNING:
        log.error("job %s is not running (status %s); nothing to do", job_id, job and job.status)
        return 2
    t0 = time.monotonic()
    last_write = 0.0
    progress: dict[str, Any] = {"stage": "loading network", "elapsed_s": 0.0}

    def write_progress(force: bool = False) -> None:
        nonlocal last_write
        now = time.monotonic()
        if parent_pid is not None and os.getppid() != parent_pid:
            raise JobAbortedError("the API process that started this worker is gone")
        if force or now - last_write >= PROGRESS_EVERY_S:
            progress["elapsed_s"] = round(now - t0, 3)
            storage.jobs.update_progress(job_id, progress)
            last_write = now

    try:
        write_progress(force=True)
        net = load_network(settings)
        if net.fingerprint != job.network:
            raise ValueError(f"job {job_id} is for network {job.network}, the worker loaded {net.fingerprint}")
        options = job.options
        extra_metrics: dict[str, Any] = {}
        if job.kind == "demo":
            if storage.trips.count(net.fingerprint) == 0:
                progress["stage"] = "simulating demo trips"
                write_progress(force=True)
                _simulate_demo(storage, net, settings, job_id)
            extra_metrics["simulator_theta"] = dict(
                zip(net.mdp.feature_names, map(float, default_true_theta(net.mdp.feature_names)), strict=True)
            )

        progress["stage"] = "reading trips"
        write_progress(force=True)
        trip_ids, paths = storage.trips.paths(net.fingerprint)
        if len(trip_ids) < settings.min_training_trips:
            raise ValueError(f"{len(trip_ids)} stored trips; training needs at least {settings.min_training_trips}")
        mdp = net.mdp.select_features(options.get("features"))
        arrays = [np.asarray(p, dtype=np.int64) for p in paths]
        train_idx, held_idx = train_test_split(len(arrays), float(options.get("heldout_fraction", 0.2)),
                                               int(options.get("seed", 0)))
        train = [arrays[i] for i in train_idx]
        held = [arrays[i] for i in held_idx]

        def callback(p: FitProgress) -> None:
            progress.update(
                stage="fitting",
                iteration=int(p.iteration),
                log_likelihood=_finite(p.log_likelihood),
                grad_norm=_finite(p.grad_norm),
            )
            write_progress()

        progress.update(stage="fitting", n_train=len(train), n_heldout=len(held))
        write_progress(force=True)
        est = MaxEntIRL(
            l1=float(options.get("l1", 0.0)),
            l2=float(options.get("regularization", 0.0)),
            max_iter=int(options.get("max_iter") or settings.max_iter),
            callback=callback,
        ).fit(mdp, train)
        progress.update(stage="evaluating", iteration=int(est.n_iter_), log_likelihood=_finite(est.log_likelihood_))
        write_progress(force=True)
        metrics = {
            "train": _path_metrics(est.model_, train),
            "heldout": {**_path_metrics(est.model_, held), **_route_metrics(est.model_, held)},
            "n_iter": int(est.n_iter_),
            "fit_seconds": round(time.monotonic() - t0, 3),
            **extra_metrics,
        }
        model_id = storage.jobs.complete_training(
            job_id,
            network_name=str(net.name),
            feature_names=mdp.feature_names,
            theta=[float(x) for x in est.theta_],
            options=options,
            metrics=metrics,
            activate=bool(options.get("activate", True)),
        )
        if model_id is None:
            raise JobAbortedError("the job was marked final while training; the model was discarded")
        progress["stage"] = "done"
        storage.jobs.update_progress(job_id, {**progress, "elapsed_s": round(time.monotonic() - t0, 3)})
        log.info("job %d: model %d trained in %.1f s", job_id, model_id, time.monotonic() - t0)
        return 0
    except JobAbortedError as exc:
        log.warning("job %d aborted: %s", job_id, exc)
        storage.jobs.finish(job_id, FAILED, error=f"aborted: {exc}")
        return 3
    except Exception as exc:  # a failed fit must be recorded, whatever the reason
        log.exception("job %d failed", job_id)
        storage.jobs.finish(job_id, FAILED, error=f"{type(exc).__name__}: {exc}")
        return 0
    finally:
        storage.close()
