"""Loading drivable OpenStreetMap road graphs with osmnx.

Sources: an OpenStreetMap file, ``.osm.pbf`` (as Geofabrik or BBBike hand out extracts)
or OSM XML (``.osm``, ``.xml``, optionally ``.gz`` / ``.bz2``), an osmnx GraphML file,
or, on a machine that is online, a place name or a ``(west, south, east, north)``
bounding box. Every loader returns an osmnx ``MultiDiGraph`` in WGS84 with a
``speed_kph`` on each edge (OSM ``maxspeed`` where tagged, else a per-class default,
see :data:`DEFAULT_SPEEDS_KPH`).

Both file formats go one way (:mod:`maxent_irl.roads.extract`, pyosmium, streaming):
osmnx's own "drive" tag filter (the one it sends to Overpass; ``graph_from_xml`` applies
none) picks the ways, then osmnx's own graph builder and ``simplify_graph`` make the
graph, so a ``.pbf`` and the XML written from it give the same graph. The filter runs on
the ways *before* simplifying: a pre-filtered extract is unchanged, a raw one loses its
footpaths without leaving interstitial nodes behind. The file's car turn restrictions
become ``G.graph["turn_restrictions"]``: chains of segments ``(u, v, key)`` that
:class:`~maxent_irl.roads.network.RoadNetwork` must not drive (see
:mod:`maxent_irl.roads.restrictions`).
"""

from __future__ import annotations

import ast
import contextlib
import logging
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import osmnx as ox

from maxent_irl.roads.exceptions import NetworkSourceError
from maxent_irl.roads.extract import PBF_SUFFIXES, XML_SUFFIXES, read_drive_extract
from maxent_irl.roads.restrictions import restriction_chains

__all__ = [
    "ACCEPTED_FILES", "DEFAULT_SPEEDS_KPH", "GraphSource", "is_drivable_way", "is_file_source", "load_graph",
    "normalize_list_attributes", "save_graph",
]

logger = logging.getLogger(__name__)

GraphSource = str | Path | tuple[float, float, float, float] | Sequence[float]

#: Speeds (km/h) for edges without a usable ``maxspeed`` tag; typical European
#: free-flow speeds per OSM ``highway`` class. Classes missing here get the mean
#: tagged speed of their class (osmnx's rule), then :data:`FALLBACK_SPEED_KPH`.
DEFAULT_SPEEDS_KPH: dict[str, float] = {
    "motorway": 120.0,
    "motorway_link": 60.0,
    "trunk": 90.0,
    "trunk_link": 50.0,
    "primary": 70.0,
    "primary_link": 40.0,
    "secondary": 60.0,
    "secondary_link": 40.0,
    "tertiary": 50.0,
    "tertiary_link": 30.0,
    "unclassified": 40.0,
    "road": 40.0,
    "residential": 30.0,
    "living_street": 10.0,
    "service": 20.0,
    "busway": 30.0,
}
FALLBACK_SPEED_KPH = 40.0

_GRAPHML_SUFFIXES = (".graphml", ".graphml.gz")
_NPZ_SUFFIXES = (".npz",)
#: What a road-network file may be, for error messages.
ACCEPTED_FILES = (
    "OpenStreetMap PBF (.osm.pbf), OSM XML (.osm, .xml, optionally compressed: .osm.bz2, .osm.gz, .xml.bz2, "
    ".xml.gz), osmnx GraphML (.graphml, .graphml.gz), or a saved RoadNetwork (.npz, RoadNetwork.load / from_npz)"
)

# osmnx 2.x "drive" / "drive_service" Overpass filters, applied to parsed ways.
_EXCLUDED = {
    "highway": (
        "abandoned|bridleway|bus_guideway|construction|corridor|cycleway|elevator|escalator|footway|no|path|"
        "pedestrian|planned|platform|proposed|raceway|razed|steps|track"
    ),
    "area": "yes",
    "access": "private",
    "motor_vehicle": "no",
    "motorcar": "no",
}
_EXCLUDED_SERVICE = {
    "drive": "alley|driveway|emergency_access|parking|parking_aisle|private",
    "drive_service": "emergency_access|parking|parking_aisle|private",
}
_EXTRA_WAY_TAGS = ("lanes:forward", "lanes:backward", "motor_vehicle", "motorcar")


def is_file_source(source: object) -> bool:
    """True if ``source`` names an OSM PBF / XML, GraphML or ``.npz`` file (by suffix), whether or not it exists."""
    if not isinstance(source, str | Path):
        return False
    name = str(source).lower()
    return name.endswith(XML_SUFFIXES + PBF_SUFFIXES + _GRAPHML_SUFFIXES + _NPZ_SUFFIXES)


