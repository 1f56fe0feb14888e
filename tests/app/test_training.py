"""Training on real-world trips: nothing blocks a job, trips can be deleted and selected, jobs cancelled,
features no trip uses are reported absent, and every learned weight has a standard error."""

from __future__ import annotations

import hashlib
import time

import numpy as np
from fastapi.testclient import TestClient

from app.main import create_app
from app.storage import NewTrip, Storage


def _digest(ids: list[int]) -> str:
    return hashlib.sha256(",".join(map(str, sorted(ids))).encode()).hexdigest()


def _train(client: TestClient, helpers, **options) -> dict:
    r = client.post("/v1/models", json={"max_iter": 40, "activate": False, **options})
    assert r.status_code == 202, r.text
    job = helpers.wait_job(client, r.json()["id"])
    assert job["status"] == "succeeded", job
    return client.get(f"/v1/models/{job['model_id']}").json()


def _trip_ids(client: TestClient) -> list[int]:
    return [t["id"] for t in client.get("/v1/trajectories", params={"limit": 500}).json()["items"]]


def test_unusable_trips_are_set_aside_by_id_and_passing_trips_train(settings_factory, helpers):
    """A stored path the network cannot drive and a one-segment path are set aside with their ids and reasons;
    a trip that passes its destination before it ends is used like any other."""
    from app.services.network import load_network
    from maxent_irl import RouteModel

    settings = settings_factory()
    net = load_network(settings)
    storage = Storage(settings.database_path)
    good = storage.trips.paths(net.fingerprint)[1][0]
    end = good[-1]
    _, after = net.mdp.successors(end)
    back = RouteModel(net.mdp, -np.ones(net.mdp.n_features)).most_likely_path(int(after[0]), end)
    passing = [*good, *back.tolist()]  # drives on past its end, comes back around and stops there
    assert passing.count(end) == 2
    ids = storage.trips.insert(net.fingerprint, [
        NewTrip(points=[[0, 0], [0, 1]], path=[good[0], 10**6]),  # a state the network does not have
        NewTrip(points=[[0, 0], [0, 1]], path=[good[0]]),
        NewTrip(points=[[0, 0], [0, 1]], path=passing),
    ])
    storage.close()
    with TestClient(create_app(settings)) as client:
        model = _train(client, helpers, heldout_fraction=0.0)
        trips = model["metrics"]["trips"]
        assert trips["set_aside"] == 2 and trips["set_aside_by_reason"] == {"invalid_path": 1, "too_short": 1}
        assert sorted(t["id"] for t in trips["set_aside_trips"]) == sorted(ids[:2])
        all_ids = _trip_ids(client)
        assert trips["used"] == len(all_ids) - 2
        assert trips["used_ids_sha256"] == _digest([i for i in all_ids if i not in ids[:2]])  # the passing one in


def test_a_deleted_trip_is_gone_from_the_next_model(client, helpers):
    ids = _trip_ids(client)
    before = _train(client, helpers, heldout_fraction=0.0)["metrics"]["trips"]
    assert before["used"] == len(ids) and before["used_ids_sha256"] == _digest(ids)
    r = client.delete(f"/v1/trajectories/{ids[3]}")
    assert r.status_code == 204
    assert client.get(f"/v1/trajectories/{ids[3]}").status_code == 404
    assert client.delete(f"/v1/trajectories/{ids[3]}").json()["code"] == "trajectory_not_found"
    after = _train(client, helpers, heldout_fraction=0.0)["metrics"]["trips"]
    assert after["used"] == len(ids) - 1 and after["used_ids_sha256"] == _digest([i for i in ids if i != ids[3]])


