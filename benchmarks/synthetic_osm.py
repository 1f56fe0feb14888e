"""A synthetic city as an OpenStreetMap file (``.osm.pbf`` or OSM XML), for the map-loading benchmarks.

A square grid of streets (100 m blocks, each block edge drawn with 3 shape nodes) with
realistic tags: primary / secondary / tertiary arteries every 5 blocks (two-way, lanes,
maxspeed), residential streets between them (some one-way, either direction), a few
private or ``motorcar=no`` streets. Around them, what a real extract holds and the
"drive" filter must skip: sidewalks (footways sharing the intersections), driveways
(``highway=service``, sharing a street's shape node), buildings (closed ways, most of
the nodes, as in real data) and POI nodes. At arterial crossings, turn-restriction
relations of every kind (some for other vehicles only, some with ``except``).

Used by ``bench_build_pbf.py`` and ``bench_osm_readers.py``; written with pyosmium's writer.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import osmium
from osmium.osm import mutable

__all__ = ["write_synthetic_city"]

_LAT0, _LON0 = 48.80, 2.25
_BLOCK_M = 100.0
_KINDS = (
    ("restriction", "no_left_turn"), ("restriction", "no_right_turn"), ("restriction", "no_straight_on"),
    ("restriction", "no_u_turn"), ("restriction", "only_left_turn"), ("restriction", "only_right_turn"),
    ("restriction", "only_straight_on"), ("restriction:hgv", "no_left_turn"),
    ("restriction:motorcar", "no_right_turn"),
)


def write_synthetic_city(path: str | Path, n: int = 150, buildings_per_block: int = 7, seed: int = 0) -> dict[str, int]:
    """Write an ``n`` x ``n`` intersection city to ``path`` (format from the suffix); return element counts.

    ``n=150`` gives about 1.0 million nodes, 230,000 ways and 500 restriction relations.
    """
    rng = np.random.default_rng(seed)
    path = Path(path)
    path.unlink(missing_ok=True)
    dlat = _BLOCK_M / 111_320.0
    dlon = _BLOCK_M / (111_320.0 * math.cos(math.radians(_LAT0)))
    counts = {"nodes": 0, "ways": 0, "relations": 0}
    next_id = [0]

    def new_id() -> int:
        next_id[0] += 1
        return next_id[0]

    nodes: list[tuple[int, float, float, dict[str, str]]] = []

    def node(lat: float, lon: float, tags: dict[str, str] | None = None) -> int:
        i = new_id()
        nodes.append((i, lon, lat, tags or {}))
        return i

    inter = np.zeros((n, n), dtype=np.int64)
    for i in range(n):
        for j in range(n):
            tags = {"highway": "traffic_signals"} if i % 5 == 0 and j % 5 == 0 else None
            inter[i, j] = node(_LAT0 + i * dlat, _LON0 + j * dlon, tags)
    # 3 shape nodes per block edge, slightly off the straight line (curved streets)
    h_shape = np.zeros((n, n - 1, 3), dtype=np.int64)
    v_shape = np.zeros((n - 1, n, 3), dtype=np.int64)
    for i in range(n):
        for j in range(n - 1):
            for s, f in enumerate((0.25, 0.5, 0.75)):
                h_shape[i, j, s] = node(_LAT0 + i * dlat + rng.normal(0, 0.02) * dlat, _LON0 + (j + f) * dlon)
    for i in range(n - 1):
        for j in range(n):
            for s, f in enumerate((0.25, 0.5, 0.75)):
                v_shape[i, j, s] = node(_LAT0 + (i + f) * dlat, _LON0 + j * dlon + rng.normal(0, 0.02) * dlon)
    ways: list[tuple[int, list[int], dict[str, str]]] = []

    def way(refs: list[int], tags: dict[str, str]) -> int:
        i = new_id() + 10_000_000_000  # way ids in their own range, as in OSM
        ways.append((i, refs, tags))
        return i

    def street_tags(k: int, horizontal: bool) -> dict[str, str]:
        name = f"{'Rue' if horizontal else 'Avenue'} {k}"
        if k % 10 == 0:
            return {"highway": "primary", "name": name, "lanes": "4", "maxspeed": "50", "ref": f"D{k}"}
        if k % 5 == 0:
            return {"highway": "secondary" if horizontal else "tertiary", "name": name, "maxspeed": "50"}
        tags = {"highway": "residential", "name": name}
        if k % 3 == 1:
            tags["oneway"] = "yes" if k % 2 else "-1"
        if k % 7 == 3:
            tags["maxspeed"] = "30"
        if k % 41 == 17:
            tags["access"] = "private"
        if k % 43 == 19:
            tags["motorcar"] = "no"
        return tags

    # streets, split into ways of 5 blocks (so arteries meet at way ends, where restrictions go)
    h_way: dict[tuple[int, int], int] = {}  # (row, first column) -> way id
    v_way: dict[tuple[int, int], int] = {}
    for i in range(n):
        for j0 in range(0, n - 1, 5):
            refs = [int(inter[i, j0])]
            for j in range(j0, min(j0 + 5, n - 1)):
                refs += [int(x) for x in h_shape[i, j]] + [int(inter[i, j + 1])]
            h_way[i, j0] = way(refs, street_tags(i, True))
    for j in range(n):
        for i0 in range(0, n - 1, 5):
            refs = [int(inter[i0, j])]
            for i in range(i0, min(i0 + 5, n - 1)):
                refs += [int(x) for x in v_shape[i, j]] + [int(inter[i + 1, j])]
            v_way[i0, j] = way(refs, street_tags(j, False))
    # sidewalks along every block edge, joining the street at both intersections
    for i in range(n):
        for j in range(n - 1):
            mid = [node(_LAT0 + (i + 0.08) * dlat, _LON0 + (j + f) * dlon) for f in (0.2, 0.5, 0.8)]
            way([int(inter[i, j]), *mid, int(inter[i, j + 1])], {"highway": "footway", "footway": "sidewalk"})
    for i in range(n - 1):
        for j in range(n):
            mid = [node(_LAT0 + (i + f) * dlat, _LON0 + (j + 0.08) * dlon) for f in (0.2, 0.5, 0.8)]
            way([int(inter[i, j]), *mid, int(inter[i + 1, j])], {"highway": "footway", "footway": "sidewalk"})
    # per block: a driveway off the street's middle shape node, buildings, POIs
    side = 0.12
    for i in range(n - 1):
        for j in range(n - 1):
            d1 = node(_LAT0 + (i + 0.2) * dlat, _LON0 + (j + 0.5) * dlon)
            d2 = node(_LAT0 + (i + 0.3) * dlat, _LON0 + (j + 0.55) * dlon)
            way([int(h_shape[i, j, 1]), d1, d2], {"highway": "service", "service": "driveway"})
            for b in range(buildings_per_block):
                cy = _LAT0 + (i + 0.25 + 0.5 * (b % 2)) * dlat
                cx = _LON0 + (j + 0.15 + 0.7 * (b // 2) / max(1, (buildings_per_block - 1) // 2)) * dlon
                corners = [
                    node(cy + dy * side * dlat / 2, cx + dx * side * dlon / 2)
                    for dy, dx in ((-1, -1), (-1, 1), (1, 1), (1, -1))
                ]
                tags = {"building": "yes"}
                if b == 0:
                    tags.update({"addr:housenumber": str(j), "addr:street": f"Rue {i}"})
                way([*corners, corners[0]], tags)
            for _ in range(2):
                node(_LAT0 + (i + rng.uniform(0.3, 0.7)) * dlat, _LON0 + (j + rng.uniform(0.3, 0.7)) * dlon,
                     {"amenity": "bench"})
    relations: list[tuple[int, list[tuple[str, int, str]], dict[str, str]]] = []
    k = 0
    for i in range(5, n - 1, 5):
        for j in range(5, n - 1, 5):
            if (i // 5 + j // 5) % 2:
                continue
            key, value = _KINDS[k % len(_KINDS)]
            k += 1
            frm = h_way[i, j - 5]  # arriving from the west along the row
            to = {"left": v_way[i, j], "right": v_way[i - 5, j], "straight": h_way[i, j], "u": frm}
            target = to["u" if "u_turn" in value else value.split("_")[1]]
            tags = {"type": "restriction", key: value}
            if k % 11 == 0:
                tags["except"] = "bicycle;motorcar"
            members = [("w", frm, "from"), ("n", int(inter[i, j]), "via"), ("w", target, "to")]
            relations.append((new_id(), members, tags))
    with osmium.SimpleWriter(str(path)) as w:
        for i, lon, lat, tags in nodes:
            w.add_node(mutable.Node(id=i, location=(lon, lat), tags=tags, version=1))
        for i, refs, tags in ways:
            w.add_way(mutable.Way(id=i, nodes=refs, tags=tags, version=1))
        for i, members, tags in relations:
            w.add_relation(mutable.Relation(id=i, members=members, tags=tags, version=1))
    counts.update(nodes=len(nodes), ways=len(ways), relations=len(relations))
    return counts
