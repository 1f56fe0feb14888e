"""Runs queued training jobs one at a time, each in its own worker process.

A daemon thread in the API process ticks every ``worker_poll_s`` (or at once when woken):
it reaps a finished worker (a non-zero exit without a final status means the worker
crashed: the job is marked failed and the previous model stays active), starts the next
queued job, and calls ``on_tick`` so the API can pick up a newly activated model.

Several API processes may share one database (``uvicorn --workers N``). Only the one
holding the *jobs lock* (an exclusive ``flock`` on ``<database>.jobs.lock``) starts
workers; the others only refresh their model. The operating system drops the lock when
its holder dies, and another process takes over at its next tick (then, as after a
restart, a job left 'running' is marked interrupted).
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from app.settings import Settings
from app.storage import FAILED, FINAL_STATUSES, INTERRUPTED, JobRecord, Storage

__all__ = ["JobRunner", "JobsLock", "stop_orphaned_worker"]

log = logging.getLogger(__name__)

_ROOT = Path(__file__).resolve().parents[2]


class JobsLock:
    """Non-blocking exclusive ``flock`` on a file: whoever holds it runs the training jobs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def stop_orphaned_worker(pid: int | None, job_id: int, timeout_s: float = 10.0) -> bool:
    """Stop the training worker of ``job_id`` if it still runs (its API process died); whether one ran.

    Only a live process whose command line is that job's worker is signalled, so a pid
    reused by an unrelated process after a reboot is left alone (needs ``/proc``).
    """
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    job_arg = [i for i, a in enumerate(cmdline[:-1]) if a == b"--job" and cmdline[i + 1] == str(job_id).encode()]
    if b"app.jobs.worker" not in cmdline or not job_arg:
        return False
    log.warning("stopping the orphaned worker (pid %d) of job %d", pid, job_id)
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
                return True
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


class JobRunner:
    """Starts and watches the training worker process; at most one runs at a time.

    ``on_lead`` runs once when this process becomes the one that runs jobs (see the
    module docstring), before it launches anything.
    """

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        network: str,
        on_tick: Callable[[], None] | None = None,
        on_lead: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.network = network
        self.on_tick = on_tick
        self.on_lead = on_lead
        self.lock = JobsLock(Path(f"{settings.database_path}.jobs.lock"))
        self._retired = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._job_id: int | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # --- lifecycle -------------------------------------------------------------------------
    def try_lead(self) -> bool:
        """Take the jobs lock if it is free (running ``on_lead`` then); whether this process runs jobs."""
        if self.lock.held:
            return True
        if self._retired or not self.lock.try_acquire():
            return False
        log.info("this process (pid %d) runs the training jobs", os.getpid())
        if self.on_lead is not None:
            try:
                self.on_lead()
            except BaseException:
                self.lock.release()  # try again at the next tick, on_lead included
                raise
        return True

    def retire(self) -> None:
        """Never lead again (this process is shutting down): another process should take the jobs over."""
        self._retired = True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="routeirl-jobs", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Check for queued jobs now instead of at the next tick (after a POST /v1/models)."""
        self._wake.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the thread; a running worker is terminated and its job marked interrupted."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        with self._lock:
            proc, job_id = self._proc, self._job_id
            if proc is not None and proc.poll() is None:
                log.warning("stopping: terminating worker of job %s", job_id)
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if job_id is not None:
                self.storage.jobs.finish(job_id, INTERRUPTED, error="the service stopped while the job ran")
            self._proc = self._job_id = None
            self.lock.release()

    @property
    def running_job(self) -> int | None:
        return self._job_id

    # --- the loop ---------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the loop must survive e.g. a locked database
                log.exception("job runner tick failed")
            self._wake.wait(self.settings.worker_poll_s)
            self._wake.clear()

    def tick(self) -> None:
        if self.on_tick is not None:
            self.on_tick()  # first: it may retire this runner (shutdown)
        with self._lock:
            self._reap()
            self._stop_cancelled()
            if self._proc is None and not self._stop.is_set() and self.try_lead():
                job = self.storage.jobs.next_queued()
                if job is not None:
                    self._launch(job)

    def _stop_cancelled(self) -> None:
        """Terminate the running worker if its job was made final meanwhile (cancelled by a client)."""
        if self._proc is None or self._job_id is None or self._proc.poll() is not None:
            return
        job = self.storage.jobs.get(self._job_id)
        if job is not None and job.status in FINAL_STATUSES:
            log.info("job %d is %s: stopping its worker (pid %d)", job.id, job.status, self._proc.pid)
            self._proc.send_signal(signal.SIGTERM)

    def _reap(self) -> None:
        if self._proc is None:
            return
        rc = self._proc.poll()
        if rc is None:
            return
        job_id = self._job_id
        assert job_id is not None
        if self.storage.jobs.finish(job_id, FAILED, error=f"the training worker exited with code {rc}"):
            log.error("worker of job %d died (exit code %s); the previous model stays active", job_id, rc)
        else:
            log.info("worker of job %d finished (exit code %s)", job_id, rc)
        self._proc = self._job_id = None

    def _launch(self, job: JobRecord) -> None:
        if job.network != self.network:
            self.storage.jobs.finish(job.id, FAILED, error="the job is for another network than the service's")
            return
        if not self.storage.jobs.start(job.id, None):
            return
        cmd = [
            sys.executable,
            "-m",
            "app.jobs.worker",
            "--job",
            str(job.id),
            "--settings",
            self.settings.worker_json(),
            "--parent-pid",
            str(os.getpid()),
        ]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        try:
            self._proc = subprocess.Popen(cmd, env=env, cwd=os.getcwd(), stdin=subprocess.DEVNULL)
        except OSError as exc:
            self.storage.jobs.finish(job.id, FAILED, error=f"could not start the worker: {exc}")
            return
        self._job_id = job.id
        self.storage.jobs.set_pid(job.id, self._proc.pid)
        log.info("job %d (%s) started in worker pid %d", job.id, job.kind, self._proc.pid)
