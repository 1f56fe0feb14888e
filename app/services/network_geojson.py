"""The road network as GeoJSON for drawing (``GET /v1/network``): one feature per street, built once per network.

A map draws streets, not directed segments: the two directions of a two-way street share
one polyline, so they become one feature (``oneway: false``, both segment ids and states),
which halves what the browser receives and draws (Andorra: 2,366 segments -> about 1,430
features). Coordinates are rounded to 6 decimals (about 10 cm), enough for any zoom a
street map is read at. The serialized answer (and its gzip) is cached per network; a
``bbox`` filter answers big networks piece by piece from the same cached features.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from app.runtime import Runtime
    from maxent_irl.roads import RoadNetwork

__all__ = ["NetworkLayer", "network_answer", "network_layer", "trip_usage"]

#: Decimal places of the coordinates (1e-6 degree is about 0.1 m).
PRECISION = 6

_cache: dict[str, NetworkLayer] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class NetworkLayer:
    """The cached drawing of one network: its features, their bounding boxes, and the whole answer as bytes."""

    features: list[dict[str, Any]]
    boxes: np.ndarray  # (n_features, 4): min lon, min lat, max lon, max lat
    body: bytes
    body_gzip: bytes
    etag: str
    n_segments: int

    def select(self, bbox: tuple[float, float, float, float] | None, meta: dict[str, Any]) -> bytes:
        """The answer's bytes: the cached whole network, or the features whose box meets ``bbox``."""
        if bbox is None:
            return self.body
        x0, y0, x1, y1 = bbox
        b = self.boxes
        hit = np.flatnonzero((b[:, 0] <= x1) & (b[:, 2] >= x0) & (b[:, 1] <= y1) & (b[:, 3] >= y0))
        return _dump({**meta, "bbox": list(bbox), "features": [self.features[i] for i in hit]})


def _dump(collection: dict[str, Any]) -> bytes:
    return json.dumps(collection, separators=(",", ":"), allow_nan=False).encode()


def _streets(net: RoadNetwork) -> list[tuple[int, int | None]]:
    """``(state, reverse state or None)`` per street: a segment and its exact reverse (same polyline) pair up."""
    ids = net.segment_ids
    by_key: dict[tuple[int, int], list[int]] = {}
    for s, (u, v, _k) in enumerate(ids.tolist()):
        by_key.setdefault((u, v), []).append(s)
    paired: set[int] = set()
    out: list[tuple[int, int | None]] = []
    for s in range(net.n_states):
        if s in paired:
            continue
        u, v = int(ids[s, 0]), int(ids[s, 1])
        geom = np.asarray(net.segment_geometry(s))
        partner = None
        for r in by_key.get((v, u), []):
            if r != s and r not in paired:
                rev = np.asarray(net.segment_geometry(r))[::-1]
                if rev.shape == geom.shape and np.allclose(rev, geom, atol=1e-7):
                    partner = r
                    break
        paired.add(s)
        if partner is not None:
            paired.add(partner)
        out.append((s, partner))
    return out


def _build(net: RoadNetwork) -> NetworkLayer:
    features: list[dict[str, Any]] = []
    boxes = []
    for s, r in _streets(net):
        coords = np.round(np.asarray(net.segment_geometry(s), dtype=float), PRECISION)
        states = [s] if r is None else [s, r]
        props = {
            "states": states,
            "segments": [[int(x) for x in net.segment_ids[t]] for t in states],
            "class": str(net.segment_class[s]),
            "highway": str(net.segment_highway[s]),
            "name": str(net.segment_name[s]),
            "speed_kph": round(float(net.segment_speed_kph[s]), 1),
            "length_m": round(float(net.segment_length_m[s]), 1),
            "oneway": r is None,
        }
        features.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": coords.tolist()},
                         "properties": props})
        boxes.append([coords[:, 0].min(), coords[:, 1].min(), coords[:, 0].max(), coords[:, 1].max()])
    body = _dump({**_meta(net, len(features)), "features": features})
    etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
    return NetworkLayer(features=features, boxes=np.asarray(boxes, dtype=float).reshape(-1, 4), body=body,
                        body_gzip=gzip.compress(body, compresslevel=6, mtime=0), etag=etag, n_segments=net.n_states)


def _meta(net: RoadNetwork, n_features: int) -> dict[str, Any]:
    return {"type": "FeatureCollection",
            "network": {"name": str(net.name), "fingerprint": str(net.fingerprint)},
            "n_segments": int(net.n_states), "n_features": n_features,
            "bounds": [round(float(x), PRECISION) for x in net.bbox]}


def network_layer(net: RoadNetwork) -> NetworkLayer:
    """The cached drawing of ``net`` (built on first use, about 0.1 s for Andorra)."""
    key = str(net.fingerprint)
    with _lock:
        layer = _cache.get(key)
        if layer is None:
            layer = _cache[key] = _build(net)
    return layer


def network_answer(net: RoadNetwork, bbox: tuple[float, float, float, float] | None) -> bytes:
    """``GET /v1/network``'s body: the whole network, or its streets meeting ``bbox``."""
    layer = network_layer(net)
    return layer.select(bbox, _meta(net, len(layer.features)))



_usage_cache: dict[str, tuple[int, dict[str, Any]]] = {}


def trip_usage(rt: Runtime) -> dict[str, Any]:
    """How many stored trips drive each segment (the map's 'stored trips' layer): ``states`` and ``trips``, parallel.

    One read of the matched paths per change of the stored trips (the storage's change counter),
    so the page draws every stored trip at once instead of fetching them one by one.
    """
    version = rt.storage.trips.version()
    key = rt.fingerprint
    with _lock:
        hit = _usage_cache.get(key)
    if hit is not None and hit[0] == version:
        return hit[1]
    ids, paths = rt.storage.trips.paths(rt.fingerprint)
    counts = np.zeros(rt.net.n_states, dtype=np.int64)
    for path in paths:
        states = np.unique(np.asarray(path, dtype=np.int64))
        states = states[(states >= 0) & (states < counts.size)]
        counts[states] += 1
    used = np.flatnonzero(counts)
    out = {"network": {"name": str(rt.net.name), "fingerprint": rt.fingerprint}, "n_trips": len(ids),
           "states": used.tolist(), "trips": counts[used].tolist()}
    with _lock:
        _usage_cache[key] = (version, out)
    return out
