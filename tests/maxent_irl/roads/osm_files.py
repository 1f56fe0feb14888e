"""Hand-made OpenStreetMap extracts for the tests, written as OSM XML (plain, .gz, .bz2) or .osm.pbf.

The same :class:`Extract` goes to every format, so a test can load it through each route.
The XML is written by hand (the format is simple and we want no second writer in the
way); the .pbf with pyosmium's writer.
"""

from __future__ import annotations

import bz2
import gzip
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

import osmium
from osmium.osm import mutable

Member = tuple[str, int, str]  # ("n" | "w" | "r", ref, role)


@dataclass
class Extract:
    nodes: dict[int, tuple[float, float]] = field(default_factory=dict)  # id -> (lon, lat)
    ways: dict[int, tuple[list[int], dict[str, str]]] = field(default_factory=dict)
    relations: dict[int, tuple[list[Member], dict[str, str]]] = field(default_factory=dict)
    node_tags: dict[int, dict[str, str]] = field(default_factory=dict)

    def restriction(self, rid: int, frm: int, via: int | list[int], to: int, **tags: str) -> None:
        """Add a restriction relation; ``via`` is a node id, or a list of way ids."""
        members: list[Member] = [("w", frm, "from")]
        members += [("n", via, "via")] if isinstance(via, int) else [("w", w, "via") for w in via]
        members.append(("w", to, "to"))
        self.relations[rid] = (members, {"type": "restriction", **{k.replace("__", ":"): v for k, v in tags.items()}})


def _tags_xml(tags: dict[str, str]) -> str:
    return "".join(f"<tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tags.items())


def xml_text(ext: Extract) -> str:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="routeirl tests">']
    for nid, (lon, lat) in sorted(ext.nodes.items()):
        tags = ext.node_tags.get(nid, {})
        body = f">{_tags_xml(tags)}</node>" if tags else "/>"
        lines.append(f'  <node id="{nid}" version="1" lat="{lat:.7f}" lon="{lon:.7f}"{body}')
    for wid, (refs, tags) in sorted(ext.ways.items()):
        nds = "".join(f'<nd ref="{r}"/>' for r in refs)
        lines.append(f'  <way id="{wid}" version="1">{nds}{_tags_xml(tags)}</way>')
    for rid, (members, tags) in sorted(ext.relations.items()):
        kinds = {"n": "node", "w": "way", "r": "relation"}
        ms = "".join(f'<member type="{kinds[t]}" ref="{r}" role={quoteattr(role)}/>' for t, r, role in members)
        lines.append(f'  <relation id="{rid}" version="1">{ms}{_tags_xml(tags)}</relation>')
    lines.append("</osm>")
    return "\n".join(lines) + "\n"


def write(ext: Extract, path: Path) -> Path:
    """Write ``ext`` in the format the suffix names: .osm.pbf, .osm / .xml, optionally .gz / .bz2."""
    name = path.name
    path.unlink(missing_ok=True)
    if name.endswith(".pbf"):
        with osmium.SimpleWriter(str(path)) as w:
            for nid, (lon, lat) in sorted(ext.nodes.items()):
                w.add_node(mutable.Node(id=nid, location=(lon, lat), tags=ext.node_tags.get(nid, {}), version=1))
            for wid, (refs, tags) in sorted(ext.ways.items()):
                w.add_way(mutable.Way(id=wid, nodes=refs, tags=tags, version=1))
            for rid, (members, tags) in sorted(ext.relations.items()):
                w.add_relation(mutable.Relation(id=rid, members=members, tags=tags, version=1))
        return path
    data = xml_text(ext).encode()
    if name.endswith(".gz"):
        data = gzip.compress(data)
    elif name.endswith(".bz2"):
        data = bz2.compress(data)
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------- the crossroads test map
LON0, LAT0, STEP = 7.4200, 43.7300, 0.0020  # ~160 m east-west, ~220 m north-south
CENTER, WEST, EAST, NORTH, SOUTH = 111, 110, 112, 121, 101
W_ARM, E_ARM, N_ARM, S_ARM = 1, 2, 3, 4
RING_SW, RING_NW, RING_NE, RING_SE = 5, 6, 7, 8
STUB, STUB_END = 9, 140


def crossroads(stub: bool = False, one_way_east: bool = False) -> Extract:
    """A + crossroads at node 111 inside a ring road, all two-way residential streets.

    Nodes ``100 + 10 * row + col`` on a 3 x 3 grid (row 0 south, col 0 west). Arms: ways
    1 (west, 110-111), 2 (east, 111-112), 3 (north, 111-121), 4 (south, 111-101), each
    ending at the centre. Ring: ways 5 (101-100-110), 6 (110-120-121), 7 (121-122-112),
    8 (112-102-101), their corners simplified away. Also a footway across the map and a
    building that the drive filter must drop. ``stub`` adds a dead-end street 9 from 111
    to 140; ``one_way_east`` makes the east arm one-way (111 -> 112) and the north-east
    ring one-way toward 112, so the east arm can only be left southward (via-way tests).
    """
    e = Extract()
    for r in range(3):
        for c in range(3):
            e.nodes[100 + 10 * r + c] = (LON0 + c * STEP, LAT0 + r * STEP)
    res = {"highway": "residential"}
    e.ways[W_ARM] = ([WEST, CENTER], {**res, "name": "West arm"})
    e.ways[E_ARM] = ([CENTER, EAST], {**res, "name": "East arm", **({"oneway": "yes"} if one_way_east else {})})
    e.ways[N_ARM] = ([CENTER, NORTH], {**res, "name": "North arm"})
    e.ways[S_ARM] = ([CENTER, SOUTH], {**res, "name": "South arm"})
    e.ways[RING_SW] = ([SOUTH, 100, WEST], {**res, "name": "Ring"})
    e.ways[RING_NW] = ([WEST, 120, NORTH], {**res, "name": "Ring"})
    e.ways[RING_NE] = ([NORTH, 122, EAST], {**res, "name": "Ring", **({"oneway": "yes"} if one_way_east else {})})
    e.ways[RING_SE] = ([EAST, 102, SOUTH], {**res, "name": "Ring"})
    # what the drive filter must drop: a footway through the centre, a building
    e.nodes[150] = (LON0 + 0.5 * STEP, LAT0 + 0.5 * STEP)
    e.nodes[151] = (LON0 + 1.5 * STEP, LAT0 + 1.5 * STEP)
    e.ways[20] = ([150, CENTER, 151], {"highway": "footway"})
    for i, (dx, dy) in enumerate(((0.2, 0.2), (0.4, 0.2), (0.4, 0.4), (0.2, 0.4))):
        e.nodes[160 + i] = (LON0 + dx * STEP, LAT0 + dy * STEP)
    e.ways[21] = ([160, 161, 162, 163, 160], {"building": "yes"})
    if stub:
        e.nodes[STUB_END] = (LON0 + 1.4 * STEP, LAT0 + 1.3 * STEP)
        e.ways[STUB] = ([CENTER, STUB_END], {**res, "name": "Cul-de-sac"})
    return e
