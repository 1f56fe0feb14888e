"""Reading the drivable part of an OpenStreetMap file (``.osm.pbf`` or OSM XML) with pyosmium.

One streaming reader for both formats (libosmium decodes PBF and XML, plain, ``.gz`` or
``.bz2``), in two passes so memory follows the drive network, not the file:

1. ways and relations (``highway`` / ``type`` keys filtered in C++): the ways that pass
   osmnx's "drive" filter (only their useful tags are kept) and the ``type=restriction``
   relations;
2. nodes: only the drive ways' nodes are kept, with their coordinates and useful tags.
   Which nodes pass is decided in C++ by libosmium's id bitmap where that is cheap (4 MiB
   per range of 2^25 ids that holds a wanted node: a few MB for a compactly numbered
   file, at most ~1.6 GB at today's planet-wide ids, so worth it on country-size files),
   else in Python against a set of the wanted ids (every node of the file then reaches
   Python, about 2 us each): the bitmap is used when it costs at most 64 MB or twice the
   file's size.

The result is the nodes and ways osmnx builds its graph from (Overpass-like elements,
in file order, which fixes osmnx's edge keys), plus the parsed restrictions. A way whose
nodes are not all in the file (a clipped extract) is cut into its runs of present nodes.
Progress is logged every 10 s on large files.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np
import osmium
import osmnx as ox

from maxent_irl.roads.exceptions import NetworkSourceError
from maxent_irl.roads.restrictions import TurnRestriction, parse_restriction

__all__ = ["PBF_SUFFIXES", "XML_SUFFIXES", "DriveExtract", "osmium_format", "read_drive_extract"]

logger = logging.getLogger(__name__)

XML_SUFFIXES = (".osm", ".xml", ".osm.gz", ".osm.bz2", ".xml.gz", ".xml.bz2")
PBF_SUFFIXES = (".osm.pbf", ".pbf")
_PROGRESS_S = 10.0


@dataclass
class DriveExtract:
    """Drive ways and their nodes as osmnx's graph builder takes them, and the car turn restrictions."""

    nodes: list[tuple[int, dict[str, Any]]]  # (id, {"y", "x", useful node tags}) in file order
    ways: list[dict[str, Any]]  # {"osmid", "nodes", useful way tags} in file order
    restrictions: list[TurnRestriction]
    counts: Counter[str] = field(default_factory=Counter)  # what was read, skipped, cut


def osmium_format(path: Path) -> str | None:
    """libosmium's format name for a file (by suffix), ``None`` if it is not an OSM file we read."""
    name = path.name.lower()
    if name.endswith(PBF_SUFFIXES):
        return "pbf"
    for sfx in XML_SUFFIXES:
        if name.endswith(sfx):
            comp = sfx.rsplit(".", 1)[1]
            return "osm" + (f".{comp}" if comp in ("gz", "bz2") else "")
    return None


