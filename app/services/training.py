"""Running one training job: read the trips, set aside what cannot be used, fit, score, store and activate.

:func:`run_job` runs in the worker process (:mod:`app.jobs.worker`), so a crash cannot take
the API down: the job is then marked failed and the previous model stays active, because a
model is only written and activated in the job's last, single transaction
(:meth:`~app.storage.JobStore.complete_training`).

No single trip can block training: a stored trip the model cannot use is set aside with a
reason and named by its id in the job's result (:func:`screen_trips`). Weights are
identified: a feature no training trip uses is left out of the fit and reported as absent
(:func:`used_features`), a small default L2 penalty keeps weakly identified weights finite,
and each learned weight comes with its standard error (observed information of the
penalized likelihood).

A ``demo`` job first simulates trips on the network (if none are stored yet), so a fresh
service on the embedded network answers queries without any upload.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.services.network import load_network
from app.settings import Settings
from app.storage import FAILED, RUNNING, NewTrip, Storage, TripSelection
from maxent_irl import FitProgress, InvalidPathError, MaxEntIRL, MaxEntIRLError, RouteMDP, RouteModel
from maxent_irl.model_selection import train_test_split
from maxent_irl.objective import make_trip_set
from maxent_irl.roads import RoadNetwork, default_true_theta, simulate_trips
from maxent_irl.roads.destinations import fit_destination_prior
from maxent_irl.uncertainty import covariance, information_matrix

__all__ = ["JobAbortedError", "ScreenedTrips", "progress_fraction", "run_job", "screen_trips", "selection_from_options",
           "used_features"]

log = logging.getLogger(__name__)

#: Minimum seconds between two progress writes (each one is an fsynced transaction).
PROGRESS_EVERY_S = 0.2
#: Seconds between two checks whether the job was cancelled (a read).
CANCEL_CHECK_S = 1.0
#: Set-aside trips named one by one in the job's result (all of them are counted).
MAX_NAMED_SET_ASIDE = 200
#: The share of a job's progress bar (``progress.fraction``) each stage spans, from its start to its end.
STAGE_SHARES: dict[str, tuple[float, float]] = {
    "loading network": (0.0, 0.02), "simulating demo trips": (0.02, 0.08), "reading trips": (0.08, 0.1),
    "fitting": (0.1, 0.65), "standard errors": (0.65, 0.85), "destination prior": (0.85, 0.95),
    "evaluating": (0.95, 0.99), "done": (1.0, 1.0)}


def progress_fraction(stage: str, done: float = 0.0) -> float:
    """0..1 for a progress bar: the start of ``stage``'s share plus ``done`` (0..1) of it; 1.0 only when done."""
    lo, hi = STAGE_SHARES.get(stage, (0.0, 0.0))
    return round(lo + (hi - lo) * min(max(float(done), 0.0), 1.0), 3)


class JobAbortedError(Exception):
    """The job must stop: its API process died or the job was marked final elsewhere (e.g. cancelled)."""


@dataclass
class ScreenedTrips:
    """The trips a fit can use, and those set aside with a reason (``{id, reason, message}`` each)."""

    ids: list[int] = field(default_factory=list)
    paths: list[np.ndarray] = field(default_factory=list)
    set_aside: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """For the job's result: how many were used, how many set aside by reason, and which (capped)."""
        reasons: dict[str, int] = {}
        for t in self.set_aside:
            reasons[t["reason"]] = reasons.get(t["reason"], 0) + 1
        digest = hashlib.sha256(",".join(map(str, sorted(self.ids))).encode()).hexdigest()
        return {"used": len(self.ids), "used_ids_sha256": digest, "set_aside": len(self.set_aside),
                "set_aside_by_reason": reasons, "set_aside_trips": self.set_aside[:MAX_NAMED_SET_ASIDE]}