def test_training_on_a_subset_by_ids_and_by_tag(client, helpers, sample_trip):
    ids = _trip_ids(client)
    model = _train(client, helpers, heldout_fraction=0.0, trips={"ids": ids[:12]})
    assert model["metrics"]["trips"]["used_ids_sha256"] == _digest(ids[:12])
    assert model["options"]["trips"]["ids"] == ids[:12]
    # trips uploaded with a tag, then trained on (and deleted) by it
    pts = sample_trip["features"][0]["geometry"]["coordinates"]
    body = {"trips": [{"id": f"t{i}", "points": pts} for i in range(6)]}
    up = client.post("/v1/trajectories", params={"tag": "fleet-7"}, json=body)
    assert up.status_code == 201 and len(up.json()["accepted"]) == 6, up.text
    tagged = [a["id"] for a in up.json()["accepted"]]
    listed = client.get("/v1/trajectories", params={"tag": "fleet-7"}).json()
    assert listed["total"] == 6 and all(t["tag"] == "fleet-7" for t in listed["items"])
    model = _train(client, helpers, heldout_fraction=0.0, trips={"tags": ["fleet-7"]})
    assert model["metrics"]["trips"]["used_ids_sha256"] == _digest(tagged)
    r = client.post("/v1/models", json={"trips": {"tags": ["nobody"]}})
    assert r.status_code == 409 and r.json()["code"] == "not_enough_trips"
    assert client.post("/v1/trajectories", params={"tag": "bad tag!"}, json=body).status_code == 422
    assert client.delete("/v1/trajectories", params={"tag": "fleet-7"}).json() == {"deleted": 6}
    assert client.get("/v1/trajectories", params={"tag": "fleet-7"}).json()["total"] == 0
    # by time range: the demo trips start 15 min apart from 1.7e9 s; one hour picks a few
    model = _train(client, helpers, heldout_fraction=0.0, trips={"since": 1.7e9, "until": 1.7e9 + 3600 * 3})
    assert 5 <= model["metrics"]["trips"]["used"] < len(ids)


def test_absent_features_are_reported_and_weights_have_standard_errors(client, helpers):
    model = _train(client, helpers)
    by_name = {f["name"]: f for f in model["features"]}
    assert set(by_name) == set(client.get("/v1/models/1").json()["metrics"]["simulator_theta"])
    absent = model["metrics"]["absent_features"]
    assert "km_motorway" in absent  # Monaco's drive network has no motorway
    for name, f in by_name.items():
        if name in absent:
            assert f["status"] == "absent" and f["weight"] is None and name not in model["weights"]
        else:
            assert f["status"] == "learned" and f["weight"] == model["weights"][name]
            assert f["standard_error"] is not None and 0 < f["standard_error"] < 1e3, f
    assert model["metrics"]["regularization"] == 1e-3  # the default


def test_a_running_job_can_be_cancelled(client, helpers):
    r = client.post("/v1/models", json={"max_iter": 10_000, "activate": True})
    job_id = r.json()["id"]
    helpers.wait_for(lambda: client.get(f"/v1/jobs/{job_id}").json()["status"] == "running")
    active = client.get("/v1/models/active").json()["id"]
    r = client.delete(f"/v1/jobs/{job_id}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    time.sleep(2.5)
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "cancelled" and job["model_id"] is None
    assert client.get("/v1/models/active").json()["id"] == active  # the previous model keeps serving
    assert client.delete(f"/v1/jobs/{job_id}").json()["code"] == "job_finished"
    # a queued job is cancelled before it starts
    first = client.post("/v1/models", json={"max_iter": 10_000}).json()["id"]
    second = client.post("/v1/models", json={"max_iter": 10}).json()["id"]
    assert client.delete(f"/v1/jobs/{second}").json()["status"] == "cancelled"
    client.delete(f"/v1/jobs/{first}")
    helpers.wait_for(lambda: client.get("/v1/jobs", params={"status": "running"}).json()["total"] == 0, timeout=20)
    assert client.get(f"/v1/jobs/{second}").json()["started_at"] is None


def test_progress_fraction_runs_from_0_to_1_through_the_stages():
    from app.services.training import STAGE_SHARES, progress_fraction

    order = list(STAGE_SHARES)
    starts = [progress_fraction(s) for s in order]
    assert starts[0] == 0.0 and starts == sorted(starts) and progress_fraction("done") == 1.0
    assert all(progress_fraction(s, 1.0) < 1.0 for s in order if s != "done")  # 100 % only when done
    middle = (progress_fraction("fitting") + progress_fraction("standard errors")) / 2
    assert progress_fraction("fitting", 0.5) == round(middle, 3)
    assert progress_fraction("fitting", 7.0) == progress_fraction("fitting", 1.0)  # clipped


def test_a_finished_job_reports_fraction_1(client):
    jobs = client.get("/v1/jobs", params={"status": "succeeded"}).json()["items"]
    assert jobs and all(j["progress"]["fraction"] == 1.0 for j in jobs)
