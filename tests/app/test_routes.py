"""/v1/routes and /v1/routes/probability."""

from __future__ import annotations

import math

import pytest


@pytest.fixture
def ends(sample_trip) -> tuple[str, str]:
    pts = sample_trip["features"][0]["geometry"]["coordinates"]
    return f"{pts[0][0]},{pts[0][1]}", f"{pts[-1][0]},{pts[-1][1]}"


def test_most_likely_route_and_alternatives(client, ends):
    r = client.get("/v1/routes", params={"origin": ends[0], "destination": ends[1], "alternatives": 3})
    assert r.status_code == 200, r.text
    fc = r.json()
    best = fc["features"][0]
    assert best["properties"]["kind"] == "most_likely" and best["geometry"]["type"] == "LineString"
    assert 0 < best["properties"]["probability"] <= 1
    assert math.isclose(best["properties"]["probability"], math.exp(best["properties"]["log_probability"]))
    assert len(fc["features"]) <= 4
    segs = [tuple(map(tuple, f["properties"]["segments"])) for f in fc["features"]]
    assert len(set(segs)) == len(segs)  # alternatives are distinct
    for alt in fc["features"][1:]:
        assert alt["properties"]["kind"] == "sample" and 0 < alt["properties"]["sample_share"] <= 1
        assert alt["properties"]["probability"] <= best["properties"]["probability"] + 1e-12
    assert fc["origin"]["distance_m"] >= 0 and fc["model_version"] == 2


def test_route_errors(client, ends):
    r = client.get("/v1/routes", params={"origin": "0,0", "destination": ends[1]})
    assert r.status_code == 422 and r.json()["code"] == "point_off_network"
    assert r.json()["details"]["field"] == "query.origin"
    r = client.get("/v1/routes", params={"origin": ends[0]})
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "query.destination"
    r = client.get("/v1/routes", params={"origin": ends[0], "destination": ends[1], "alternatives": 99})
    assert r.status_code == 422


def test_probability_of_points_and_segments(client, sample_trip):
    pts = sample_trip["features"][0]["geometry"]["coordinates"]
    segments = sample_trip["features"][1]["properties"]["segments"]
    by_points = client.post("/v1/routes/probability", json={"points": pts})
    assert by_points.status_code == 200, by_points.text
    by_segments = client.post("/v1/routes/probability", json={"segments": segments})
    assert by_segments.status_code == 200, by_segments.text
    body = by_segments.json()
    assert body["segments"] == segments and body["log_probability"] <= 0
    assert body["most_likely_log_probability"] >= body["log_probability"] - 1e-9
    assert math.isclose(body["probability"], math.exp(body["log_probability"]))
    assert body["model_version"] == 2


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "validation_error"),
        ({"points": [[7.42, 43.73], [7.43, 43.74]], "segments": [[1, 2, 0]]}, "validation_error"),
        ({"segments": [[1, 2, 0]]}, "unknown_segment"),
        ({"segments": [["a", 2, 0]]}, "validation_error"),
        ({"points": [[0, 0], [0.001, 0.001]]}, "point_off_network"),
    ],
)
def test_probability_errors(client, body, code):
    r = client.post("/v1/routes/probability", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code


def test_probability_of_disconnected_segments(client, sample_trip):
    segments = sample_trip["features"][1]["properties"]["segments"]
    r = client.post("/v1/routes/probability", json={"segments": [segments[0], segments[-1]]})
    assert r.status_code == 422 and r.json()["code"] == "invalid_path"


def test_one_point_off_the_network_is_an_error_not_skipped(client, sample_trip):
    """A far point among good ones is named, as a lone far point is, instead of being left out of the route."""
    pts = sample_trip["features"][0]["geometry"]["coordinates"][:5]
    far = [7.6, 43.9]  # ~20 km from Monaco
    r = client.post("/v1/routes/probability", json={"points": [*pts[:2], far, *pts[2:]]})
    assert r.status_code == 422 and r.json()["code"] == "point_off_network", r.text
    assert r.json()["details"]["points"] == [2] and "body.points[2]" in r.json()["message"]
    assert client.post("/v1/routes/probability", json={"points": pts}).status_code == 200


def test_negative_seeds_are_refused(client, ends):
    r = client.get("/v1/routes", params={"origin": ends[0], "destination": ends[1], "seed": -1})
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "query.seed"
    r = client.post("/v1/models", json={"seed": -1})
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "body.seed"


@pytest.mark.parametrize("origin", ["7.42,43.73,abc", "7.42,43.73,1,2"])
def test_a_third_coordinate_must_be_a_number(client, ends, origin):
    r = client.get("/v1/routes", params={"origin": origin, "destination": ends[1]})
    assert r.status_code == 422 and r.json()["code"] == "validation_error"


def test_routes_carry_distance_duration_and_snapped_ends(client, sample_trip):
    pts = sample_trip["features"][0]["geometry"]["coordinates"]
    o, d = pts[0], pts[-1]
    r = client.get("/v1/routes", params={"origin": f"{o[0]},{o[1]}", "destination": f"{d[0]},{d[1]}"})
    assert r.status_code == 200, r.text
    fc = r.json()
    for f in fc["features"]:
        props = f["properties"]
        assert props["distance_m"] > 0 and props["duration_s"] > 0
        assert f["geometry"]["coordinates"][0] == fc["origin"]["snapped"]
        assert f["geometry"]["coordinates"][-1] == fc["destination"]["snapped"]
    assert 0 <= fc["origin"]["bearing_deg"] < 360 and fc["origin"]["distance_m"] < 200


def test_a_heading_chooses_the_direction_of_departure(client, sample_trip):
    pts = sample_trip["features"][0]["geometry"]["coordinates"]
    o, d = pts[2], pts[-1]
    q = {"origin": f"{o[0]},{o[1]}", "destination": f"{d[0]},{d[1]}", "alternatives": 0}
    free = client.get("/v1/routes", params=q).json()
    bearing = free["origin"]["bearing_deg"]
    back = client.get("/v1/routes", params={**q, "origin_heading": (bearing + 180) % 360}).json()
    assert abs((back["origin"]["bearing_deg"] - bearing) % 360 - 180) < 30  # the other direction of the street
    assert back["features"][0]["properties"]["distance_m"] >= free["features"][0]["properties"]["distance_m"] - 1
    r = client.get("/v1/routes", params={**q, "origin_heading": 400})
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
