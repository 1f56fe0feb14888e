"""Turn restrictions: read from .osm.pbf and OSM XML, each kind removes exactly its transitions.

Every check is made against the same map without the restriction (the transitions it
must remove are there, and routes use them), so a test fails if the restriction is ignored.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from maxent_irl import InvalidPathError, RouteModel
from maxent_irl.roads import RoadNetwork, UnknownSegmentError, default_true_theta, load_graph, save_graph
from maxent_irl.roads.restrictions import TurnRestriction, forbidden_transitions, parse_restriction
from tests.maxent_irl.roads.osm_files import (
    CENTER,
    E_ARM,
    EAST,
    N_ARM,
    NORTH,
    RING_SE,
    RING_SW,
    S_ARM,
    SOUTH,
    STUB,
    STUB_END,
    W_ARM,
    WEST,
    Extract,
    crossroads,
    write,
)

Turn = tuple[tuple[int, int, int], tuple[int, int, int]]


def _load(ext: Extract, tmp_path: Path, name: str = "map.osm.pbf") -> RoadNetwork:
    return RoadNetwork.load(write(ext, tmp_path / name))


def _turns(net: RoadNetwork) -> set[Turn]:
    ids = [net.segment_id(s) for s in range(net.n_states)]
    return {(ids[s], ids[d]) for s, d in zip(net.mdp.src.tolist(), net.mdp.dst.tolist(), strict=True)}


def _uses(path: np.ndarray | list[int], a: int, b: int) -> bool:
    """Whether ``path`` makes the transition ``a -> b`` anywhere."""
    return (a, b) in set(itertools.pairwise(np.asarray(path).tolist()))


def _seg(u: int, v: int) -> tuple[int, int, int]:
    return (u, v, 0)


FROM_WEST = _seg(WEST, CENTER)
LEFT, RIGHT, STRAIGHT, BACK = _seg(CENTER, NORTH), _seg(CENTER, SOUTH), _seg(CENTER, EAST), _seg(CENTER, WEST)

# (restriction tags, to way) -> the turns from the west arm it must forbid
KINDS = {
    "no_left_turn": (N_ARM, {LEFT}),
    "no_right_turn": (S_ARM, {RIGHT}),
    "no_straight_on": (E_ARM, {STRAIGHT}),
    "no_u_turn": (W_ARM, {BACK}),
    "only_left_turn": (N_ARM, {RIGHT, STRAIGHT, BACK}),
    "only_right_turn": (S_ARM, {LEFT, STRAIGHT, BACK}),
    "only_straight_on": (E_ARM, {LEFT, RIGHT, BACK}),
}


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> RoadNetwork:
    return _load(crossroads(), tmp_path_factory.mktemp("plain"))


def test_the_plain_map_has_every_turn_at_the_centre(plain: RoadNetwork) -> None:
    turns = _turns(plain)
    assert {(FROM_WEST, t) for t in (LEFT, RIGHT, STRAIGHT, BACK)} <= turns
    assert plain.n_states == 16  # 4 arms and 4 ring sides, both ways; footway and building dropped
    assert plain.restricted_turns.shape == (0, 7)


def _check_forbidden(net: RoadNetwork, plain: RoadNetwork, forbidden: set[Turn]) -> None:
    """The forbidden turns are gone from the MDP, from every query, and nothing else changed."""
    assert _turns(plain) - _turns(net) == {(FROM_WEST, t) for t in forbidden}
    assert _turns(net) <= _turns(plain)
    got = {(tuple(r[:3]), tuple(r[3:6])) for r in net.restricted_turns.tolist()}
    assert got == {(FROM_WEST, t) for t in forbidden}
    theta = default_true_theta(net.feature_names)
    model, plain_model = RouteModel(net.mdp, theta), RouteModel(plain.mdp, theta)
    o = net.state_of(FROM_WEST)
    for target in forbidden:
        d = net.state_of(target)
        # without the restriction the most likely route takes the turn; with it, it detours
        direct = plain.mdp.check_states([plain.state_of(FROM_WEST), plain.state_of(target)], "s")
        assert np.array_equal(plain_model.most_likely_path(int(direct[0]), int(direct[1])), direct)
        route = model.most_likely_path(o, d)
        assert len(route) > 2 and route[0] == o and route[-1] == d
        assert not _uses(route, o, d)
        # samples never use it (and on the plain map they do)
        samples = model.sample_paths(o, d, 200, random_state=1)
        assert not any(_uses(p, o, d) for p in samples)
        assert all(int(p[0]) == o and int(p[-1]) == d for p in samples)
        plain_samples = plain_model.sample_paths(int(direct[0]), int(direct[1]), 200, random_state=1)
        assert any(len(p) == 2 for p in plain_samples)
        # a path using it has no likelihood; a partial path using it has no destination posterior
        with pytest.raises(InvalidPathError):
            model.log_likelihood([np.array([o, d])])
        with pytest.raises(InvalidPathError):
            model.destination_posterior([o, d], [d])
        assert np.isfinite(plain_model.log_likelihood([direct]))
        post = plain_model.destination_posterior(direct, np.arange(plain.n_states))
        assert np.isclose(post.sum(), 1.0)


@pytest.mark.parametrize("value", list(KINDS))
def test_each_kind_forbids_exactly_its_turns(value: str, tmp_path: Path, plain: RoadNetwork) -> None:
    to_way, forbidden = KINDS[value]
    ext = crossroads()
    ext.restriction(900, W_ARM, CENTER, to_way, restriction=value)
    net = _load(ext, tmp_path)
    assert net.n_states == plain.n_states
    _check_forbidden(net, plain, forbidden)
    assert set(net.restricted_turns[:, 6].tolist()) == {900}


@pytest.mark.parametrize(
    ("tags", "applies"),
    [
        ({"restriction": "no_left_turn", "except": "motorcar"}, False),
        ({"restriction": "no_left_turn", "except": "psv;motor_vehicle"}, False),
        ({"restriction": "no_left_turn", "except": "bus;bicycle"}, True),
        ({"restriction__hgv": "no_left_turn"}, False),
        ({"restriction__bus": "no_left_turn"}, False),
        ({"restriction__motorcar": "no_left_turn"}, True),
        ({"restriction__motorcar": "no_left_turn", "except": "motorcar"}, True),  # explicit for cars wins
        ({"restriction": "no_left_turn", "restriction__hgv": "only_straight_on"}, True),
        ({"restriction": "no_left_turn", "hour_on": "07:00", "hour_off": "09:00"}, False),  # timed: static map
        ({"restriction__conditional": "no_left_turn @ (Mo-Fr 07:00-09:00)"}, False),
    ],
)
def test_car_profile(tags: dict[str, str], applies: bool, tmp_path: Path, plain: RoadNetwork) -> None:
    ext = crossroads()
    ext.restriction(901, W_ARM, CENTER, N_ARM, **tags)
    net = _load(ext, tmp_path)
    _check_forbidden(net, plain, {LEFT} if applies else set())


@pytest.mark.parametrize("suffix", [".osm", ".osm.gz", ".osm.bz2", ".xml", ".osm.pbf"])
def test_every_format_reads_the_same_restrictions(suffix: str, tmp_path: Path) -> None:
    ext = crossroads()
    ext.restriction(902, W_ARM, CENTER, N_ARM, restriction="no_left_turn")
    ext.restriction(903, S_ARM, CENTER, E_ARM, restriction="only_right_turn")
    ref = _load(ext, tmp_path, "ref.osm.pbf")
    net = _load(ext, tmp_path, "map" + suffix)
    assert net.fingerprint == ref.fingerprint
    assert np.array_equal(net.restricted_turns, ref.restricted_turns)
    assert len(ref.restricted_turns) == 1 + 3


def test_fingerprint_changes_with_the_restrictions_and_survives_saving(tmp_path: Path, plain: RoadNetwork) -> None:
    ext = crossroads()
    ext.restriction(904, W_ARM, CENTER, N_ARM, restriction="no_left_turn")
    left = _load(ext, tmp_path, "left.osm.pbf")
    ext.restriction(904, W_ARM, CENTER, S_ARM, restriction="no_right_turn")
    right = _load(ext, tmp_path, "right.osm.pbf")
    assert len({plain.fingerprint, left.fingerprint, right.fingerprint}) == 3
    left.save(tmp_path / "left.npz")
    back = RoadNetwork.load(tmp_path / "left.npz")
    assert back.fingerprint == left.fingerprint
    assert np.array_equal(back.restricted_turns, left.restricted_turns)
    # GraphML keeps the restrictions too
    G = load_graph(tmp_path / "left.osm.pbf")
    save_graph(G, tmp_path / "left.graphml")
    assert RoadNetwork.load(tmp_path / "left.graphml").fingerprint == left.fingerprint


def test_a_restriction_at_a_simplified_away_node_is_moot(tmp_path: Path, plain: RoadNetwork) -> None:
    ext = crossroads()
    refs, tags = ext.ways.pop(RING_SW)  # 101-100-110, split at the corner 100 (not a junction)
    ext.ways[50], ext.ways[51] = (refs[:2], tags), (refs[1:], tags)
    ext.restriction(905, 50, 100, 51, restriction="no_straight_on")
    ext.restriction(906, 50, 100, 50, restriction="no_u_turn")
    G = load_graph(write(ext, tmp_path / "map.osm.pbf"))
    assert G.graph["turn_restriction_counts"] == {"moot": 2}
    assert G.graph["turn_restrictions"] == []
    assert RoadNetwork.from_graph(G).fingerprint == plain.fingerprint


def test_restrictions_that_cannot_apply_are_counted_not_guessed(tmp_path: Path, plain: RoadNetwork) -> None:
    ext = crossroads()
    ext.restriction(907, W_ARM, CENTER, 20, restriction="no_left_turn")  # to a footway: not in the network
    ext.restriction(908, W_ARM, NORTH, N_ARM, restriction="no_left_turn")  # via node not on the from way
    ext.restriction(909, W_ARM, CENTER, N_ARM, restriction="no_flying")  # unknown value
    no_via = [("w", W_ARM, "from"), ("w", N_ARM, "to")]
    ext.relations[910] = (no_via, {"type": "restriction", "restriction": "no_left_turn"})
    # from way passing through the via node in both directions: which way is "from" is ambiguous
    ext.ways[52] = ([WEST, CENTER, EAST], {"highway": "residential"})
    ext.restriction(911, 52, CENTER, N_ARM, restriction="no_left_turn")
    G = load_graph(write(ext, tmp_path / "map.osm.pbf"))
    counts = G.graph["turn_restriction_counts"]
    assert counts == {
        "way_not_in_network": 1, "no_such_turn": 1, "restriction_unknown_value": 1, "restriction_malformed": 1,
        "ambiguous": 1,
    }
    assert G.graph["turn_restrictions"] == []


def test_a_dead_end_whose_u_turn_is_forbidden_leaves_the_routable_part(tmp_path: Path) -> None:
    ext = crossroads(stub=True)
    with_stub = _load(ext, tmp_path, "stub.osm.pbf")
    assert with_stub.state_of(_seg(CENTER, STUB_END)) >= 0
    ext.restriction(912, STUB, STUB_END, STUB, restriction="no_u_turn")
    net = _load(ext, tmp_path, "stub_restricted.osm.pbf")
    assert net.restricted_turns[:, :6].tolist() == [[CENTER, STUB_END, 0, STUB_END, CENTER, 0]]
    for seg in (_seg(CENTER, STUB_END), _seg(STUB_END, CENTER)):  # a trap, and unreachable
        with pytest.raises(UnknownSegmentError, match="outside the routable"):
            net.state_of(seg)
    assert net.n_states == with_stub.n_states - 2
    from scipy.sparse.csgraph import connected_components

    assert connected_components(net.mdp.adjacency(), directed=True, connection="strong")[0] == 1


def test_via_way_restrictions_apply_where_exact_and_are_skipped_elsewhere(tmp_path: Path) -> None:
    """West arm -> east arm -> south-east ring. With the east arm one-way and its only exit the
    south-east ring, every route over west -> east continues that way: removing the first
    turn is exact. With a two-way east arm it is not, and the restriction is left out."""
    exact = crossroads(one_way_east=True)
    plain = _load(exact, tmp_path, "plain_one_way.osm.pbf")
    exact.restriction(913, W_ARM, [E_ARM], RING_SE, restriction="no_right_turn")
    net = _load(exact, tmp_path, "exact.osm.pbf")
    assert _turns(plain) - _turns(net) == {(FROM_WEST, STRAIGHT)}
    model = RouteModel(net.mdp, default_true_theta(net.feature_names))
    o, ring_se = net.state_of(FROM_WEST), net.state_of(_seg(EAST, SOUTH))
    straight = net.state_of(STRAIGHT)
    assert not _uses(model.most_likely_path(o, ring_se), o, straight)
    assert not any(_uses(p, o, straight) for p in model.sample_paths(o, ring_se, 100, random_state=2))
    with pytest.raises(InvalidPathError):
        model.log_likelihood([np.array([o, straight, ring_se])])

    loose = crossroads()
    loose.restriction(914, W_ARM, [E_ARM], RING_SE, restriction="no_right_turn")
    G = load_graph(write(loose, tmp_path / "loose.osm.pbf"))
    assert G.graph["turn_restriction_counts"] == {"applied_via_way": 1}
    assert [c["segments"] for c in G.graph["turn_restrictions"]] == [
        [list(FROM_WEST), list(STRAIGHT), [EAST, SOUTH, 0]]
    ]
    net = RoadNetwork.from_graph(G)
    assert net.restricted_turns.shape == (0, 7)  # not exact: skipped (counted and logged)


def test_parse_restriction_members() -> None:
    ok = [("w", 1, "from"), ("n", 5, "via"), ("w", 2, "to")]
    r = parse_restriction(7, {"type": "restriction", "restriction": "no_left_turn"}, ok)
    assert r == TurnRestriction(7, "no_left_turn", (1,), (2,), via_node=5)
    assert parse_restriction(7, {"type": "multipolygon"}, ok) is None
    assert parse_restriction(7, {"type": "restriction:hgv", "restriction:hgv": "no_left_turn"}, ok) == "other_vehicles"
    two_from = [("w", 1, "from"), ("w", 3, "from"), ("n", 5, "via"), ("w", 2, "to")]
    assert parse_restriction(7, {"type": "restriction", "restriction": "no_left_turn"}, two_from) == "malformed"
    entry = parse_restriction(7, {"type": "restriction", "restriction": "no_entry"}, two_from)
    assert isinstance(entry, TurnRestriction) and entry.from_ways == (1, 3)
    mixed_via = [("w", 1, "from"), ("n", 5, "via"), ("w", 4, "via"), ("w", 2, "to")]
    assert parse_restriction(7, {"type": "restriction", "restriction": "no_left_turn"}, mixed_via) == "malformed"


def test_forbidden_transitions_on_a_chain() -> None:
    # states 0 -> 1 -> 2 and 3 -> 1, 1 -> 4: the sequence 0, 1, 2 is exact only if 1 is entered from 0 alone
    src, dst = np.array([0, 1, 3, 1]), np.array([1, 2, 1, 4])
    mask, _ = forbidden_transitions([(1, [0, 1, 2])], src, dst)
    assert not mask.any()
    mask, rel = forbidden_transitions([(1, [0, 1, 2])], src[[0, 1, 3]], dst[[0, 1, 3]])
    assert mask.tolist() == [False, True, False] and rel.tolist() == [-1, 1, -1]
