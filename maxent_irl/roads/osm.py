"""Loading drivable OpenStreetMap road graphs with osmnx.

Sources: an OSM XML file (``.osm``, ``.xml``, optionally ``.gz`` / ``.bz2``), an osmnx
GraphML file, or, on a machine that is online, a place name or a ``(west, south,
east, north)`` bounding box. Every loader returns an osmnx ``MultiDiGraph`` in WGS84
with a ``speed_kph`` on each edge (OSM ``maxspeed`` where tagged, else a per-class
default, see :data:`DEFAULT_SPEEDS_KPH`).

``osmnx.graph_from_xml`` keeps every way of the file, footways included, so for XML
we apply osmnx's own "drive" tag filter (the one it sends to Overpass) *before*
simplifying: a pre-filtered extract is unchanged, a raw one loses its footpaths
without leaving interstitial nodes behind.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import osmnx as ox

from maxent_irl.roads.exceptions import NetworkSourceError

__all__ = [
    "DEFAULT_SPEEDS_KPH", "GraphSource", "is_file_source", "load_graph", "normalize_list_attributes", "save_graph",
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

_XML_SUFFIXES = (".osm", ".xml", ".osm.gz", ".osm.bz2", ".xml.gz", ".xml.bz2")
_GRAPHML_SUFFIXES = (".graphml", ".graphml.gz")

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
    """True if ``source`` names an OSM XML or GraphML file (by suffix), whether or not it exists."""
    if not isinstance(source, str | Path):
        return False
    name = str(source).lower()
    return name.endswith(_XML_SUFFIXES + _GRAPHML_SUFFIXES)


def load_graph(source: GraphSource, *, network_type: str = "drive") -> nx.MultiDiGraph:
    """Load a drivable road graph from a file, a place name or a bounding box.

    Parameters
    ----------
    source:
        Path to ``.osm`` / ``.osm.gz`` / ``.osm.bz2`` / ``.xml`` (OSM XML), to a
        ``.graphml`` written by :func:`save_graph` / ``ox.save_graphml``, a place
        name (geocoded by Nominatim, online only) or a ``(west, south, east, north)``
        bbox in degrees (Overpass, online only).
    network_type:
        ``"drive"`` (osmnx's default: no ``service`` roads) or ``"drive_service"``.

    Raises
    ------
    FileNotFoundError
        A file source that does not exist.
    NetworkSourceError
        Unreadable file, no drivable road in it, or an online source while offline.
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
        elif name.endswith(_XML_SUFFIXES):
            G = _graph_from_osm_xml(path, network_type)
        else:
            raise NetworkSourceError(
                f"cannot tell the format of {path.name!r}: use one of {', '.join(_XML_SUFFIXES + _GRAPHML_SUFFIXES)}"
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
            f"unsupported road-network source {source!r}: give an OSM XML / GraphML path, a place name or a bbox"
        )
    if G.number_of_edges() == 0:
        raise NetworkSourceError(f"no drivable road in {source!r}")
    return _ensure_speeds(normalize_list_attributes(G))


def save_graph(G: nx.MultiDiGraph, path: str | Path) -> None:
    """Save ``G`` as GraphML (reloadable by :func:`load_graph`); keep the ODbL attribution with it."""
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


def _graph_from_osm_xml(path: Path, network_type: str) -> nx.MultiDiGraph:
    try:
        with _extra_way_tags():
            G = ox.graph_from_xml(path, simplify=False, retain_all=True)
    except Exception as exc:  # XML syntax errors, bad compression, osmnx "no data" errors
        raise NetworkSourceError(f"cannot read OSM XML {path}: {type(exc).__name__}: {exc}") from exc
    n_before = G.number_of_edges()
    drop = [(u, v, k) for u, v, k, d in G.edges(keys=True, data=True) if not _is_drivable(d, network_type)]
    G.remove_edges_from(drop)
    G.remove_nodes_from([n for n in list(G.nodes) if G.degree(n) == 0])
    if G.number_of_edges() == 0:
        raise NetworkSourceError(f"no drivable road ({network_type}) in {path}")
    G = ox.simplify_graph(G)
    logger.info(
        "loaded %s: %d raw edges, %d not drivable dropped; %d nodes / %d edges after simplification",
        path.name, n_before, len(drop), G.number_of_nodes(), G.number_of_edges(),
    )
    return G


def _is_drivable(data: dict[str, Any], network_type: str) -> bool:
    if "highway" not in data:
        return False
    for tag, pattern in (*_EXCLUDED.items(), ("service", _EXCLUDED_SERVICE[network_type])):
        if tag in data and any(re.search(pattern, str(v)) for v in _as_list(data[tag])):
            return False
    return not (
        network_type == "drive" and any(str(v) == "service" for v in _as_list(data["highway"]))
    )


def _load_graphml(path: Path) -> nx.MultiDiGraph:
    try:
        return ox.load_graphml(path)
    except Exception as exc:
        raise NetworkSourceError(f"cannot read GraphML {path}: {type(exc).__name__}: {exc}") from exc


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
