"""/v1/jobs: list, one job, unknown ids."""

from __future__ import annotations


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
    from app.jobs import JobRunner
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
