"""RoadNetwork: routable part, segment ids, U-turn policy, geometry, caching and fingerprints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import osmnx as ox
import pytest
from scipy.sparse.csgraph import connected_components

from maxent_irl import InvalidPathError, RouteMDP
from maxent_irl.roads import NetworkSourceError, RoadNetwork, UnknownSegmentError, load_graph
from maxent_irl.roads import network as network_module

MONACO_OSM = Path(__file__).resolve().parents[3] / "data" / "monaco_drive.osm.bz2"


def test_mdp_is_one_strongly_connected_component(monaco: RoadNetwork) -> None:
    assert isinstance(monaco.mdp, RouteMDP)
    n_comp, _ = connected_components(monaco.mdp.adjacency(), directed=True, connection="strong")
    assert n_comp == 1
    assert monaco.mdp.n_states == monaco.n_states == len(monaco.segment_length_m)
    # the raw graph has more directed edges than routable states (one-way stubs, islands)
    G = load_graph(MONACO_OSM)
    assert monaco.n_states < G.number_of_edges()
    assert np.all(monaco.mdp.src != monaco.mdp.dst)


def test_transitions_are_turns_between_adjacent_segments(monaco: RoadNetwork) -> None:
    ids = monaco.segment_ids
    assert np.all(ids[monaco.mdp.src, 1] == ids[monaco.mdp.dst, 0])  # (u, v) -> (v, w)
    uturn = ids[monaco.mdp.dst, 1] == ids[monaco.mdp.src, 0]
    assert np.array_equal(uturn, monaco.is_uturn)
    col = monaco.feature_names.index("turn_uturn")
    assert np.array_equal(monaco.mdp.features[:, col] == 1.0, uturn)


def test_segment_ids_map_both_ways(monaco: RoadNetwork) -> None:
    for s in range(monaco.n_states):
        seg = monaco.segment_id(s)
        assert isinstance(seg[0], int)
        assert monaco.state_of(seg) == s
        assert monaco.state_of(list(seg)) == s
    with pytest.raises(UnknownSegmentError, match="not in the network"):
        monaco.state_of((1, 2, 0))
    with pytest.raises(KeyError):  # UnknownSegmentError is a KeyError
        monaco.state_of((1, 2, 0))
    with pytest.raises(UnknownSegmentError):
        monaco.state_of("abc")  # type: ignore[arg-type]
    with pytest.raises(UnknownSegmentError):
        monaco.segment_id(monaco.n_states)
    # a segment of the OSM graph that is not routable says so
    G = load_graph(MONACO_OSM)
    dropped = [(u, v, k) for u, v, k in G.edges(keys=True) if (u, v, k) not in monaco._index]
    assert dropped
    with pytest.raises(UnknownSegmentError, match="outside the routable"):
        monaco.state_of(dropped[0])


def test_uturns_can_be_switched_off_except_at_dead_ends(monaco: RoadNetwork) -> None:
    G = load_graph(MONACO_OSM)
    strict = RoadNetwork.from_graph(G, allow_uturns=False, name="monaco")
    assert strict.fingerprint != monaco.fingerprint
    assert strict.is_uturn.sum() < monaco.is_uturn.sum()
    # every remaining U-turn is at a dead end: its source segment has no other way out
    out_deg = np.bincount(strict.mdp.src, minlength=strict.n_states)
    assert strict.is_uturn.any()
    assert np.all(out_deg[strict.mdp.src[strict.is_uturn]] == 1)
    n_comp, _ = connected_components(strict.mdp.adjacency(), directed=True, connection="strong")
    assert n_comp == 1


def test_geometry_runs_from_u_to_v(monaco: RoadNetwork) -> None:
    G = load_graph(MONACO_OSM)
    for s in range(0, monaco.n_states, 7):
        u, v, _ = monaco.segment_id(s)
        coords = monaco.segment_geometry(s)
        assert coords[0] == pytest.approx([G.nodes[u]["x"], G.nodes[u]["y"]])
        assert coords[-1] == pytest.approx([G.nodes[v]["x"], G.nodes[v]["y"]])
    mids = monaco.segment_midpoints
    assert mids.shape == (monaco.n_states, 2)
    west, south, east, north = monaco.bbox
    assert np.all((mids[:, 0] >= west) & (mids[:, 0] <= east) & (mids[:, 1] >= south) & (mids[:, 1] <= north))


def test_path_geojson(monaco: RoadNetwork) -> None:
    a = 0
    _, nxt = monaco.mdp.successors(a)
    b = int(nxt[0])
    _, nxt2 = monaco.mdp.successors(b)
    path = [a, b, int(nxt2[0])]
    f = monaco.path_geojson(path)
    assert f["type"] == "Feature" and f["geometry"]["type"] == "LineString"
    coords = f["geometry"]["coordinates"]
    n_expected = sum(len(monaco.segment_geometry(s)) for s in path) - 2  # shared junction points once
    assert len(coords) == n_expected
    assert f["properties"]["states"] == path
    assert f["properties"]["segments"][1] == list(monaco.segment_id(b))
    assert f["properties"]["length_m"] == pytest.approx(monaco.segment_length_m[path].sum())
    not_next = next(s for s in range(monaco.n_states) if s not in set(nxt.tolist()) and s != a)
    with pytest.raises(InvalidPathError):
        monaco.path_geojson([a, not_next])


def test_nearest_states_vectorized(monaco: RoadNetwork) -> None:
    s = 42
    lon, lat = monaco.segment_midpoints[s]
    states, dist = monaco.nearest_states(lon, lat, k=2)
    assert states.shape == (2,) and s in states.tolist()
    assert dist[0] == pytest.approx(0.0, abs=1e-6)
    pts = monaco.segment_midpoints[:50]
    st, d = monaco.nearest_states(pts[:, 0], pts[:, 1], k=3, max_distance_m=100)
    assert st.shape == (50, 3) and d.shape == (50, 3)
    assert np.all(d[:, 0] < 1e-6)
    assert np.all(np.diff(d, axis=1)[np.isfinite(d[:, 1:])] >= 0)  # sorted by distance
    # a point far out at sea: nothing within 100 m, but an unbounded search finds the coast road
    st, d = monaco.nearest_states(7.5, 43.70, k=1, max_distance_m=100)
    assert st[0] == -1 and np.isinf(d[0])
    st, d = monaco.nearest_states(7.5, 43.70, k=1, max_distance_m=None)
    assert st[0] >= 0 and 3000 < d[0] < 20_000
    with pytest.raises(ValueError):
        monaco.nearest_states(np.nan, 43.7)


@pytest.mark.parametrize("net_name", ["monaco", "andorra"])
def test_candidates_do_not_depend_on_the_radius_asked_for(net_name: str, request: pytest.FixtureRequest) -> None:
    """Candidates within 50 m are those within 250 m that lie within 50 m, local minima included:
    the map matcher asks for the smaller radius first and must get the same candidates."""
    net = request.getfixturevalue(net_name)
    rng = np.random.default_rng(5)
    mids = net.projection.forward(np.asarray(net.segment_midpoints)[rng.integers(0, net.n_states, 400)])
    xy = mids + rng.normal(scale=30.0, size=mids.shape)
    for mode in ("local", "min"):
        small = net.candidates(xy, 50.0, per_state=mode)
        big = net.candidates(xy, 250.0, per_state=mode)
        near = big[2] <= 50.0
        assert small[0].size > 400
        for got, want in zip(small, big, strict=True):
            np.testing.assert_array_equal(got, want[near])


def test_fingerprint_is_stable_and_npz_round_trips(tmp_path: Path, monaco: RoadNetwork) -> None:
    again = RoadNetwork.load(MONACO_OSM, name="other name")
    assert again.fingerprint == monaco.fingerprint  # content hash, the name is not part of it
    path = tmp_path / "monaco.npz"
    monaco.save(path)
    back = RoadNetwork.load(path)
    assert back.fingerprint == monaco.fingerprint
    assert back.name == "monaco"
    assert np.array_equal(back.mdp.features, monaco.mdp.features)
    assert back.segment_geometry(3) == monaco.segment_geometry(3)


def test_default_network_uses_a_disk_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(network_module, "DEFAULT_OSM_PATH", MONACO_OSM)
    monkeypatch.setattr(network_module, "_DEFAULT_CACHE", {})
    first = RoadNetwork.default(cache_dir=tmp_path)
    assert RoadNetwork.default(cache_dir=tmp_path) is first  # memoized in-process
    cached = list(tmp_path.glob("*.npz"))
    assert len(cached) == 1
    monkeypatch.setattr(network_module, "_DEFAULT_CACHE", {})
    second = RoadNetwork.default(cache_dir=tmp_path)
    assert second is not first and second.fingerprint == first.fingerprint
    cached[0].write_bytes(b"corrupt")  # a broken cache is rebuilt, not fatal
    monkeypatch.setattr(network_module, "_DEFAULT_CACHE", {})
    assert RoadNetwork.default(cache_dir=tmp_path).fingerprint == first.fingerprint


def test_default_is_andorra(andorra: RoadNetwork) -> None:
    assert andorra.name == "andorra"
    # data/README.md: largest strongly connected component 2,366 edges
    assert andorra.n_states == 2366
    assert 15 <= andorra.mdp.n_features <= 25


def test_a_projected_graph_is_refused_clearly() -> None:
    projected = ox.project_graph(load_graph(MONACO_OSM))  # UTM metres: used to fail deep in pyproj (CRSError)
    with pytest.raises(NetworkSourceError, match=r"projected \(EPSG:32632.*EPSG:4326"):
        RoadNetwork.from_graph(projected)
    del projected.graph["crs"]  # no crs to tell: the coordinates do
    with pytest.raises(NetworkSourceError, match=r"not lon/lat degrees.*unprojected"):
        RoadNetwork.from_graph(projected)
    projected.graph["crs"] = "no such crs"
    with pytest.raises(NetworkSourceError, match="unreadable graph crs"):
        RoadNetwork.from_graph(projected)
    back = ox.project_graph(ox.project_graph(load_graph(MONACO_OSM)), to_latlong=True)
    assert RoadNetwork.from_graph(back).n_states > 0
