"""Table 1 / Fig. 5 metrics on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.metrics import (
    destination_accuracy,
    paired_difference,
    partial_path,
    route_match_fraction,
    route_matches,
    table1_summary,
)
from maxent_irl.exceptions import InvalidParameterError, UnreachableDestinationError


def test_route_match_and_table1_summary() -> None:
    length = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    assert route_match_fraction([0, 1, 2], [0, 1, 2], length) == 1.0
    assert route_match_fraction([0, 4, 2], [0, 1, 2], length) == pytest.approx(4 / 6)
    paths = [np.array([0, 1, 2]), np.array([0, 3, 2])]
    seen: list[int] = []
    match = route_matches(lambda o, d: np.array([0, 1, 2]), paths, length, callback=seen.append)
    np.testing.assert_allclose(match, [1.0, 4 / 8])
    assert seen == [0, 1]
    row = table1_summary(match, np.array([-1.0, -5.0]))
    assert row == {"matching": pytest.approx(0.75), "match90": 0.5, "log_prob": -3.0, "n_trips": 2}
    assert table1_summary(np.array([0.2, 0.3, 1.0]), np.array([-1.0, -2.0, -9.0]))["log_prob"] == -4.0  # a mean
    assert table1_summary(np.array([0.9 - 1e-13]))["match90"] == 1.0  # 90 % up to rounding counts
    assert table1_summary(match)["log_prob"] is None
    with pytest.raises(InvalidParameterError):
        route_matches(lambda o, d: np.array([o, d]), [], length)
    with pytest.raises(InvalidParameterError):
        table1_summary(np.array([]))
    with pytest.raises(InvalidParameterError, match="log_prob"):
        table1_summary(match, np.array([-1.0]))


def test_paired_difference() -> None:
    d = paired_difference(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 1.0, 2.0, 3.0]))
    assert d == {"diff": 1.0, "ci95_low": 1.0, "ci95_high": 1.0}  # the same gain on every trip: no doubt
    rng = np.random.default_rng(0)
    a = rng.normal(size=400)
    d = paired_difference(a + 0.1, a)  # trips vary a lot, the models by a constant: pairing sees it
    assert d["ci95_low"] == pytest.approx(0.1) and d["ci95_high"] == pytest.approx(0.1)
    d = paired_difference(np.array([3.0, 1.0, 2.0, 6.0]), np.zeros(4))  # mean 3, sample variance 14/3
    half = 1.96 * np.sqrt(14 / 3) / 2
    assert d["diff"] == 3.0
    assert d["ci95_low"] == pytest.approx(3 - half, rel=1e-12) and d["ci95_high"] == pytest.approx(3 + half, rel=1e-12)
    for a_, b_ in ((np.ones(3), np.ones(4)), (np.array([]), np.array([])), (np.ones((2, 2)), np.ones((2, 2)))):
        with pytest.raises(InvalidParameterError):
            paired_difference(a_, b_)


def test_partial_path_and_destination_accuracy() -> None:
    length = np.ones(10)
    path = np.arange(10)
    assert partial_path(path, 0.5, length).tolist() == [0, 1, 2, 3, 4]
    assert partial_path(path, 0.0, length).tolist() == [0]

    def oracle(partial, candidates, prior):
        p = np.ones(len(candidates))
        if len(partial) >= 5:
            p[candidates == 9] = 10.0
        return p / p.sum()

    acc = destination_accuracy(oracle, [path], np.array([3, 9, 7]), None, length, fractions=(0.2, 0.8), top_k=(1, 3))
    assert acc[1].tolist() == [0.0, 1.0]  # ties count against the truth
    assert acc[3].tolist() == [1.0, 1.0]


def test_destination_accuracy_by_region() -> None:
    """Regions sum their candidates' probabilities; a trip past every candidate is a miss."""
    length = np.ones(10)
    paths = [np.arange(10), np.arange(10)[::-1]]
    candidates = np.array([3, 9, 7, 0])
    region = np.array([0, 1, 1, 2])  # 9 and 7 form region 1

    def posterior(partial, cands, prior):
        if partial[0] == 9 and len(partial) >= 5:
            raise UnreachableDestinationError("every candidate passed")
        return np.array([0.4, 0.35, 0.25, 0.0])  # 3 is the likeliest destination, region 1 the likeliest region

    seen: list[int] = []
    acc = destination_accuracy(posterior, paths, candidates, None, length, fractions=(0.2, 0.8), top_k=(1, 2),
                               candidate_region=region, true_region=np.array([1, 0]), callback=seen.append)
    assert acc[1].tolist() == [0.5, 0.5]  # trip 0 (region 1: 0.6) right both times; trip 1 (region 0: 0.4) never
    assert acc[2].tolist() == [1.0, 0.5]  # trip 1 is second at 20 %, and a miss once it passed every candidate
    assert seen == [0, 1]
    # regions without candidates have probability 0: with 5 regions, the true region 3 ties with 2 and 4, and loses
    acc = destination_accuracy(posterior, paths[:1], candidates, None, length, fractions=(0.2,), top_k=(3,),
                               candidate_region=region, true_region=np.array([3]), n_regions=5)
    assert acc[3].tolist() == [0.0]
    acc = destination_accuracy(posterior, paths[:1], candidates, None, length, fractions=(0.2,), top_k=(4,),
                               candidate_region=region, true_region=np.array([3]))  # only regions 0-3 exist
    assert acc[4].tolist() == [1.0]
    bad = [dict(candidate_region=region),  # no true regions
           dict(candidate_region=region, true_region=np.array([1])),  # one per path
           dict(candidate_region=region[:2], true_region=np.array([1, 0])),  # one per candidate
           dict(true_region=np.array([1, 0])),  # true regions without candidate regions
           dict(candidate_region=region, true_region=np.array([1, 4]), n_regions=3)]  # region 4 of 3
    for kwargs in bad:
        with pytest.raises(InvalidParameterError):
            destination_accuracy(posterior, paths, candidates, None, length, **kwargs)
    with pytest.raises(InvalidParameterError, match="no paths"):
        destination_accuracy(posterior, [], candidates, None, length, candidate_region=region,
                             true_region=np.array([], dtype=int))