def screen_trips(mdp: RouteMDP, ids: list[int], paths: list[list[int]]) -> ScreenedTrips:
    """Keep the paths the likelihood can score; set the others aside, each with its trip id and a reason.

    ``too_short``: a single segment (no route to learn from); ``invalid_path``: a state or a
    turn the network does not have (e.g. a turn a restriction now forbids).
    """
    out = ScreenedTrips()
    for trip_id, raw in zip(ids, paths, strict=True):
        path = np.asarray(raw, dtype=np.int64)
        if path.size < 2:
            out.set_aside.append({"id": trip_id, "reason": "too_short", "message": "the matched path has one segment"})
            continue
        try:
            mdp.transition_indices(path)
        except InvalidPathError as exc:
            out.set_aside.append({"id": trip_id, "reason": "invalid_path", "message": str(exc)})
            continue
        out.ids.append(trip_id)
        out.paths.append(path)
    return out


def used_features(mdp: RouteMDP, paths: list[np.ndarray]) -> list[str]:
    """Names of the features that some transition of ``paths`` has (nonzero): the identifiable ones.

    A feature no trip uses has no data behind its weight; maximum likelihood would push it
    to minus infinity (one such weight once reached -5,259), so it is left out of the fit.
    """
    used = np.zeros(mdp.n_features, dtype=bool)
    for path in paths:
        used |= np.any(mdp.features[mdp.transition_indices(path)] != 0, axis=0)
    return [name for name, u in zip(mdp.feature_names, used, strict=True) if u]


def selection_from_options(options: dict[str, Any]) -> TripSelection | None:
    """The job's ``trips`` option (ids, tags, since, until) as a storage selection."""
    sel = options.get("trips")
    if not sel:
        return None
    return TripSelection(
        ids=None if sel.get("ids") is None else tuple(int(i) for i in sel["ids"]),
        tags=None if sel.get("tags") is None else tuple(str(t) for t in sel["tags"]),
        since=sel.get("since"), until=sel.get("until"))


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
    last_write, last_check = 0.0, time.monotonic()
    progress: dict[str, Any] = {"stage": "loading network", "elapsed_s": 0.0}

    def write_progress(force: bool = False) -> None:
        nonlocal last_write, last_check
        now = time.monotonic()
        if parent_pid is not None and os.getppid() != parent_pid:
            raise JobAbortedError("the API process that started this worker is gone")
        if now - last_check >= CANCEL_CHECK_S:
            last_check = now
            current = storage.jobs.get(job_id)
            if current is None or current.status != RUNNING:
                raise JobAbortedError(f"the job is {current.status if current else 'gone'}")
        progress["fraction"] = max(progress.get("fraction", 0.0), progress_fraction(progress["stage"]))
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
        trip_ids, paths = storage.trips.paths(net.fingerprint, selection_from_options(options))
        asked = net.mdp.select_features(options.get("features"))
        trips = screen_trips(asked, trip_ids, paths)
        if len(trips.ids) < settings.min_training_trips:
            raise ValueError(f"{len(trips.ids)} usable trips ({len(trip_ids)} selected, {len(trips.set_aside)} set "
                             f"aside); training needs at least {settings.min_training_trips}")
        train_idx, held_idx = train_test_split(len(trips.ids), float(options.get("heldout_fraction", 0.2)),
                                               int(options.get("seed", 0)))
        train = [trips.paths[i] for i in train_idx]
        held = [trips.paths[i] for i in held_idx]
        learned = used_features(asked, train)
        absent = [n for n in asked.feature_names if n not in learned]
        mdp = asked.select_features(learned)

        max_iter = int(options.get("max_iter") or settings.max_iter)

        def callback(p: FitProgress) -> None:
            progress.update(stage="fitting", iteration=int(p.iteration), log_likelihood=_finite(p.log_likelihood),
                            grad_norm=_finite(p.grad_norm),
                            fraction=progress_fraction("fitting", p.iteration / max_iter))
            write_progress()

        def se_column_done(j: int) -> None:
            progress["fraction"] = progress_fraction("standard errors", (j + 1) / mdp.n_features)
            write_progress()

        progress.update(stage="fitting", n_train=len(train), n_heldout=len(held), n_set_aside=len(trips.set_aside))
        write_progress(force=True)
        l2 = float(options.get("regularization", settings.default_regularization))
        with _cluster(settings) as client:
            est = MaxEntIRL(l1=float(options.get("l1", 0.0)), l2=l2, max_iter=max_iter, callback=callback,
                            client=client, nonpositive_rewards=settings.costs_only).fit(mdp, train)
            progress.update(stage="standard errors", iteration=int(est.n_iter_),
                            log_likelihood=_finite(est.log_likelihood_))
            write_progress(force=True)
            se = _standard_errors(mdp, train, est, l2, se_column_done, client)
        progress.update(stage="destination prior")
        write_progress(force=True)
        prior = fit_destination_prior(net, est.model_, train)
        progress.update(stage="evaluating")
        write_progress(force=True)
        metrics = {
            "train": _path_metrics(est.model_, train),
            "heldout": {**_path_metrics(est.model_, held), **_route_metrics(est.model_, held)},
            "trips": trips.summary(),
            "absent_features": absent,
            "standard_errors": {n: _finite(v) for n, v in zip(mdp.feature_names, se, strict=True)},
            "destination_prior": prior.to_dict(),
            "regularization": l2,
            "n_iter": int(est.n_iter_),
            "converged": bool(est.converged_),
            "fit_seconds": round(time.monotonic() - t0, 3),
            **extra_metrics,
        }
        model_id = storage.jobs.complete_training(
            job_id, network_name=str(net.name), feature_names=mdp.feature_names,
            theta=[float(x) for x in est.theta_], options=options, metrics=metrics,
            activate=bool(options.get("activate", True)),
        )
        if model_id is None:
            raise JobAbortedError("the job was marked final while training; the model was discarded")
        progress.update(stage="done", fraction=1.0)
        storage.jobs.update_progress(job_id, {**progress, "elapsed_s": round(time.monotonic() - t0, 3)})
        log.info("job %d: model %d trained in %.1f s (%d trips, %d set aside, absent features %s)", job_id,
                 model_id, time.monotonic() - t0, len(train), len(trips.set_aside), absent or "none")
        return 0
    except JobAbortedError as exc:
        log.warning("job %d aborted: %s", job_id, exc)
        storage.jobs.finish(job_id, FAILED, error=f"aborted: {exc}")
        return 3
    except (MaxEntIRLError, ValueError) as exc:  # the data or the options: a clear reason, no traceback
        log.warning("job %d failed: %s: %s", job_id, type(exc).__name__, exc)
        storage.jobs.finish(job_id, FAILED, error=f"{type(exc).__name__}: {exc}")
        return 0
    except Exception as exc:  # a failed fit must be recorded, whatever the reason
        log.exception("job %d failed", job_id)
        storage.jobs.finish(job_id, FAILED, error=f"{type(exc).__name__}: {exc}")
        return 0
    finally:
        storage.close()


