"""POST /v1/match: map matching alone (pieces, per-point placements, confidence), nothing stored; bad inputs."""

from __future__ import annotations

import pytest


def _trace(sample_trip) -> list[list[float]]:
    return sample_trip["features"][0]["geometry"]["coordinates"]


def test_match_answers_pieces_and_tracepoints_and_stores_nothing(client, sample_trip):
    before = client.get("/v1/trajectories").json()["total"]
    pts = _trace(sample_trip)
    r = client.post("/v1/match", json={"trips": [{"id": "q", "points": pts}]})
    assert r.status_code == 200, r.text
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and fc["rejected"] == []
    (trace,) = fc["traces"]
    assert trace["trace_id"] == "q" and trace["n_points"] == len(pts) == len(trace["tracepoints"])
    assert 0 < trace["confidence"] <= 1 and trace["n_pieces"] == len(fc["features"]) >= 1
    for f in fc["features"]:
        props = f["properties"]
        assert f["geometry"]["type"] == "LineString" and props["distance_m"] > 0 and 0 <= props["confidence"] <= 1
        assert props["segments"] and props["first_point"] <= props["last_point"]
    for tp in trace["tracepoints"]:
        if tp["reason"] is None:
            assert len(tp["location"]) == 2 and len(tp["segment"]) == 3 and 0 <= tp["confidence"] <= 1
            assert tp["distance_m"] < 200
    assert client.get("/v1/trajectories").json()["total"] == before  # nothing stored


def test_match_takes_the_upload_formats(client, helpers):
    gpx = (helpers.ROOT / "data" / "andorra_for_map_matching.gpx").read_bytes()  # Andorra: off this network
    r = client.post("/v1/match", content=gpx, headers={"content-type": "application/gpx+xml"})
    assert r.status_code == 422 and r.json()["code"] == "point_off_network"


@pytest.mark.parametrize(("body", "ctype", "status", "code"), [
    (b"", "application/json", 422, "validation_error"),
    (b'{"trips": [{"points": [[7.42, 43.73]]}]}', "application/json", 422, "validation_error"),  # one point
    (b'{"trips": [{"points": [[7.42, 43.73], [NaN, 43.74]]}]}', "application/json", 422, "validation_error"),
    (b'{"trips": [{"points": [[43.73, 7.42], [43.74, 7.43]]}]}', "application/json", 422, "point_off_network"),
    (b'{"trips": [{"points": [[0, 0], [0.001, 0.001]]}]}', "application/json", 422, "point_off_network"),
])
def test_match_bad_inputs(client, body, ctype, status, code):
    r = client.post("/v1/match", content=body, headers={"content-type": ctype})
    assert r.status_code == status, r.text
    assert r.json()["code"] == code and r.json()["message"]


def test_match_too_many_points(settings_factory, sample_trip):
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app(settings_factory(max_points_per_trip=3))) as c:
        r = c.post("/v1/match", json={"trips": [{"points": _trace(sample_trip)}]})
        assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
