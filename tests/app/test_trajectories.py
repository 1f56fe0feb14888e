"""POST/GET /v1/trajectories: JSON, GeoJSON, GPX, CSV uploads; rejections; limits; pagination."""

from __future__ import annotations

import pytest

MONACO_TRIP_ID = 1


@pytest.fixture
def trip_points(sample_trip) -> list[list[float]]:
    return sample_trip["features"][0]["geometry"]["coordinates"]


def test_post_json_accepts_and_rejects(client, trip_points):
    body = {"trips": [{"id": "good", "points": trip_points}, {"id": "tiny", "points": trip_points[:2]}]}
    r = client.post("/v1/trajectories", json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    assert [a["trace_id"] for a in out["accepted"]] == ["good"]
    assert out["accepted"][0]["id"] == 81 and out["accepted"][0]["n_segments"] >= 2
    assert out["rejected"] == [
        {"trace_id": "tiny", "index": 1, "reason": "too_short", "message": out["rejected"][0]["message"]}
    ]
    assert out["network"]["name"] == "monaco_drive" and out["model_version"] == 2
    stored = client.get("/v1/trajectories/81").json()
    assert stored["trace_id"] == "good"
    assert stored["features"][0]["geometry"]["coordinates"] == trip_points


def test_post_with_times_and_off_network(client, trip_points):
    times = [1_700_000_000 + 10 * i for i in range(len(trip_points))]
    far = [[p[0] + 2.0, p[1]] for p in trip_points]  # 160 km east: in the sea / Italy
    r = client.post("/v1/trajectories", json={"trips": [{"points": trip_points, "times": times},
                                                        {"id": "far", "points": far}]})
    assert r.status_code == 201
    out = r.json()
    assert len(out["accepted"]) == 1
    assert out["rejected"][0]["reason"] == "off_network" and out["rejected"][0]["trace_id"] == "far"
    trip = client.get(f"/v1/trajectories/{out['accepted'][0]['id']}").json()
    assert trip["features"][0]["properties"]["times"][:2] == times[:2]


@pytest.mark.parametrize("step_s", [1000, 400])  # times in ms read as seconds; one fix every 400 s
def test_every_uploaded_trace_is_accepted_or_rejected(client, trip_points, step_s):
    """Splitting at stops never makes a whole trace vanish from the answer."""
    times = [step_s * i for i in range(len(trip_points))]
    stay = [trip_points[0]] * 8  # parked for 8 x step_s: all stop
    r = client.post("/v1/trajectories", json={"trips": [{"id": "gaps", "points": trip_points, "times": times},
                                                        {"id": "parked", "points": stay, "times": times[:8]}]})
    assert r.status_code == 201, r.text
    out = r.json()
    answered = {a["trace_id"].split("#")[0] for a in out["accepted"]} | {x["trace_id"] for x in out["rejected"]}
    assert answered == {"gaps", "parked"}
    assert [a["trace_id"] for a in out["accepted"]] == ["gaps"]  # sparse fixes still make a route


def test_post_geojson(client, trip_points):
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "g1"}, "geometry": {"type": "LineString", "coordinates": trip_points}}
    ]}
    r = client.post("/v1/trajectories", json=fc, headers={"content-type": "application/geo+json"})
    assert r.status_code == 201, r.text
    assert [a["trace_id"] for a in r.json()["accepted"]] == ["g1"]


def test_post_csv_raw_and_multipart(client, trip_points):
    csv = "trip_id,lon,lat\n" + "\n".join(f"c1,{x},{y}" for x, y in trip_points)
    r = client.post("/v1/trajectories", content=csv, headers={"content-type": "text/csv"})
    assert r.status_code == 201, r.text
    assert [a["trace_id"] for a in r.json()["accepted"]] == ["c1"]
    r = client.post("/v1/trajectories", files={"file": ("trips.csv", csv.encode(), "text/csv")})
    assert r.status_code == 201, r.text
    assert len(r.json()["accepted"]) == 1


def test_post_gpx(client, trip_points):
    pts = "".join(f'<trkpt lat="{y}" lon="{x}"></trkpt>' for x, y in trip_points)
    gpx = (f'<?xml version="1.0"?><gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">'
           f"<trk><name>gpx1</name><trkseg>{pts}</trkseg></trk></gpx>")
    r = client.post("/v1/trajectories", files={"file": ("trip.gpx", gpx.encode(), "application/gpx+xml")})
    assert r.status_code == 201, r.text
    assert [a["trace_id"] for a in r.json()["accepted"]] == ["gpx1"]