@contextlib.contextmanager
def _cluster(settings: Settings) -> Iterator[Any]:
    """A client of ``settings.dask_scheduler`` for one job (None without one: Dask is then not imported).

    Raises :class:`~maxent_irl.exceptions.DistributedError` (the job fails with its message) when
    the scheduler does not answer within ``dask_timeout_s``.
    """
    if settings.dask_scheduler is None:
        yield None
        return
    from maxent_irl.distributed import connect  # Dask only when a cluster is configured

    client, _ = connect(settings.dask_scheduler, settings.dask_timeout_s)
    try:
        yield client
    finally:
        client.close()


def _standard_errors(mdp: RouteMDP, train: list[np.ndarray], est: MaxEntIRL, l2: float,
                     tick: Any, client: Any) -> np.ndarray:
    """``(k,)`` standard errors of the weights: the inverse observed information of the penalized likelihood.

    The information is the Hessian of the exact log-likelihood by central differences of its
    gradient (2 k gradient evaluations, on the Dask cluster when there is one), plus the
    penalty's ``N l2 I``; ``inf`` where a direction is not identified.
    """
    ordering = est.model_.ordering
    if client is None:
        info = information_matrix(mdp, train, est.theta_, ordering=ordering, callback=tick)
    else:
        from maxent_irl.distributed import DaskObjective

        with DaskObjective(client, mdp, make_trip_set(mdp, train), ordering=ordering) as objective:
            info = information_matrix(mdp, train, est.theta_, ordering=ordering, callback=tick,
                                      gradient=lambda th: objective(th)[1])
    info = info + len(train) * l2 * np.eye(mdp.n_features)
    return np.sqrt(np.clip(np.diag(covariance(info)), 0.0, np.inf))
