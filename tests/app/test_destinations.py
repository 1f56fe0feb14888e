"""/v1/destinations: posterior of a partial trip (GET and POST), errors."""

from __future__ import annotations

import pytest


@pytest.fixture
def partial(sample_trip) -> list[list[float]]:
    return sample_trip["features"][0]["geometry"]["coordinates"][:6]


def test_get_destinations(client, partial, helpers):
    r = client.get("/v1/destinations", params={"coordinates": helpers.lonlat_param(partial), "top": 5})
    assert r.status_code == 200, r.text
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 5
    probs = [f["properties"]["probability"] for f in fc["features"]]
    assert probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)
    assert [f["properties"]["rank"] for f in fc["features"]] == [1, 2, 3, 4, 5]
    first = fc["features"][0]
    assert first["geometry"]["type"] == "Point" and len(first["properties"]["segment"]) == 3
    assert fc["model_version"] == 2 and fc["network"]["name"] == "monaco_drive"
    assert fc["candidates"] >= 5 and fc["matched"]["n_points"] == 6
    assert "distribution" not in fc


def test_full_distribution_sums_to_one(client, partial):
    r = client.post("/v1/destinations", json={"coordinates": partial, "full": True, "top": 3})
    assert r.status_code == 200, r.text
    fc = r.json()
    dist = fc["distribution"]
    assert len(dist) <= fc["candidates"] and 0.999 <= sum(d["probability"] for d in dist) <= 1.0 + 1e-9
    probs = [d["probability"] for d in dist]
    assert probs == sorted(probs, reverse=True)
    assert len(fc["features"]) == 3


def test_heat_map_expected_point_and_separate_places(client, partial):
    """The posterior over every segment as a heat map, the expected-distance point, and top places at least
    the clustering radius apart; the answer is the library's posterior (app.services.predictor only shapes it)."""
    import numpy as np
    from pyproj import Geod

    fc = client.post("/v1/destinations", json={"coordinates": partial, "heatmap": True, "top": 5}).json()
    heat = fc["heatmap"]
    assert heat["type"] == "FeatureCollection" and 0.95 <= heat["mass"] <= 1.0 + 1e-9
    assert all(f["geometry"]["type"] == "LineString" and f["properties"]["probability"] > 0 for f in heat["features"])
    point = fc["expected_destination"]
    assert point["geometry"]["type"] == "Point" and point["properties"]["expected_distance_m"] > 0
    centres = np.array([f["geometry"]["coordinates"] for f in fc["features"]])
    geod = Geod(ellps="WGS84")
    radius = fc["features"][0]["properties"]["radius_m"]
    for i in range(len(centres)):
        for j in range(i):
            d = geod.inv(*centres[i], *centres[j])[2]
            assert d > 0.9 * radius  # midpoints of segments a radius apart (projection vs geodesic slack)
    masses = [f["properties"]["probability"] for f in fc["features"]]
    assert masses == sorted(masses, reverse=True) and sum(masses) <= 1.0 + 1e-9
    # the library's posterior: the clusters' masses are sums of it
    rt = client.app.state.runtime
    path = rt.matcher.match(__import__("maxent_irl.roads", fromlist=["Trace"]).Trace(
        np.asarray(partial, dtype=float), None, "q")).states
    post = rt.predictor.destinations.posterior(path)
    top = fc["features"][0]["properties"]["state"]
    assert post[top] > 0 and heat["features"][0]["properties"]["probability"] == pytest.approx(post.max(), rel=1e-6)


def test_single_point(client, partial, helpers):
    r = client.get("/v1/destinations", params={"coordinates": helpers.lonlat_param(partial[:1])})
    assert r.status_code == 200 and len(r.json()["features"]) == 10  # default top


@pytest.mark.parametrize(
    ("coordinates", "code"),
    [
        ("", "validation_error"),
        ("7.42", "validation_error"),
        ("7.42,abc", "validation_error"),
        ("7.42,95", "validation_error"),
        ("0,0", "point_off_network"),
        ("0,0;0.001,0.001", "point_off_network"),
        ("7.4246,43.7384;0,0", "point_off_network"),  # one far point among good ones is not skipped
    ],
)
def test_bad_coordinates(client, coordinates, code):
    r = client.get("/v1/destinations", params={"coordinates": coordinates})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code and r.json()["message"]


def test_missing_parameter_and_bad_top(client, partial, helpers):
    r = client.get("/v1/destinations")
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "query.coordinates"
    r = client.get("/v1/destinations", params={"coordinates": helpers.lonlat_param(partial), "top": 0})
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "query.top"


def test_too_many_points(settings_factory, partial, helpers):
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app(settings_factory(max_query_points=3))) as c:
        r = c.get("/v1/destinations", params={"coordinates": helpers.lonlat_param(partial)})
        assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
        r = c.post("/v1/destinations", json={"coordinates": partial})
        assert r.status_code == 413


def test_no_active_model(empty_client):
    r = empty_client.get("/v1/destinations", params={"coordinates": "7.42,43.73"})
    assert r.status_code == 409 and r.json()["code"] == "no_active_model"