def test_gpx_outside_the_network_is_rejected_with_its_reason(client, helpers):
    gpx = (helpers.ROOT / "data" / "andorra_for_map_matching.gpx").read_bytes()  # Andorra, not Monaco
    before = client.get("/v1/trajectories").json()["total"]
    r = client.post("/v1/trajectories", content=gpx, headers={"content-type": "application/gpx+xml"})
    # nothing usable: not 201 (nothing was created), and the reason of each trip is in the details
    assert r.status_code == 422 and r.json()["code"] == "no_trips_accepted"
    assert r.json()["details"]["rejected"][0]["reason"] in ("off_network", "too_short")
    assert client.get("/v1/trajectories").json()["total"] == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body.trips"),
        ({"trips": []}, "body.trips"),
        ({"trips": [{"points": [[7.42, 43.73]]}]}, "body.trips.0.points"),
        ({"trips": [{"points": [[7.42, 43.73], [200, 43.7]]}]}, "body.trips.0.points.1"),
        ({"trips": [{"points": [[7.42, 43.73], ["x", 43.7]]}]}, "body.trips.0.points.1.0"),
        ({"trips": [{"points": [[7.42, 43.73], [7.43, 43.74]], "times": [1]}]}, "body.trips.0"),
        ({"trips": [{"points": [[7.42, 43.73], [7.43, 43.74]], "colour": "red"}]}, "body.trips.0.colour"),
    ],
)
def test_malformed_json_is_422_per_field(client, body, field):
    r = client.post("/v1/trajectories", json=body)
    assert r.status_code == 422, r.text
    err = r.json()
    assert err["code"] == "validation_error" and err["message"]
    assert field in [d["field"] for d in err["details"]]


@pytest.mark.parametrize(
    ("content", "ctype", "code", "status"),
    [
        (b"{not json", "application/json", "invalid_json", 422),
        (b"", "application/json", "validation_error", 422),
        (b"<gpx", "application/gpx+xml", "invalid_gps_data", 422),
        (b"a,b\n1,2\n", "text/csv", "invalid_gps_data", 422),
        (b"hello", "text/plain", "unsupported_media_type", 415),
        (b'{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": []}}', "application/geo+json",
         "invalid_gps_data", 422),
    ],
)
def test_malformed_documents(client, content, ctype, code, status):
    r = client.post("/v1/trajectories", content=content, headers={"content-type": ctype})
    assert r.status_code == status, r.text
    assert r.json()["code"] == code and r.json()["message"]


def test_limits_413(settings_factory, trip_points):
    from fastapi.testclient import TestClient

    from app.main import create_app

    settings = settings_factory(max_points_per_trip=10, max_trips_per_request=2, max_body_bytes=50_000)
    with TestClient(create_app(settings)) as c:
        r = c.post("/v1/trajectories", json={"trips": [{"points": trip_points[:11]}]})
        assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
        r = c.post("/v1/trajectories", json={"trips": [{"points": trip_points[:5]}] * 3})
        assert r.status_code == 413 and r.json()["details"] == {"max_trips_per_request": 2}
        big = b"[" + b" " * 60_000 + b"]"
        r = c.post("/v1/trajectories", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["details"] == {"max_body_bytes": 50_000}


def test_list_and_pagination(client):
    r = client.get("/v1/trajectories", params={"limit": 5, "offset": 10})
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 80 and page["limit"] == 5 and page["offset"] == 10
    assert [t["id"] for t in page["items"]] == [11, 12, 13, 14, 15]
    item = page["items"][0]
    assert item["source"] == "demo" and len(item["origin_segment"]) == 3 and item["n_segments"] >= 2
    assert client.get("/v1/trajectories", params={"limit": 0}).status_code == 422
    assert client.get("/v1/trajectories", params={"limit": 10_000}).json()["limit"] == 500  # capped


def test_get_one_and_unknown(client, sample_trip):
    assert sample_trip["type"] == "FeatureCollection" and sample_trip["id"] == MONACO_TRIP_ID
    gps, matched = sample_trip["features"]
    assert gps["properties"]["kind"] == "gps" and matched["properties"]["kind"] == "matched"
    assert matched["geometry"]["type"] == "LineString" and len(matched["properties"]["segments"]) >= 2
    r = client.get("/v1/trajectories/9999")
    assert r.status_code == 404 and r.json()["code"] == "trajectory_not_found"
    assert client.get("/v1/trajectories/abc").json()["code"] == "validation_error"


def test_api_key_required_for_uploads(keyed_client, trip_points):
    body = {"trips": [{"points": trip_points}]}
    r = keyed_client.post("/v1/trajectories", json=body)
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    assert keyed_client.post("/v1/trajectories", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
    assert keyed_client.post("/v1/trajectories", json=body, headers={"X-API-Key": "test-key"}).status_code == 201
    # stored trips are raw GPS: with a key set, reading them needs it too
    assert keyed_client.get("/v1/trajectories").status_code == 401
    assert keyed_client.get("/v1/trajectories/1").status_code == 401
    assert keyed_client.get("/v1/trajectories", headers={"X-API-Key": "test-key"}).status_code == 200
    assert keyed_client.get("/v1/trajectories/1", headers={"X-API-Key": "test-key"}).status_code == 200
    assert keyed_client.get("/v1/models").status_code == 200  # models and queries need no key
