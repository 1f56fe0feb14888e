"""Features: the table, hand-verified segments and turns on the real Andorra network, the true theta."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg as sla

from maxent_irl import RouteModel
from maxent_irl.roads import FEATURE_TABLE, RoadNetwork, default_true_theta, weights_as_seconds
from maxent_irl.roads.features import FEATURE_NAMES, lanes_per_direction, road_class, turn_types
from maxent_irl.roads.geo import haversine_m


def test_feature_table() -> None:
    names = [f.name for f in FEATURE_TABLE]
    assert names == list(FEATURE_NAMES) and len(set(names)) == len(names)
    assert 15 <= len(names) <= 25
    assert {f.unit for f in FEATURE_TABLE} == {"km", "count"}
    assert all((f.unit == "km") == f.name.startswith("km_") for f in FEATURE_TABLE)
    assert "turn_uturn" in names and "segment" in names
    assert "turn_straight" not in names  # straight is the reference turn


def test_every_transition_counts_its_entered_segment_once(monaco: RoadNetwork) -> None:
    F = monaco.mdp.features
    groups = {}
    for i, f in enumerate(FEATURE_TABLE):
        groups.setdefault(f.group, []).append(i)
    km = monaco.segment_length_m[monaco.mdp.dst] / 1000
    assert np.allclose(F[:, groups["road_class"]].sum(axis=1), km)  # one class holds the km
    assert np.all((F[:, groups["road_class"]] > 0).sum(axis=1) == 1)
    for g in ("speed", "lanes"):  # dummy-coded: the km sit in at most one bin (none = reference bin)
        nonzero = F[:, groups[g]] > 0
        assert np.all(nonzero.sum(axis=1) <= 1), g
        assert np.allclose(F[:, groups[g]].sum(axis=1)[nonzero.any(axis=1)], km[nonzero.any(axis=1)]), g
    # identifiable: the feature matrix has full column rank (no group sums to another)
    assert np.linalg.matrix_rank(F[:, F.any(axis=0)]) == int(F.any(axis=0).sum())
    assert np.all(F[:, groups["turn"]].sum(axis=1) <= 1)  # at most one turn type (none = straight)
    assert np.all(F[:, groups["constant"]] == 1)


def _feats(net: RoadNetwork, a: tuple[int, int, int], b: tuple[int, int, int]) -> dict[str, float]:
    sa, sb = net.state_of(a), net.state_of(b)
    idx, nxt = net.mdp.successors(sa)
    j = int(idx[list(nxt).index(sb)])
    return {n: v for n, v in zip(net.feature_names, net.mdp.features[j], strict=True) if v != 0}


def test_hand_verified_junction_in_andorra_la_vella(andorra: RoadNetwork) -> None:
    """Avinguda Carlemany (secondary, one-way west->east, OSM way 6185807) crosses Carrer de la
    Constitució (residential, two-way, N-S) at node 51400768 (42.50868 N, 1.53878 E).

    Raw OSM nodes: 51400871 (west, lon 1.53792), 51400267 (east, lon 1.53978), 270726768 (north,
    lat 42.50942), 51400770 (south, lat 42.50813). Driving on the right: from the south, turning
    east is a right turn; from the west, north is a left turn and south a right one.
    """
    node = 51400768
    east, south, north, west = 51400267, 51400770, 270726768, 51400871
    seg = (node, east, 0)
    # the entered segment: secondary, no maxspeed -> class default 60 km/h, 1 lane (reference), 82 m
    f = _feats(andorra, (south, node, 0), seg)
    km = haversine_m(np.array([1.538779, 42.5086758]), np.array([1.5397821, 42.5086755])) / 1000
    assert f["km_secondary"] == pytest.approx(km, rel=1e-3)
    assert f["km_speed_50_70"] == f["km_secondary"]
    assert f["turn_right"] == 1 and f["segment"] == 1
    assert set(f) == {"km_secondary", "km_speed_50_70", "turn_right", "segment"}
    assert "turn_left" in _feats(andorra, (north, node, 0), seg)
    assert "turn_right" in _feats(andorra, (west, node, 0), (node, south, 0))
    assert "turn_left" in _feats(andorra, (west, node, 0), (node, north, 0))
    straight = _feats(andorra, (west, node, 0), seg)
    assert not any(k.startswith("turn_") for k in straight)
    assert _feats(andorra, (south, node, 0), (node, south, 0)).get("turn_uturn") == 1
    # one-way: there is no segment against the traffic
    with pytest.raises(KeyError):
        andorra.state_of((node, west, 0))


def test_hand_verified_segments(andorra: RoadNetwork) -> None:
    # OSM way 6177152: primary CG-2, lanes=2, maxspeed=80, oneway=yes -> 2 lanes, 70-90 km/h bin
    s = andorra.state_of((625277, 1922638424, 0))
    assert andorra.segment_highway[s] == "primary" and andorra.segment_speed_kph[s] == 80
    assert andorra.segment_lanes[s] == 2
    row = andorra.mdp.features[andorra.mdp.dst == s][0]
    named = dict(zip(andorra.feature_names, row, strict=True))
    assert named["km_primary"] == named["km_speed_70_90"] == named["km_lanes_2"] == pytest.approx(0.7564, abs=1e-3)
    # primary CG-1, lanes=4 on a two-way road, maxspeed=70 -> 2 lanes per direction, 50-70 bin (inclusive)
    s = andorra.state_of((144217500, 1870032154, 0))
    assert andorra.segment_lanes[s] == 2 and andorra.segment_speed_kph[s] == 70
    # OSM way 7934443: residential, no maxspeed, no lanes -> 30 km/h default, 1 lane (reference: no lane feature)
    s = andorra.state_of((59016173, 59015926, 0))
    row = dict(zip(andorra.feature_names, andorra.mdp.features[andorra.mdp.dst == s][0], strict=True))
    assert row["km_residential"] == row["km_speed_le30"] == pytest.approx(0.13026, abs=1e-4)
    assert row["km_lanes_2"] == row["km_lanes_3plus"] == 0


def test_classification_helpers() -> None:
    assert road_class("unclassified") == "residential"
    assert road_class(["primary_link", "primary"]) == "link"
    assert road_class("busway") == "service"
    assert lanes_per_direction({"lanes": "4", "oneway": False, "highway": "primary"}) == 2
    assert lanes_per_direction({"lanes": "3", "oneway": True, "highway": "primary"}) == 3
    assert lanes_per_direction({"lanes": "2", "lanes:forward": "1", "reversed": False}) == 1
    assert lanes_per_direction({"lanes:backward": "2", "reversed": True, "highway": "primary"}) == 2
    assert lanes_per_direction({"highway": "motorway"}) == 2
    assert lanes_per_direction({"lanes": "garbage", "highway": "residential"}) == 1
    tt = turn_types(np.array([0.0, 30, 90, 150, -30, -90, -150, 179]), np.array([0, 0, 0, 0, 0, 0, 0, 1], bool))
    assert tt.tolist() == [-1, 0, 1, 2, 3, 4, 5, 6]


def test_default_true_theta_converges_and_is_not_travel_time(andorra: RoadNetwork) -> None:
    theta = default_true_theta(andorra.feature_names)
    rewards = andorra.mdp.features @ theta
    assert rewards.max() < 0  # every transition costs something
    W = andorra.mdp.adjacency(np.exp(rewards))
    rho = abs(sla.eigs(W, k=1, which="LM", return_eigenvectors=False)[0])
    assert rho < 0.5  # the partition function converges with a wide margin
    sec = weights_as_seconds(theta, andorra.feature_names)
    # same speed, different class: residential costs more per km than primary (travel time would not care)
    assert sec["km_residential"] > 1.4 * sec["km_primary"]
    assert sec["turn_left"] > sec["turn_right"] > 0
    # realistic trips: sampled routes stay close to the shortest route, without loops
    model = RouteModel(andorra.mdp, theta)
    rng = np.random.default_rng(0)
    o, d = rng.integers(0, andorra.n_states, 60), rng.integers(0, andorra.n_states, 60)
    paths = model.sample_trips(o, d, random_state=1)
    L = andorra.segment_length_m
    router = andorra.router()
    ratio = np.array([L[p].sum() / L[router.shortest_path(a, b)].sum() for p, a, b in zip(paths, o, d, strict=True)])
    assert np.median(ratio) < 1.1 and ratio.max() < 2.0
    assert np.mean([len(np.unique(p)) == len(p) for p in paths]) > 0.9


def test_weights_as_seconds_anchor() -> None:
    names = list(FEATURE_NAMES)
    theta = default_true_theta(names)
    sec = weights_as_seconds(theta, names, reference_speed_kmh=50)
    ref = sec["km_residential"]  # 50 km/h is in the reference speed bin, 1 lane the reference count
    assert ref == pytest.approx(3600 / 50)  # one km of the reference road takes 72 s at 50 km/h
    sec36 = weights_as_seconds(theta, names, reference_speed_kmh=36, reference_features=["km_primary"])
    assert sec36["km_primary"] == pytest.approx(100.0)
    assert sec36["segment"] == pytest.approx(100.0 * theta[names.index("segment")] / theta[names.index("km_primary")])
    with pytest.raises(ValueError, match="reward"):
        weights_as_seconds(np.zeros(len(names)), names)
    with pytest.raises(ValueError, match="shape"):
        weights_as_seconds(theta[:3], names)
    with pytest.raises(ValueError, match="not among"):
        weights_as_seconds(theta, names, reference_features=["nope"])
