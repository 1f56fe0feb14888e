"""Loading OSM road graphs: XML (compressed or not), GraphML, the drive filter, online sources, bad input."""

from __future__ import annotations

import bz2
import gzip
from pathlib import Path

import networkx as nx
import osmnx as ox
import pytest

from maxent_irl.roads import NetworkSourceError, RoadNetwork, load_graph, save_graph
from maxent_irl.roads.osm import DEFAULT_SPEEDS_KPH

MONACO_OSM = Path(__file__).resolve().parents[3] / "data" / "monaco_drive.osm.bz2"

# A square block: a two-way residential street, a one-way primary with maxspeed,
# a footway and a parking aisle that "drive" must drop, and a private road.
RAW_XML = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6">
  <node id="1" lat="43.7300" lon="7.4200"/>
  <node id="2" lat="43.7300" lon="7.4220"/>
  <node id="3" lat="43.7315" lon="7.4220"/>
  <node id="4" lat="43.7315" lon="7.4200"/>
  <node id="5" lat="43.7307" lon="7.4210"/>
  <node id="6" lat="43.7330" lon="7.4210"/>
  <way id="10"><nd ref="1"/><nd ref="2"/><tag k="highway" v="residential"/><tag k="name" v="Rue A"/></way>
  <way id="11"><nd ref="2"/><nd ref="3"/><tag k="highway" v="primary"/><tag k="oneway" v="yes"/>
    <tag k="maxspeed" v="50"/><tag k="lanes" v="2"/></way>
  <way id="12"><nd ref="3"/><nd ref="4"/><nd ref="1"/><tag k="highway" v="residential"/></way>
  <way id="13"><nd ref="1"/><nd ref="5"/><nd ref="3"/><tag k="highway" v="footway"/></way>
  <way id="14"><nd ref="4"/><nd ref="6"/><tag k="highway" v="service"/><tag k="service" v="parking_aisle"/></way>
  <way id="15"><nd ref="3"/><nd ref="6"/><tag k="highway" v="residential"/><tag k="access" v="private"/></way>
</osm>
"""


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("suffix", [".osm", ".osm.gz", ".osm.bz2"])
def test_xml_drive_filter_and_speeds(tmp_path: Path, suffix: str) -> None:
    raw = RAW_XML.encode()
    data = {".osm": raw, ".osm.gz": gzip.compress(raw), ".osm.bz2": bz2.compress(raw)}[suffix]
    G = load_graph(_write(tmp_path, "block" + suffix, data))
    highways = {d["highway"] for _, _, d in G.edges(data=True)}
    assert highways == {"residential", "primary"}  # footway, parking aisle and private road dropped
    assert 5 not in G and 6 not in G  # nodes only on dropped ways are gone
    # simplification keeps only the junctions 2 and 3: the residential street 2-1-4-3 becomes one
    # edge each way, the one-way primary 2->3 has a single direction
    edges = {(u, v, d["highway"]) for u, v, d in G.edges(data=True)}
    assert edges == {(2, 3, "primary"), (2, 3, "residential"), (3, 2, "residential")}
    speeds = {d["highway"]: d["speed_kph"] for _, _, d in G.edges(data=True)}
    assert speeds["primary"] == 50.0  # tagged maxspeed
    assert speeds["residential"] == DEFAULT_SPEEDS_KPH["residential"]  # class default


def test_real_extract_matches_the_data_readme() -> None:
    G = load_graph(MONACO_OSM)
    # data/README.md: 346 nodes / 666 edges in the largest weakly connected component
    W = ox.truncate.largest_component(G, strongly=False)
    assert (W.number_of_nodes(), W.number_of_edges()) == (346, 666)
    assert all("speed_kph" in d for _, _, d in G.edges(data=True))


def test_graphml_round_trip_gives_the_same_network(tmp_path: Path, monaco: RoadNetwork) -> None:
    G = load_graph(MONACO_OSM)
    path = tmp_path / "monaco.graphml"
    save_graph(G, path)
    net = RoadNetwork.from_graph(load_graph(path), name="monaco")
    assert net.n_states == monaco.n_states
    assert net.fingerprint == monaco.fingerprint


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_graph(tmp_path / "nope.osm.bz2")
    with pytest.raises(NetworkSourceError, match="cannot read OSM XML"):
        load_graph(_write(tmp_path, "bad.osm", b"<osm><node id='1' lat='x'"))
    with pytest.raises(NetworkSourceError, match="cannot read OSM XML"):
        load_graph(_write(tmp_path, "bad.osm.bz2", b"not bzip2 at all"))
    footway_only = RAW_XML.replace('v="residential"', 'v="footway"').replace('v="primary"', 'v="path"')
    with pytest.raises(NetworkSourceError, match="no drivable road"):
        load_graph(_write(tmp_path, "paths.osm", footway_only.encode()))
    with pytest.raises(NetworkSourceError, match="cannot tell the format"):
        load_graph(_write(tmp_path, "roads.txt", b"hello"))
    with pytest.raises(NetworkSourceError):
        load_graph(42)  # type: ignore[arg-type]
    with pytest.raises(NetworkSourceError, match="network_type"):
        load_graph(MONACO_OSM, network_type="walk")


def test_online_sources_fail_clearly_when_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def offline(*args: object, **kwargs: object) -> nx.MultiDiGraph:
        calls.append((args, kwargs))
        raise ConnectionError("no route to host")

    monkeypatch.setattr(ox, "graph_from_place", offline)
    monkeypatch.setattr(ox, "graph_from_bbox", offline)
    with pytest.raises(NetworkSourceError, match="needs internet"):
        load_graph("Monaco")
    with pytest.raises(NetworkSourceError, match="needs internet"):
        load_graph((7.40, 43.72, 7.44, 43.75))
    assert calls[0][1]["network_type"] == "drive"
    assert calls[1][0][0] == (7.40, 43.72, 7.44, 43.75)  # osmnx 2: (left, bottom, right, top)
    with pytest.raises(NetworkSourceError, match="bbox"):
        load_graph((7.44, 43.72, 7.40, 43.75))  # west > east
