"""/v1/jobs: list, one job, unknown ids."""

from __future__ import annotations

import pytest


def test_list_jobs(client):
    page = client.get("/v1/jobs").json()
    assert page["total"] == 2 and [j["id"] for j in page["items"]] == [2, 1]
    assert client.get("/v1/jobs", params={"status": "succeeded"}).json()["total"] == 2
    assert client.get("/v1/jobs", params={"status": "failed"}).json()["total"] == 0
    assert client.get("/v1/jobs", params={"status": "nonsense"}).status_code == 422


def test_get_job(client):
    job = client.get("/v1/jobs/1").json()
    assert job["kind"] == "demo" and job["status"] == "succeeded" and job["model_id"] == 1
    assert job["links"] == {"self": "/v1/jobs/1", "model": "/v1/models/1"}
    progress = job["progress"]
    assert progress["stage"] == "done"
    assert {"iteration", "log_likelihood", "grad_norm", "elapsed_s"} <= set(progress)


def test_unknown_job(client):
    r = client.get("/v1/jobs/12345")
    assert r.status_code == 404
    assert r.json() == {"code": "job_not_found", "message": "no job with id 12345", "details": {"id": 12345}}


# --- the job runner: one process at a time runs the jobs ---------------------------------------
def test_only_one_runner_leads_and_another_takes_over(tmp_path, helpers):
    """Several API processes share one database: the jobs lock lets exactly one of them start
    workers (and mark orphaned jobs); when it stops, another takes over at its next tick."""
    from app.jobs.runner import JobRunner
    from app.storage import Storage

    settings = helpers.make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    storage = Storage(settings.database_path)
    led: list[str] = []
    first = JobRunner(settings, storage, "net", on_lead=lambda: led.append("first"))
    second = JobRunner(settings, storage, "net", on_lead=lambda: led.append("second"))
    try:
        assert first.try_lead() and first.try_lead()  # idempotent: on_lead runs once
        assert not second.try_lead()
        second.tick()  # a follower's tick launches nothing
        assert led == ["first"] and not second.lock.held
        first.stop()  # releases the lock (as the OS does when a process dies)
        second.tick()
        assert led == ["first", "second"] and second.lock.held
    finally:
        first.stop()
        second.stop()
        storage.close()


def test_a_retired_runner_never_leads_and_a_failed_takeover_is_retried(tmp_path, helpers):
    from app.jobs.runner import JobRunner
    from app.storage import Storage

    settings = helpers.make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    storage = Storage(settings.database_path)
    calls: list[int] = []

    def flaky_on_lead() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database is locked")

    runner = JobRunner(settings, storage, "net", on_lead=flaky_on_lead)
    retired = JobRunner(settings, storage, "net")
    try:
        retired.retire()  # shutting down: must not take the lock even when it is free
        assert not retired.try_lead() and not retired.lock.held
        with pytest.raises(RuntimeError, match="locked"):
            runner.try_lead()
        assert not runner.lock.held  # released, so the takeover is tried again
        assert runner.try_lead() and runner.lock.held and len(calls) == 2
    finally:
        runner.stop()
        retired.stop()
        storage.close()


def test_stop_orphaned_worker_only_signals_that_jobs_worker(tmp_path):
    """A new jobs leader stops a worker left by a dead API process, but never an unrelated process
    that happens to have the recorded pid."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    from app.jobs.runner import stop_orphaned_worker

    fake = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "app.jobs.worker", "--job", "7"])
    try:
        deadline = time.monotonic() + 10
        while b"app.jobs.worker" not in Path(f"/proc/{fake.pid}/cmdline").read_bytes():  # until it has exec'd
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not stop_orphaned_worker(fake.pid, 8)  # another job's worker: left alone
        assert fake.poll() is None
        assert not stop_orphaned_worker(os.getpid(), 7)  # not a worker at all
        assert not stop_orphaned_worker(None, 7)
        assert stop_orphaned_worker(fake.pid, 7)
        assert fake.wait(10) != 0
    finally:
        if fake.poll() is None:
            fake.kill()
            fake.wait()
