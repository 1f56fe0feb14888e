"""/v1/visitation: per-segment use probabilities."""

from __future__ import annotations


def test_visitation(client, sample_trip):
    pts = sample_trip["features"][0]["geometry"]["coordinates"]
    params = {"origin": f"{pts[0][0]},{pts[0][1]}", "destination": f"{pts[-1][0]},{pts[-1][1]}"}
    r = client.get("/v1/visitation", params=params)
    assert r.status_code == 200, r.text
    fc = r.json()
    probs = [f["properties"]["probability"] for f in fc["features"]]
    assert probs == sorted(probs, reverse=True) and all(0.01 <= p <= 1 for p in probs)
    assert max(probs) > 0.99  # the origin and destination segments are always used
    assert fc["features"][0]["geometry"]["type"] == "LineString"
    assert fc["origin"]["segment"] and fc["model_version"] == 2
    fewer = client.get("/v1/visitation", params={**params, "min_probability": 0.9}).json()["features"]
    assert 0 < len(fewer) <= len(probs)


def test_visitation_errors(client):
    r = client.get("/v1/visitation", params={"origin": "0,0", "destination": "7.42,43.73"})
    assert r.status_code == 422 and r.json()["code"] == "point_off_network"
    r = client.get("/v1/visitation", params={"origin": "7.42,43.73", "destination": "7.42,43.73",
                                             "min_probability": 2})
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