def load_graph(source: GraphSource, *, network_type: str = "drive") -> nx.MultiDiGraph:
    """Load a drivable road graph from a file, a place name or a bounding box.

    Parameters
    ----------
    source:
        Path to an ``.osm.pbf`` or OSM XML file (``.osm`` / ``.xml``, optionally ``.gz`` /
        ``.bz2``), to a ``.graphml`` written by :func:`save_graph` / ``ox.save_graphml``,
        a place name (geocoded by Nominatim, online only) or a ``(west, south, east,
        north)`` bbox in degrees (Overpass, online only). Place and bbox sources carry
        no turn restrictions (osmnx does not download relations).
    network_type:
        ``"drive"`` (osmnx's default: no ``service`` roads) or ``"drive_service"``.

    Raises
    ------
    FileNotFoundError
        A file source that does not exist.
    NetworkSourceError
        Unknown or unreadable file, a ``.npz`` (a built network: use ``RoadNetwork.load``),
        no drivable road in it, or an online source while offline.
    """
    if network_type not in _EXCLUDED_SERVICE:
        raise NetworkSourceError(f"network_type must be one of {sorted(_EXCLUDED_SERVICE)}, got {network_type!r}")
    if isinstance(source, str | Path) and (is_file_source(source) or Path(source).is_file()):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"road network file not found: {path}")
        name = path.name.lower()
        if name.endswith(_GRAPHML_SUFFIXES):
            G = _load_graphml(path)
        elif name.endswith(XML_SUFFIXES + PBF_SUFFIXES):
            G = _graph_from_osm_file(path, network_type)
        elif name.endswith(_NPZ_SUFFIXES):
            raise NetworkSourceError(
                f"{path.name!r} is a saved RoadNetwork, not a road graph: load it with RoadNetwork.load or from_npz"
            )
        else:
            raise NetworkSourceError(
                f"cannot tell the format of {path.name!r} from its name; accepted: {ACCEPTED_FILES}"
            )
    elif isinstance(source, str):
        G = _online(lambda: ox.graph_from_place(source, network_type=network_type), f"place {source!r}")
    elif _is_bbox(source):
        west, south, east, north = (float(v) for v in source)  # type: ignore[union-attr]
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise NetworkSourceError(f"bbox must be (west, south, east, north) in degrees, got {source!r}")
        G = _online(
            lambda: ox.graph_from_bbox((west, south, east, north), network_type=network_type),
            f"bbox {(west, south, east, north)}",
        )
    else:
        raise NetworkSourceError(
            f"unsupported road-network source {source!r}: give a file path ({ACCEPTED_FILES}), "
            "a place name or a (west, south, east, north) bbox"
        )
    if G.number_of_edges() == 0:
        raise NetworkSourceError(f"no drivable road in {source!r}")
    return _ensure_speeds(normalize_list_attributes(G))


def save_graph(G: nx.MultiDiGraph, path: str | Path) -> None:
    """Save ``G`` as GraphML (reloadable by :func:`load_graph`, restrictions included); keep the ODbL attribution."""
    ox.save_graphml(G, Path(path))


def _is_bbox(source: object) -> bool:
    if isinstance(source, str | bytes | Path) or not isinstance(source, Sequence):
        return False
    return len(source) == 4 and all(isinstance(v, int | float) and not isinstance(v, bool) for v in source)


def _online(fetch: Any, what: str) -> nx.MultiDiGraph:
    try:
        return fetch()
    except Exception as exc:  # osmnx raises requests / InsufficientResponse / geocoder errors
        raise NetworkSourceError(
            f"could not download the road network for {what} ({type(exc).__name__}: {exc}); "
            "downloading needs internet access, otherwise load an OSM XML or GraphML file"
        ) from exc


@contextlib.contextmanager
def _extra_way_tags() -> Iterator[None]:
    """Temporarily ask osmnx to keep the per-direction lane and access tags (not thread-safe)."""
    saved = list(ox.settings.useful_tags_way)
    ox.settings.useful_tags_way = saved + [t for t in _EXTRA_WAY_TAGS if t not in saved]
    try:
        yield
    finally:
        ox.settings.useful_tags_way = saved


