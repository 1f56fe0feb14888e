"""Log-likelihood and gradient: brute force, finite differences and Ziebart's Algorithm 1."""

from __future__ import annotations

import numpy as np
import pytest

from maxent_irl import InvalidPathError, RouteModel
from maxent_irl.objective import log_likelihood_and_gradient, make_trip_set
from maxent_irl.reference import algorithm1_log_likelihood_and_gradient
from maxent_irl.soft_values import transition_log_weights
from maxent_irl.synthetic import grid_route_mdp
from tests.maxent_irl.helpers import brute_force, cyclic_mdp


def _trips(mdp, theta, n, seed):
    rng = np.random.default_rng(seed)
    o = rng.integers(0, mdp.n_states, n)
    d = rng.integers(0, mdp.n_states, n)
    keep = o != d
    return RouteModel(mdp, theta).sample_trips(o[keep], d[keep], random_state=seed)


def test_gradient_matches_brute_force_feature_expectations() -> None:
    mdp = cyclic_mdp(seed=2)
    theta = np.array([-1.5, -2.5, -1.5])
    paths = _trips(mdp, theta, 30, seed=1)
    trips = make_trip_set(mdp, paths)
    logw = transition_log_weights(mdp.features, theta)
    ll, grad = log_likelihood_and_gradient(mdp, trips, logw)
    ll_ref, expected = 0.0, np.zeros(3)
    for p in paths:
        _, _, Z, E = brute_force(mdp, logw, int(p[0]), int(p[-1]))
        ll_ref += logw[mdp.transition_indices(p)].sum() - np.log(Z)
        expected += mdp.features.T @ E
    empirical = sum(mdp.path_features(p) for p in paths)
    assert ll == pytest.approx(ll_ref, abs=1e-9)
    np.testing.assert_allclose(grad, empirical - expected, atol=1e-9)


@pytest.mark.parametrize("alpha", [1.0, 0.7])
def test_gradient_matches_finite_differences(alpha: float) -> None:
    mdp = grid_route_mdp(6, u_turns=True, seed=1)
    theta = np.array([-9.0, -6.0, -1.0, -0.6, -3.0, -0.7])
    paths = _trips(mdp, theta, 80, seed=2)
    trips = make_trip_set(mdp, paths)

    def ll_at(th: np.ndarray) -> tuple[float, np.ndarray]:
        return log_likelihood_and_gradient(mdp, trips, transition_log_weights(mdp.features, th, alpha), alpha)

    _, grad = ll_at(theta)
    eps = 1e-5
    for i in range(theta.size):
        step = np.zeros_like(theta)
        step[i] = eps
        fd = (ll_at(theta + step)[0] - ll_at(theta - step)[0]) / (2 * eps)
        assert fd == pytest.approx(grad[i], rel=1e-6, abs=1e-6)


def test_fast_passes_agree_with_algorithm1() -> None:
    mdp = grid_route_mdp(8, seed=3)
    theta = np.array([-9.0, -6.0, -1.0, -0.6, -3.0, -0.7])
    paths = _trips(mdp, theta, 60, seed=3)
    trips = make_trip_set(mdp, paths)
    logw = transition_log_weights(mdp.features, theta)
    ll, g = log_likelihood_and_gradient(mdp, trips, logw)
    ll1, g1 = algorithm1_log_likelihood_and_gradient(mdp, trips, logw, n_iter=2000)
    assert ll == pytest.approx(ll1, rel=1e-9)
    np.testing.assert_allclose(g, g1, rtol=1e-7, atol=1e-7)


def test_trips_that_pass_their_destination_are_trips() -> None:
    """Real drivers pass their final segment before they stop (around the block to park): such a path is scored by
    the model like any other, with the same probability as by enumeration."""
    mdp = cyclic_mdp()
    model = RouteModel(mdp, -np.full(mdp.n_features, 1.5))
    path = [0, 1, 2, 0, 1, 2]
    trips = make_trip_set(mdp, [path])
    assert trips.n_trips == 1 and trips.destinations.tolist() == [2]
    paths, weights, Z, _ = brute_force(mdp, model.logw, 0, 2, max_len=28)
    mass = sum(w for p, w in zip(paths, weights, strict=True) if p.tolist() == path)
    assert model.path_log_prob([path])[0] == pytest.approx(np.log(mass / Z), abs=1e-9)
    with pytest.raises(InvalidPathError, match="path 1"):
        make_trip_set(mdp, [[0, 1], [0, 4]])
    with pytest.raises(InvalidPathError, match="no paths"):
        make_trip_set(mdp, [])
