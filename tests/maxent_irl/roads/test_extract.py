"""Reading .osm.pbf and OSM XML through one route: same graph as osmnx's own XML route, errors, clipped extracts."""

from __future__ import annotations

import bz2
from pathlib import Path

import osmium
import osmnx as ox
import pytest

from maxent_irl.roads import NetworkSourceError, RoadNetwork, load_graph
from maxent_irl.roads.extract import read_drive_extract
from maxent_irl.roads.osm import _ensure_speeds, _extra_way_tags, is_drivable_way, normalize_list_attributes
from tests.maxent_irl.roads.osm_files import CENTER, EAST, WEST, crossroads, write

DATA = Path(__file__).resolve().parents[3] / "data"
MONACO_OSM = DATA / "monaco_drive.osm.bz2"


def osmnx_xml_route(path: Path) -> RoadNetwork:
    """The route before .pbf support, kept as the reference: osmnx parses the XML, keeps every
    way, and the drive filter then drops edges before simplification."""
    with _extra_way_tags():
        G = ox.graph_from_xml(path, simplify=False, retain_all=True)
    G.remove_edges_from([(u, v, k) for u, v, k, d in G.edges(keys=True, data=True) if not is_drivable_way(d)])
    G.remove_nodes_from([n for n in list(G.nodes) if G.degree(n) == 0])
    return RoadNetwork.from_graph(_ensure_speeds(normalize_list_attributes(ox.simplify_graph(G))))


def _pbf_copy(src: Path, dst: Path) -> Path:
    """Convert an OSM file to .osm.pbf with pyosmium (what a user's extract would be)."""
    with osmium.SimpleWriter(str(dst)) as w:
        for obj in osmium.FileProcessor(str(src)):
            {"n": w.add_node, "w": w.add_way, "r": w.add_relation}[obj.type_str()](obj)
    return dst


def test_pbf_and_xml_of_a_real_extract_give_the_same_network(tmp_path: Path) -> None:
    pbf = _pbf_copy(MONACO_OSM, tmp_path / "monaco.osm.pbf")
    from_pbf = RoadNetwork.load(pbf)
    from_xml = RoadNetwork.load(MONACO_OSM)
    assert from_pbf.fingerprint == from_xml.fingerprint
    assert from_xml.fingerprint == osmnx_xml_route(MONACO_OSM).fingerprint


@pytest.mark.parametrize("suffix", [".osm", ".osm.gz", ".osm.bz2", ".xml.bz2", ".osm.pbf", ".pbf"])
def test_every_format_of_a_hand_made_extract_gives_the_same_network(suffix: str, tmp_path: Path) -> None:
    ext = crossroads(stub=True)
    reference = osmnx_xml_route(write(ext, tmp_path / "ref.osm"))
    net = RoadNetwork.load(write(ext, tmp_path / ("map" + suffix)))
    assert net.fingerprint == reference.fingerprint
    assert net.n_states == 18


def test_a_raw_extract_loses_its_footways_before_simplification(tmp_path: Path) -> None:
    ext = crossroads()
    ext.ways[22] = ([100, 150], {"highway": "footway"})  # a footpath joining the ring at its corner
    G = load_graph(write(ext, tmp_path / "map.osm.pbf"))
    assert {d["highway"] for _, _, d in G.edges(data=True)} == {"residential"}
    assert 150 not in G and 160 not in G  # footway and building nodes are gone
    assert 100 not in G  # the corner is no junction once the footpath is dropped: simplified away


def test_ways_cut_by_the_extract_boundary_keep_their_present_part(tmp_path: Path) -> None:
    ext = crossroads()
    ext.ways[60] = ([WEST, 999, CENTER, EAST], {"highway": "primary"})  # node 999 lies outside the extract
    G = load_graph(write(ext, tmp_path / "clipped.osm.pbf"))
    primary = {(u, v) for u, v, d in G.edges(data=True) if d["highway"] == "primary"}
    assert primary == {(CENTER, EAST), (EAST, CENTER)}
    assert 999 not in G


def test_unknown_and_broken_files_say_what_is_accepted(tmp_path: Path) -> None:
    bad = tmp_path / "roads.shp"
    bad.write_bytes(b"x")
    with pytest.raises(NetworkSourceError) as info:
        RoadNetwork.load(bad)
    for fmt in (".osm.pbf", ".osm.bz2", ".osm.gz", ".xml", ".graphml", ".npz"):
        assert fmt in str(info.value)
    broken = tmp_path / "broken.osm.pbf"
    broken.write_bytes(b"\x00\x00\x00\x0dnot a pbf at all")
    with pytest.raises(NetworkSourceError, match="cannot read OSM PBF"):
        load_graph(broken)
    truncated = tmp_path / "truncated.osm.bz2"
    truncated.write_bytes(bz2.compress(b"<osm version='0.6'><node id='1' lat='43.7' lon='7.4'>")[:-10])
    with pytest.raises(NetworkSourceError, match="cannot read OSM XML"):
        load_graph(truncated)
    npz = tmp_path / "net.npz"
    npz.write_bytes(b"x")
    with pytest.raises(NetworkSourceError, match=r"saved RoadNetwork.*RoadNetwork\.load"):
        load_graph(npz)
    with pytest.raises(NetworkSourceError, match="cannot read saved network"):
        RoadNetwork.load(npz)
    with pytest.raises(FileNotFoundError):
        RoadNetwork.load(tmp_path / "missing.osm.pbf")
    with pytest.raises(FileNotFoundError):
        RoadNetwork.load(tmp_path / "missing.npz")
    no_roads = crossroads()
    for wid, (refs, tags) in list(no_roads.ways.items()):
        no_roads.ways[wid] = (refs, {**tags, "highway": "footway"} if "highway" in tags else tags)
    with pytest.raises(NetworkSourceError, match="no drivable road"):
        load_graph(write(no_roads, tmp_path / "paths.osm.pbf"))


@pytest.mark.parametrize("suffix", [".osm.pbf", ".osm"])
def test_both_node_filters_read_the_same_nodes(suffix: str, tmp_path: Path) -> None:
    """Nodes are picked by libosmium's id bitmap on compactly numbered files, by a Python set elsewhere."""
    path = write(crossroads(stub=True), tmp_path / ("map" + suffix))
    by_bitmap = read_drive_extract(path, is_drivable_way, node_filter="bitmap")
    by_set = read_drive_extract(path, is_drivable_way, node_filter="set")
    assert by_bitmap.nodes == by_set.nodes and by_bitmap.ways == by_set.ways
    grid = [100 + 10 * r + c for r in range(3) for c in range(3)]
    assert [n for n, _ in by_set.nodes] == [*grid, 140]  # the drive ways' nodes only, in file order


def test_negative_ids_as_josm_writes_them(tmp_path: Path) -> None:
    ext = crossroads()
    neg = type(ext)(
        nodes={-n: xy for n, xy in ext.nodes.items()},
        ways={-w: ([-r for r in refs], tags) for w, (refs, tags) in ext.ways.items()},
    )
    net = RoadNetwork.load(write(neg, tmp_path / "josm.osm"))
    assert net.n_states == 16 and (net.segment_ids[:, :2] < 0).all()