def _graph_from_osm_file(path: Path, network_type: str) -> nx.MultiDiGraph:
    """Drive graph of an OSM PBF / XML file: filter ways, build and simplify with osmnx, map the restrictions."""
    with _extra_way_tags():
        ext = read_drive_extract(path, lambda tags: is_drivable_way(tags, network_type))
    if not ext.ways:
        raise NetworkSourceError(f"no drivable road ({network_type}) in {path}")
    referenced = {w for r in ext.restrictions for w in (*r.from_ways, *r.via_ways, *r.to_ways)}
    way_nodes = {w["osmid"]: list(w["nodes"]) for w in ext.ways if w["osmid"] in referenced}
    raw = _raw_graph(ext.nodes, ext.ways)
    raw.remove_nodes_from([n for n in list(raw.nodes) if raw.degree(n) == 0])
    if raw.number_of_edges() == 0:
        raise NetworkSourceError(f"no drivable road ({network_type}) in {path}")
    G = ox.simplify_graph(raw, track_merged=True)
    counts: Counter[str] = Counter()
    G.graph["turn_restrictions"] = restriction_chains(ext.restrictions, raw, G, way_nodes, counts)
    counts.update({k: v for k, v in ext.counts.items() if k.startswith("restriction_")})
    G.graph["turn_restriction_counts"] = dict(sorted(counts.items()))
    logger.info(
        "loaded %s: %d drive ways, %d raw edges; %d nodes / %d edges after simplification; "
        "%d car turn restrictions read: %s",
        path.name, len(ext.ways), raw.number_of_edges(), G.number_of_nodes(), G.number_of_edges(),
        len(ext.restrictions), ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none",
    )
    return G


def _raw_graph(nodes: list[tuple[int, dict[str, Any]]], ways: list[dict[str, Any]]) -> nx.MultiDiGraph:
    """osmnx's ``_create_graph`` from already parsed nodes and ways (not keyed by id, so a cut way keeps its id)."""
    G = nx.MultiDiGraph(
        created_date=ox.utils.ts(), created_with=f"OSMnx {ox.__version__}", crs=ox.settings.default_crs
    )
    G.add_nodes_from(nodes)
    ox.graph._add_paths(G, ways, bidirectional=False)  # one-way tagging, reversed ways: osmnx's rules
    if G.number_of_edges():
        G = ox.distance.add_edge_lengths(G)
    return G


def is_drivable_way(tags: Mapping[str, Any], network_type: str = "drive") -> bool:
    """osmnx's Overpass "drive" (or "drive_service") filter on one way's tags (values may be lists).

    The same regular expressions osmnx sends to Overpass, searched (not matched) in each
    value as Overpass's ``!~`` does; a way without ``highway`` is never drivable.
    """
    if "highway" not in tags:
        return False
    for tag, pattern in (*_EXCLUDED.items(), ("service", _EXCLUDED_SERVICE[network_type])):
        if tag in tags and any(re.search(pattern, str(v)) for v in _as_list(tags[tag])):
            return False
    return not (network_type == "drive" and any(str(v) == "service" for v in _as_list(tags["highway"])))



def _load_graphml(path: Path) -> nx.MultiDiGraph:
    try:
        return ox.load_graphml(path, graph_dtypes={"turn_restrictions": _literal, "turn_restriction_counts": _literal})
    except Exception as exc:
        raise NetworkSourceError(f"cannot read GraphML {path}: {type(exc).__name__}: {exc}") from exc


def _literal(text: str) -> Any:
    """A graph attribute that ``ox.save_graphml`` wrote with ``str()`` (lists and dicts of numbers and strings)."""
    return ast.literal_eval(text)


_HIGHWAY_RANK = {
    h: i
    for i, h in enumerate(
        (
            "motorway", "trunk", "primary", "secondary", "tertiary", "motorway_link", "trunk_link", "primary_link",
            "secondary_link", "tertiary_link", "unclassified", "residential", "road", "living_street", "service",
        )
    )
}


def normalize_list_attributes(G: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """Sort the list-valued edge attributes that simplification leaves behind, in place.

    osmnx merges the tags of the ways it joins via ``set``s, so their order changes
    from one Python process to the next (string hashing is salted), and "the first
    value" (what ``add_edge_speeds`` uses for ``highway``) with it. Sorting makes
    every derived quantity reproducible: ``highway`` by importance (the most
    important class first), everything else by its string form.
    """
    for _, _, d in G.edges(data=True):
        for attr, value in d.items():
            if isinstance(value, list) and len(value) > 1:
                if attr == "highway":
                    d[attr] = sorted(value, key=lambda h: (_HIGHWAY_RANK.get(str(h), len(_HIGHWAY_RANK)), str(h)))
                else:
                    d[attr] = sorted(value, key=str)
    return G


def _ensure_speeds(G: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """Add ``speed_kph`` (tagged maxspeed, else the class default) unless every edge has one."""
    if all("speed_kph" in d for _, _, d in G.edges(data=True)):
        return G
    return ox.add_edge_speeds(G, hwy_speeds=DEFAULT_SPEEDS_KPH, fallback=FALLBACK_SPEED_KPH)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple | set) else [value]
