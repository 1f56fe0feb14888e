"""The service's long-lived state: settings, storage, network, map matcher, active model, jobs.

One :class:`Runtime` lives in ``app.state.runtime`` from the lifespan's start to its end.
The job runner's thread calls :meth:`Runtime.refresh` every tick, so a model activated by
the worker (another process) or a change of the trip prior reaches the queries within
``worker_poll_s``; the activate endpoint refreshes at once.
"""

from __future__ import annotations

import gc
import logging
import math
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from app.jobs.runner import JobRunner, stop_orphaned_worker
from app.services.network import load_network, network_label
from app.services.predictor import Predictor
from app.settings import Settings
from app.storage import CANCELLED, FAILED, INTERRUPTED, RUNNING, Storage
from maxent_irl.roads import MapMatcher

__all__ = ["DEMO_ATTEMPTS", "Runtime"]

#: How many times the demo job is tried when it does not succeed (a crash, a kill, a restart while it ran).
DEMO_ATTEMPTS = 3

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.started = time.monotonic()
        self.storage = Storage(settings.database_path, idempotency_ttl_s=settings.idempotency_ttl_s)
        self.net = load_network(settings)
        self.fingerprint: str = str(self.net.fingerprint)
        self.label = network_label(self.net)
        self.matcher = MapMatcher(self.net)
        self.predictor: Predictor | None = None
        self._trips_key: int | None = None
        self._unloadable: int | None = None
        self._refresh_lock = threading.Lock()
        # a worker of `uvicorn --workers N` is a multiprocessing child of the supervisor
        parent = multiprocessing.parent_process()
        self._supervisor_pid: int | None = parent.pid if parent is not None else None
        self.jobs = JobRunner(settings, self.storage, self.fingerprint, on_tick=self._tick, on_lead=self._on_lead)

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Load the active model, and start the job runner (leading it at once if no other process does)."""
        self._retire_on_exit_signals()
        self.refresh()
        self.jobs.try_lead()
        self.jobs.start()
        self.jobs.wake()
        # the network, matcher and model are long-lived: move them out of the collector's view,
        # so the garbage collections that query allocations trigger do not rescan them each time
        gc.freeze()

    def _retire_on_exit_signals(self) -> None:
        """On SIGTERM/SIGINT stop leading jobs at once, then let the server's own handler shut down.

        Otherwise, while connections drain, this process could take over the jobs lock that a
        stopping sibling released and start a job only to interrupt it moments later.
        """
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread can set handlers (e.g. not under a test client)
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue

            def handler(signum: int, frame: Any, previous: Callable[[int, Any], Any] = previous) -> None:
                self.jobs.retire()
                previous(signum, frame)

            signal.signal(sig, handler)

    def _tick(self) -> None:
        """Every ``worker_poll_s``: leave if the supervisor is gone, else pick up model and prior changes."""
        if self._supervisor_pid is not None and os.getppid() != self._supervisor_pid:
            # uvicorn's supervisor was killed (e.g. SIGKILL): its workers would otherwise serve on,
            # holding the port and the jobs lock, with nobody to stop them
            log.warning("the uvicorn supervisor (pid %d) is gone; shutting down", self._supervisor_pid)
            self._supervisor_pid = None
            self.jobs.retire()
            os.kill(os.getpid(), signal.SIGTERM)
            return
        self.refresh()
        if self.predictor is None and self.jobs.lock.held:
            self._maybe_queue_demo()  # e.g. the demo's worker was killed: try again

    def _on_lead(self) -> None:
        """This process now runs the jobs: mark jobs orphaned by the previous runner, queue the demo if due.

        A worker whose API process died may still be running (it notices only at its next
        progress write): it is stopped first, so two trainings never share the CPU.
        """
        for job in self.storage.jobs.unfinished():
            if job.status == RUNNING:
                stop_orphaned_worker(job.pid, job.id)
        orphaned = self.storage.jobs.interrupt_running("interrupted: the service restarted while the job ran")
        if orphaned:
            log.warning("marked jobs %s as interrupted (they were running when the service stopped)", orphaned)
        self._maybe_queue_demo()

    def stop(self) -> None:
        self.jobs.stop()
        self.storage.close()
        gc.unfreeze()  # let cyclic garbage of this runtime be collected (tests start many in one process)

    def _maybe_queue_demo(self) -> None:
        """Queue the demo job on a database without a model, also again after a try that crashed or was interrupted.

        A crash during the first start's demo (a kill, a restart) would otherwise leave the service
        without a model until someone trains; at most :data:`DEMO_ATTEMPTS` tries, and none after a
        client cancelled one.
        """
        if not self.settings.demo_enabled or self.storage.models.active_id(self.fingerprint) is not None:
            return
        if self.storage.jobs.unfinished(self.fingerprint):
            return
        jobs = self.storage.jobs
        if jobs.count_kind("demo", self.fingerprint, [CANCELLED]):
            return
        failed = jobs.count_kind("demo", self.fingerprint, [FAILED, INTERRUPTED])
        if failed >= DEMO_ATTEMPTS:
            return
        total = self.storage.trips.count(self.fingerprint)
        uploaded = total - self.storage.trips.count(self.fingerprint, source="demo")
        # 'auto': only a database with nothing but (possibly) demo trips, e.g. after a demo job
        # that crashed; trips of real users are never mixed with a demo model unasked.
        if uploaded == 0 or self.settings.demo == "always":
            job = self.storage.jobs.create(
                "demo", self.fingerprint, {"heldout_fraction": 0.2, "seed": self.settings.demo_seed, "activate": True}
            )
            log.info("no model yet: queued demo job %d (%d simulated trips)%s", job.id, self.settings.demo_trips,
                     f", try {failed + 1} of {DEMO_ATTEMPTS}" if failed else "")
            self.jobs.wake()

    # --- the active model ------------------------------------------------------------------------
    def refresh(self, force: bool = False) -> None:
        """Reload the predictor if the active model or the stored trips changed."""
        with self._refresh_lock:
            active = self.storage.models.active_id(self.fingerprint)
            current = self.predictor
            if active is None:
                self.predictor = None
                return
            trips_key = self.storage.trips.version()
            model_changed = current is None or current.version != active or force
            if not model_changed and trips_key == self._trips_key:
                return
            if model_changed and not force and self._unloadable == active:
                return  # already failed to load; do not retry (and log) every tick
            destinations = np.asarray(self.storage.trips.destinations(self.fingerprint), dtype=np.int64)
            if model_changed:
                record = self.storage.models.get(active)
                if record is None:  # pragma: no cover - active_model references models(id)
                    return
                try:
                    self.predictor = Predictor(self.net, record, destinations)
                except Exception:
                    log.exception("cannot load model %d; keeping model %s", active, current and current.version)
                    self._unloadable = active
                    return
                log.info("active model is now %d (prior from %d stored destinations)", active, destinations.size)
            else:
                assert current is not None
                self.predictor = current.with_destinations(destinations)
            self._trips_key = trips_key

    # --- geometry -------------------------------------------------------------------------------
    def near_network(self, lon: float, lat: float, margin_m: float) -> bool:
        """Whether a point is within ``margin_m`` of the network's bounding box (cheap pre-check)."""
        west, south, east, north = self.net.bbox
        dlat = margin_m / 111_000.0
        dlon = dlat / max(0.05, math.cos(math.radians(min(abs(lat), 89.0))))
        return west - dlon <= lon <= east + dlon and south - dlat <= lat <= north + dlat

    @property
    def model_version(self) -> int | None:
        p = self.predictor
        return None if p is None else p.version

    def readiness(self) -> dict[str, Any]:
        """``ReadyOut``: ready when the database answers and a model is active; else the reason."""
        db_ok = self.storage.ping()
        version = self.model_version
        body: dict[str, Any] = {"ready": bool(db_ok and version is not None), "model_version": version,
                                "network": self.network_out()}
        if not db_ok:
            body["reason"] = "the database does not answer"
        elif version is None:
            running = self.storage.jobs.unfinished(self.fingerprint)
            body["reason"] = (f"no active model yet; job {running[0].id} is {running[0].status}" if running
                              else "no active model: post trips and train one (POST /v1/models)")
        else:
            body["trips"] = self.storage.trips.count(self.fingerprint)
        return body

    def header_values(self) -> tuple[int | None, str | None]:
        return self.model_version, self.label

    def network_out(self) -> dict[str, Any]:
        return {"name": str(self.net.name), "fingerprint": self.fingerprint}
