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
