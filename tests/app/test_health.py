"""/health and /ready; the model/network headers on every response."""

from __future__ import annotations


def test_health(client):
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_ready_with_a_model(client):
    r = client.get("/ready")
    assert r.status_code == 200
    body = r.json()
    assert body["ready"] is True and body["model_version"] == 2 and body["trips"] == 80
    assert body["network"]["name"] == "monaco_drive"


def test_not_ready_without_a_model(empty_client):
    r = empty_client.get("/ready")
    assert r.status_code == 503
    assert r.json()["ready"] is False and "no active model" in r.json()["reason"]


def test_every_response_names_model_and_network(client, empty_client):
    for path in ("/health", "/v1/trajectories", "/v1/jobs/999", "/nope"):
        r = client.get(path)
        assert r.headers["x-routeirl-model-version"] == "2", path
        assert r.headers["x-routeirl-network"].startswith("monaco_drive@"), path
    assert empty_client.get("/health").headers["x-routeirl-model-version"] == "none"


def test_openapi_docs(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    for path in ("/v1/trajectories", "/v1/models", "/v1/jobs/{job_id}", "/v1/destinations", "/v1/routes",
                 "/v1/routes/probability", "/v1/visitation", "/health", "/ready"):
        assert path in spec["paths"], path


def test_demo_auto_only_on_the_default_network(tmp_path, helpers):
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app(helpers.make_settings(tmp_path / "d", demo="auto"))) as c:
        assert c.get("/v1/jobs").json()["total"] == 0  # Monaco is not the default network: no demo
        assert c.get("/ready").status_code == 503