def read_drive_extract(path: str | Path, is_drivable: Any, node_filter: str = "auto") -> DriveExtract:
    """Read the ways passing ``is_drivable(tags)``, their nodes, and the car turn restrictions of ``path``.

    ``is_drivable`` gets pyosmium's tag list (``in``, ``[]`` and ``get`` like a mapping of strings).

    ``node_filter``: ``"bitmap"`` (C++), ``"set"`` (Python) or ``"auto"`` (see the module doc).
    Raises :class:`NetworkSourceError` for a file libosmium cannot decode.
    """
    path = Path(path)
    fmt = osmium_format(path)
    if fmt is None:
        raise NetworkSourceError(f"not an OSM PBF or XML file name: {path.name!r}")
    kind = "OSM PBF" if fmt == "pbf" else "OSM XML"
    keep_way = set(ox.settings.useful_tags_way)
    keep_node = set(ox.settings.useful_tags_node)
    counts: Counter[str] = Counter()
    ways: list[dict[str, Any]] = []
    restrictions: list[TurnRestriction] = []
    t0 = time.perf_counter()
    try:
        # pass 1: ways with a highway tag and relations with a type (both filtered in C++)
        fp = osmium.FileProcessor(osmium.io.File(str(path), fmt), osmium.osm.WAY | osmium.osm.RELATION)
        last = t0
        for i, obj in enumerate(fp.with_filter(osmium.filter.KeyFilter("highway", "type"))):
            if i % 8192 == 0 and (now := time.perf_counter()) - last > _PROGRESS_S:
                logger.info("%s: pass 1/2, %d drive ways so far (%.0f s)", path.name, len(ways), now - t0)
                last = now
            if isinstance(obj, osmium.osm.Way):
                if not is_drivable(obj.tags):  # looks tags up in C++; most highway ways are footways
                    continue
                way: dict[str, Any] = {t.k: t.v for t in obj.tags if t.k in keep_way}
                way["osmid"] = obj.id
                way["nodes"] = [ref for ref, _ in groupby(n.ref for n in obj.nodes)]  # as osmnx: no repeats
                ways.append(way)
            elif isinstance(obj, osmium.osm.Relation):
                tags = {t.k: t.v for t in obj.tags}
                got = parse_restriction(obj.id, tags, [(m.type, m.ref, m.role) for m in obj.members])
                if isinstance(got, TurnRestriction):
                    restrictions.append(got)
                elif got is not None:
                    counts[f"restriction_{got}"] += 1
        t1 = time.perf_counter()
        logger.info(
            "%s: pass 1/2 done, %d drive ways, %d car turn restrictions (%.1f s)",
            path.name, len(ways), len(restrictions), t1 - t0,
        )
        # pass 2: the drive ways' nodes only
        wanted = np.unique(np.fromiter((r for w in ways for r in w["nodes"]), dtype=np.int64))
        bitmap_mb = 4.0 * np.unique(wanted >> 25).size  # libosmium's IdSetDense: 4 MiB chunks of 2^25 ids
        if node_filter == "auto":
            cheap = bitmap_mb <= max(64.0, 2 * path.stat().st_size / 2**20)
            node_filter = "bitmap" if cheap and (wanted.size == 0 or wanted[0] > 0) else "set"
        fp = osmium.FileProcessor(osmium.io.File(str(path), fmt), osmium.osm.NODE)
        if node_filter == "bitmap":
            fp = fp.with_filter(osmium.filter.IdFilter(wanted))
            wanted_set: set[int] | None = None
        else:
            wanted_set = set(wanted.tolist())
        del wanted
        nodes: list[tuple[int, dict[str, Any]]] = []
        last = t1
        for i, n in enumerate(fp):
            if i % 65536 == 0 and (now := time.perf_counter()) - last > _PROGRESS_S:
                logger.info("%s: pass 2/2, %d nodes so far (%.0f s)", path.name, len(nodes), now - t0)
                last = now
            if (wanted_set is not None and n.id not in wanted_set) or not isinstance(n, osmium.osm.Node):
                continue
            loc = n.location
            if not loc.valid():
                continue
            data: dict[str, Any] = {"y": loc.lat, "x": loc.lon}
            if len(n.tags):
                data.update((t.k, t.v) for t in n.tags if t.k in keep_node)
            nodes.append((n.id, data))
    except RuntimeError as exc:  # libosmium: PBF / XML / compression errors
        raise NetworkSourceError(f"cannot read {kind} {path}: {exc}") from exc
    counts["drive_ways"] = len(ways)
    counts["drive_nodes"] = len(nodes)
    ways = _cut_at_missing_nodes(ways, {nid for nid, _ in nodes}, counts)
    logger.info(
        "%s: read %d drive ways and %d of their nodes in %.1f s (node filter: %s)%s",
        path.name, len(ways), len(nodes), time.perf_counter() - t0, node_filter,
        f"; {counts['ways_cut']} ways cut where their nodes are missing" if counts["ways_cut"] else "",
    )
    return DriveExtract(nodes=nodes, ways=ways, restrictions=restrictions, counts=counts)


def _cut_at_missing_nodes(ways: list[dict[str, Any]], present: set[int], counts: Counter[str]) -> list[dict[str, Any]]:
    """Ways with nodes missing from the file (clipped extracts) become their runs of present nodes."""
    out = []
    for way in ways:
        refs = way["nodes"]
        if all(r in present for r in refs):
            out.append(way)
            continue
        counts["ways_cut"] += 1
        run: list[int] = []
        for r in [*refs, None]:
            if r is not None and r in present:
                run.append(r)
                continue
            if len(run) >= 2:
                out.append({**way, "nodes": run})
            run = []
    return out
