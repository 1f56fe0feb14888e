"""/v1/models: training jobs (202), model details, activation; crash and restart behaviour."""

from __future__ import annotations

import os
import signal

from fastapi.testclient import TestClient

from app.main import create_app
from app.storage import Storage


def test_list_and_get_models(client):
    page = client.get("/v1/models").json()
    assert page["total"] == 2 and [m["id"] for m in page["items"]] == [2, 1]
    m = client.get("/v1/models/2").json()
    assert m["active"] is True and m["job_id"] == 2
    assert set(m["weights"]) == set(m["seconds_per_km"]) and "segment" in m["weights"]
    assert m["metrics"]["train"]["n_trips"] == 60 and m["metrics"]["heldout"]["n_trips"] == 20
    assert m["metrics"]["heldout"]["mean_log_likelihood_per_trip"] < 0
    assert 0 <= m["metrics"]["heldout"]["most_likely_route_overlap"] <= 1
    assert m["options"]["regularization"] == 0.01
    demo = client.get("/v1/models/1").json()
    assert demo["active"] is False and "simulator_theta" in demo["metrics"]
    assert client.get("/v1/models/active").json()["id"] == 2
    r = client.get("/v1/models/77")
    assert r.status_code == 404 and r.json()["code"] == "model_not_found"


def test_activate_switches_the_model_used_by_queries(client, sample_trip, helpers):
    r = client.post("/v1/models/1/activate")
    assert r.status_code == 200 and r.json()["active"] is True
    assert client.get("/v1/models/2").json()["active"] is False
    pts = sample_trip["features"][0]["geometry"]["coordinates"]
    q = client.get("/v1/destinations", params={"coordinates": helpers.lonlat_param(pts[:3])})
    assert q.json()["model_version"] == 1 and q.headers["x-routeirl-model-version"] == "1"
    assert client.post("/v1/models/99/activate").json()["code"] == "model_not_found"


def test_train_validates_options(client):
    r = client.post("/v1/models", json={"features": ["km_primary", "warp_speed"]})
    assert r.status_code == 422 and r.json()["code"] == "unknown_feature"
    assert "warp_speed" in r.json()["details"]["unknown"]
    r = client.post("/v1/models", json={"heldout_fraction": 1.5, "regularization": -1})
    assert r.status_code == 422
    assert {d["field"] for d in r.json()["details"]} == {"body.heldout_fraction", "body.regularization"}
    assert client.post("/v1/models", json={"bogus": 1}).json()["code"] == "validation_error"


def test_train_needs_trips(empty_client):
    r = empty_client.post("/v1/models", json={})
    assert r.status_code == 409 and r.json()["code"] == "not_enough_trips"


def test_train_feature_subset_without_activation(client, helpers):
    r = client.post("/v1/models", json={"features": ["km_primary", "km_residential", "segment", "turn_left"],
                                        "activate": False, "max_iter": 30})
    assert r.status_code == 202 and r.headers["location"] == f"/v1/jobs/{r.json()['id']}"
    job = helpers.wait_job(client, r.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["progress"]["iteration"] >= 1 and job["progress"]["elapsed_s"] > 0
    model = client.get(f"/v1/models/{job['model_id']}").json()
    assert list(model["weights"]) == ["km_primary", "km_residential", "segment", "turn_left"]
    assert model["active"] is False and client.get("/ready").json()["model_version"] == 2
    assert client.post(f"/v1/models/{job['model_id']}/activate").json()["active"] is True
    assert client.get("/ready").json()["model_version"] == job["model_id"]


def test_worker_crash_keeps_the_previous_model(client, helpers):
    job_id = client.post("/v1/models", json={"max_iter": 5000}).json()["id"]
    pid = helpers.wait_for(lambda: client.get(f"/v1/jobs/{job_id}").json().get("status") == "running"
                           and client.app.state.runtime.jobs._proc and client.app.state.runtime.jobs._proc.pid)
    os.kill(pid, signal.SIGKILL)
    job = helpers.wait_job(client, job_id)
    assert job["status"] == "failed" and "exited with code" in job["error"]
    assert client.get("/ready").json()["model_version"] == 2
    assert client.get("/v1/models").json()["total"] == 2


def test_jobs_running_at_restart_are_marked_interrupted(settings_factory):
    settings = settings_factory()
    storage = Storage(settings.database_path)
    network = storage.models.get(2).network
    job = storage.jobs.create("train", network, {})
    storage.jobs.start(job.id, 424242)
    storage.close()
    with TestClient(create_app(settings)) as c:
        body = c.get(f"/v1/jobs/{job.id}").json()
        assert body["status"] == "interrupted" and "restarted" in body["error"]
        assert c.get("/ready").json()["model_version"] == 2


def test_api_key_for_training_and_activation(keyed_client, helpers):
    assert keyed_client.post("/v1/models", json={}).status_code == 401
    assert keyed_client.post("/v1/models/1/activate").status_code == 401
    r = keyed_client.post("/v1/models/1/activate", headers={"X-API-Key": helpers.API_KEY})
    assert r.status_code == 200