def test_most_likely_path_is_not_the_best_matching_prediction() -> None:
    """Why a baseline can tie or beat even the *true* model on Table 1's matching metric.

    From 0 to 9: route A (0-1-2-3-9) alone, or one of three routes B_i (0-4-c_i-8-9) that share
    most of their length. Each B_i is half as likely as A, but B carries 60 % of the mass. The most
    likely path (A) wins on "90 % match", yet predicting any B_i matches more distance on average:
    the matching metric rewards a route in a likely bundle, not the single most likely route.
    Exact expectations over every path, enumerated by brute force.
    """
    from maxent_irl import RouteMDP, RouteModel
    from tests.maxent_irl.helpers import brute_force

    edges = [(0, 1), (1, 2), (2, 3), (3, 9), (0, 4), (4, 5), (4, 6), (4, 7), (5, 8), (6, 8), (7, 8), (8, 9)]
    reward = np.full(len(edges), -1.0)
    reward[edges.index((0, 4))] -= np.log(2.0)  # each B_i: half the weight of A
    mdp = RouteMDP(10, np.array([e[0] for e in edges]), np.array([e[1] for e in edges]), reward[:, None], ["r"])
    model = RouteModel(mdp, np.array([1.0]))
    length = np.ones(10)

    paths, weights, Z, _ = brute_force(mdp, reward, 0, 9)
    prob = weights / Z
    assert len(paths) == 4 and prob.max() == pytest.approx(0.4)

    def expected(predicted: np.ndarray) -> tuple[float, float]:
        match = np.array([route_match_fraction(predicted, p, length) for p in paths])
        return float(prob @ match), float(prob @ (match >= 0.9))

    map_path = model.most_likely_path(0, 9)
    assert map_path.tolist() == [0, 1, 2, 3, 9]
    map_match, map_match90 = expected(map_path)
    bundle_match, bundle_match90 = expected(np.array([0, 4, 5, 8, 9]))
    assert map_match == pytest.approx(0.4 + 0.6 * 2 / 5)  # 0.64
    assert bundle_match == pytest.approx(0.4 * 2 / 5 + 0.2 + 0.4 * 4 / 5)  # 0.68
    assert bundle_match > map_match and map_match90 > bundle_match90
