"""Destination error in km: the baselines do what they say, and the paired numbers add up."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.destination_error import LAST, METHODS, NEAREST, POSTERIOR, PRIOR, NearestTrip, destination_error
from maxent_irl import RouteModel
from maxent_irl.roads import RoadNetwork, default_true_theta, simulate_trips
from maxent_irl.roads.destinations import DestinationPriorParams, partial_path


def test_the_nearest_training_trip_starts_near_the_origin_and_passes_here() -> None:
    xy = np.array([[0, 0], [100, 0], [200, 0], [0, 500], [100, 500], [200, 500], [1000, 1000]], dtype=float)
    paths = [np.array([0, 1, 2]), np.array([3, 4, 5]), np.array([0, 6])]
    nearest = NearestTrip(xy, paths)
    # started at state 0, now at state 1: the first trip (the third one started there too, but never came by)
    assert np.array_equal(nearest.guesses(xy[0], xy[1], 1), xy[[2]])
    assert np.array_equal(nearest.guesses(xy[3], xy[4], 3), xy[[5, 2, 6]])


@pytest.fixture(scope="module")
def result(monaco: RoadNetwork) -> tuple[dict, list[np.ndarray], RoadNetwork]:
    theta = default_true_theta(monaco.feature_names)
    sims = simulate_trips(monaco, theta, n_trips=90, seed=4)
    paths = [s.path for s in sims if len(s.path) >= 2]
    train, test = paths[:60], paths[60:]
    params = DestinationPriorParams(bandwidths_m=[100.0], weights=[0.9], floor=0.1, gamma=1.0)
    return destination_error(monaco, RouteModel(monaco.mdp, theta), train, test, params=params), test, monaco


def test_the_last_point_error_is_the_distance_from_the_last_segment_seen(result) -> None:
    res, test, net = result
    xy = net.projection.forward(net.segment_midpoints)
    expected = np.mean([np.hypot(*(xy[partial_path(p, 0.4, net.segment_length_m)[-1]] - xy[p[-1]])) / 1000
                        for p in test])
    assert res["by_fraction"]["40%"][LAST]["mean_km"] == pytest.approx(expected)
    # the end comes closer as more of the trip is seen
    assert res["by_fraction"]["80%"][LAST]["mean_km"] < res["by_fraction"]["20%"][LAST]["mean_km"]


def test_paired_differences_are_differences_of_the_means(result) -> None:
    res, test, _ = result
    assert res["n_trips"] == len(test) and res["methods"] == list(METHODS)
    for row in res["by_fraction"].values():
        for m in (LAST, PRIOR, NEAREST):
            d = row["posterior_minus"][m]["error_km"]
            assert d["diff"] == pytest.approx(row[POSTERIOR]["mean_km"] - row[m]["mean_km"])
            assert d["ci95_low"] <= d["diff"] <= d["ci95_high"]
            assert 0.0 <= row[m]["top5_within_500m"] <= 1.0
    # the prior ignores the observed part: the same answer at every fraction
    assert len({round(r[PRIOR]["mean_km"], 12) for r in res["by_fraction"].values()}) == 1
