"""``GET /v1/network`` (the network drawn as streets) and ``GET /v1/network/usage`` (stored trips per segment)."""

from __future__ import annotations

import gzip
import json

import numpy as np

from app.services.network import load_network
from app.services.network_geojson import network_layer


def test_every_segment_is_drawn_once_and_two_way_streets_are_merged(client, settings_factory):
    r = client.get("/v1/network")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    net = load_network(settings_factory())
    states = [s for f in fc["features"] for s in f["properties"]["states"]]
    assert sorted(states) == list(range(net.n_states))  # each directed segment exactly once
    assert fc["n_segments"] == net.n_states and fc["n_features"] == len(fc["features"]) < net.n_states
    assert fc["network"] == {"name": net.name, "fingerprint": net.fingerprint}
    for f in fc["features"]:
        p = f["properties"]
        coords = np.asarray(f["geometry"]["coordinates"])
        assert p["oneway"] == (len(p["states"]) == 1)
        assert p["segments"] == [list(net.segment_id(s)) for s in p["states"]]
        assert p["speed_kph"] > 0 and p["length_m"] > 0 and p["class"]
        first = np.asarray(net.segment_geometry(p["states"][0]))
        np.testing.assert_allclose(coords, first, atol=1e-6)  # 6 decimals
        if not p["oneway"]:  # the other direction is the same street, driven backwards
            np.testing.assert_allclose(np.asarray(net.segment_geometry(p["states"][1]))[::-1], first, atol=1e-7)
            u, v, _ = p["segments"][0]
            assert p["segments"][1][:2] == [v, u]


def test_the_answer_is_cached_gzipped_and_revalidated(client):
    plain = client.get("/v1/network", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    raw = client.get("/v1/network", headers={"accept-encoding": "gzip"}, extensions={})
    assert raw.headers["content-encoding"] == "gzip" and raw.json() == plain.json()  # httpx decodes it
    etag = plain.headers["etag"]
    again = client.get("/v1/network", headers={"if-none-match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag


def test_the_gzip_body_is_the_plain_body(settings_factory):
    layer = network_layer(load_network(settings_factory()))
    assert gzip.decompress(layer.body_gzip) == layer.body and len(layer.body_gzip) < len(layer.body) / 3
    assert json.loads(layer.body)["n_features"] == len(layer.features)


def test_a_bbox_keeps_the_streets_that_meet_it(client):
    whole = client.get("/v1/network").json()
    x0, y0, x1, y1 = whole["bounds"]
    box = (x0, y0, (x0 + x1) / 2, (y0 + y1) / 2)
    part = client.get("/v1/network", params={"bbox": ",".join(map(str, box))}).json()
    assert 0 < len(part["features"]) < len(whole["features"]) and part["bbox"] == list(box)

    def meets(f):
        c = np.asarray(f["geometry"]["coordinates"])
        lo, hi = c.min(axis=0), c.max(axis=0)
        return lo[0] <= box[2] and hi[0] >= box[0] and lo[1] <= box[3] and hi[1] >= box[1]

    assert [f for f in whole["features"] if meets(f)] == part["features"]
    far = client.get("/v1/network", params={"bbox": "-10,-10,-9,-9"}).json()
    assert far["features"] == [] and far["n_features"] == whole["n_features"]


def test_a_malformed_bbox_is_a_422_naming_it(client):
    for bad in ("1,2,3", "a,b,c,d", "0,0,1,nan", "0,-91,1,1"):
        r = client.get("/v1/network", params={"bbox": bad})
        assert r.status_code == 422, bad
        assert r.json()["code"] == "validation_error" and r.json()["details"][0]["field"] == "query.bbox"
    # the corners may come in either order
    a = client.get("/v1/network", params={"bbox": "7.40,43.72,7.44,43.75"}).json()
    b = client.get("/v1/network", params={"bbox": "7.44,43.75,7.40,43.72"}).json()
    assert a["features"] == b["features"] and len(a["features"]) > 0


def test_usage_counts_the_stored_trips_on_each_segment(client, settings_factory):
    u = client.get("/v1/network/usage").json()
    page = client.get("/v1/trajectories", params={"limit": 500}).json()
    assert u["n_trips"] == page["total"] > 0
    counts = dict(zip(u["states"], u["trips"], strict=True))
    net = load_network(settings_factory())
    expected: dict[int, int] = {}
    for item in page["items"]:
        trip = client.get(f"/v1/trajectories/{item['id']}").json()
        matched = next(f for f in trip["features"] if f["properties"]["kind"] == "matched")
        for s in {net.state_of(seg) for seg in matched["properties"]["segments"]}:
            expected[s] = expected.get(s, 0) + 1
    assert counts == expected
    # a deleted trip is gone from the counts at once (the storage's change counter)
    client.delete(f"/v1/trajectories/{page['items'][0]['id']}")
    assert client.get("/v1/network/usage").json()["n_trips"] == u["n_trips"] - 1
