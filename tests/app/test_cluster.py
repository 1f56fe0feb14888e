"""The service on a Dask cluster (``ROUTEIRL_DASK_SCHEDULER``): training jobs and large uploads on a real
``LocalCluster``, and what happens when the scheduler is not there."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from distributed import LocalCluster
from fastapi.testclient import TestClient

from app.main import create_app


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as c:
        yield c


def _weights(model: dict) -> dict[str, float]:
    return {f["name"]: f["weight"] for f in model["features"] if f["status"] == "learned"}


def _train(client: TestClient, helpers) -> dict:
    r = client.post("/v1/models", json={"max_iter": 40, "activate": False, "heldout_fraction": 0.0})
    assert r.status_code == 202, r.text
    return helpers.wait_job(client, r.json()["id"])


def test_a_training_job_on_the_cluster_learns_what_one_machine_learns(settings_factory, helpers, cluster):
    with TestClient(create_app(settings_factory())) as client:
        job = _train(client, helpers)
        assert job["status"] == "succeeded", job
        local = client.get(f"/v1/models/{job['model_id']}").json()
    with TestClient(create_app(settings_factory(dask_scheduler=cluster.scheduler_address))) as client:
        job = _train(client, helpers)
        assert job["status"] == "succeeded", job
        remote = client.get(f"/v1/models/{job['model_id']}").json()
    assert _weights(remote).keys() == _weights(local).keys() and _weights(local)
    np.testing.assert_allclose(list(_weights(remote).values()), list(_weights(local).values()), rtol=1e-5, atol=1e-7)
    se = {f["name"]: f["standard_error"] for f in remote["features"] if f["status"] == "learned"}
    se_local = {f["name"]: f["standard_error"] for f in local["features"] if f["status"] == "learned"}
    assert se and se.keys() == se_local.keys()
    np.testing.assert_allclose(list(se.values()), list(se_local.values()), rtol=1e-4)


def test_an_unreachable_scheduler_fails_the_job_and_the_model_keeps_serving(settings_factory, helpers):
    from tests.app.conftest import free_port

    address = f"tcp://127.0.0.1:{free_port()}"
    with TestClient(create_app(settings_factory(dask_scheduler=address, dask_timeout_s=1.0))) as client:
        active = client.get("/v1/models/active").json()["id"]
        r = client.post("/v1/models", json={"max_iter": 40})
        assert r.status_code == 202, r.text
        job = helpers.wait_job(client, r.json()["id"])
        assert job["status"] == "failed"
        assert job["error"].startswith(f"DistributedError: cannot reach the Dask scheduler at {address}"), job
        assert client.get("/v1/models/active").json()["id"] == active
        partial = client.get("/v1/trajectories/1").json()["features"][0]["geometry"]["coordinates"][:6]
        answer = client.get("/v1/destinations", params={"coordinates": helpers.lonlat_param(partial)})
        assert answer.status_code == 200 and answer.json()["model_version"] == active


def _upload(client: TestClient) -> dict:
    """Six stored trips' coordinates uploaded again, plus one trace with too few points."""
    trips = [client.get(f"/v1/trajectories/{i}").json()["features"][0]["geometry"]["coordinates"] for i in range(1, 7)]
    body = {"trips": [{"id": f"t{i}", "points": pts} for i, pts in enumerate(trips)] + [
        {"id": "tiny", "points": trips[0][:2]}]}
    r = client.post("/v1/trajectories", json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    return {"accepted": [(a["trace_id"], a["n_segments"], a["unmatched_points"]) for a in out["accepted"]],
            "rejected": [(x["trace_id"], x["reason"]) for x in out["rejected"]]}


def test_a_large_upload_is_matched_on_the_cluster_as_here(settings_factory, cluster, caplog):
    with TestClient(create_app(settings_factory())) as client:
        here = _upload(client)
    with TestClient(create_app(settings_factory(dask_scheduler=cluster.scheduler_address, dask_min_traces=3))) \
            as client, caplog.at_level("INFO", logger="app.services.ingest"):
        there = _upload(client)
    assert there == here and len(here["accepted"]) == 6 and here["rejected"] == [("tiny", "too_short")]
    assert any("on the Dask cluster" in r.getMessage() for r in caplog.records)


def test_an_upload_is_matched_here_when_the_scheduler_is_unreachable(settings_factory, caplog):
    from tests.app.conftest import free_port

    with TestClient(create_app(settings_factory())) as client:
        here = _upload(client)
    settings = settings_factory(dask_scheduler=f"tcp://127.0.0.1:{free_port()}", dask_timeout_s=1.0, dask_min_traces=3)
    with TestClient(create_app(settings)) as client, caplog.at_level("WARNING", logger="app.services.ingest"):
        assert _upload(client) == here
    assert any("the Dask cluster failed" in r.getMessage() for r in caplog.records)
