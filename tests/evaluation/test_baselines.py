"""Baselines: Ziebart's Fig. 2 label-bias example, the action model's fit, shortest paths."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from evaluation.baselines import ActionBasedModel, ShortestPathBaseline
from maxent_irl import RouteMDP, RouteModel
from maxent_irl.exceptions import InvalidParameterError
from maxent_irl.objective import make_trip_set
from maxent_irl.synthetic import grid_route_mdp


def fig2_mdp() -> RouteMDP:
    """A -> B with three equal-reward paths; paths 1 and 2 share their first action (Ziebart Fig. 2)."""
    edges = [(0, 1), (1, 2), (1, 3), (2, 5), (3, 5), (0, 4), (4, 5)]
    src, dst = np.array(edges).T
    cost = np.array([[1.0], [1.0], [1.0], [1.0], [1.0], [1.5], [1.5]])  # every path costs 3
    return RouteMDP(6, src, dst, cost, ["cost"])


def test_fig2_maxent_is_uniform_action_model_is_label_biased() -> None:
    mdp = fig2_mdp()
    paths = [np.array([0, 1, 2, 5]), np.array([0, 1, 3, 5]), np.array([0, 4, 5])]
    maxent = np.exp(RouteModel(mdp, np.array([-1.0])).path_log_prob(paths))
    np.testing.assert_allclose(maxent, [1 / 3, 1 / 3, 1 / 3])
    action = ActionBasedModel().fit(mdp, paths)
    np.testing.assert_allclose(np.exp(action.path_log_prob(paths)), [0.25, 0.25, 0.5], atol=1e-9)


def test_action_model_fit_improves_likelihood_and_predicts_routes() -> None:
    mdp = grid_route_mdp(6, seed=8)
    theta = np.array([-9.0, -6.0, -1.0, -0.6, -3.0, -0.7])
    rng = np.random.default_rng(0)
    o, d = rng.integers(0, mdp.n_states, 150), rng.integers(0, mdp.n_states, 150)
    paths = RouteModel(mdp, theta).sample_trips(o[o != d], d[o != d], random_state=0)
    start = ActionBasedModel(max_iter=1).fit(mdp, paths)
    fitted = ActionBasedModel(max_iter=100).fit(mdp, paths)
    assert fitted.log_likelihood(paths) > start.log_likelihood(paths)
    assert np.all(fitted.path_log_prob(paths) <= 1e-12)
    p = paths[0]
    for route in (fitted.most_likely_path(p[0], p[-1]), fitted.lowest_cost_path(p[0], p[-1])):
        assert route[0] == p[0] and route[-1] == p[-1]
        mdp.transition_indices(route)  # a connected path


def test_action_model_fit_stops_at_the_least_cost_when_label_bias_wants_a_bonus() -> None:
    """Fig. 2 with one feature, a count per transition: each path is driven once, so the branch to
    paths 1 and 2 (three transitions each) is taken twice as often as path 3 (two), and the locally
    normalized model wants a per-transition *bonus* of log 2. Costs must stay positive, so the
    constrained optimum is the least cost."""
    mdp = fig2_mdp()
    mdp = RouteMDP(6, mdp.src, mdp.dst, np.ones((mdp.n_transitions, 1)), ["segment"])
    paths = [np.array([0, 1, 2, 5]), np.array([0, 1, 3, 5]), np.array([0, 4, 5])]
    fitted = ActionBasedModel(min_cost=1e-3).fit(mdp, paths)
    assert fitted.theta_[0] == pytest.approx(-1e-3, abs=1e-8)
    assert fitted.n_at_min_cost_ == mdp.n_transitions
    assert "success" in fitted.message_.lower()
    # the likelihood rises toward the bonus, so no feasible theta does better
    for th in (-2e-3, -1e-2, -1.0):
        other = ActionBasedModel()
        other.theta_, other.mdp_ = np.array([th]), mdp
        assert other.log_likelihood(paths) < fitted.log_likelihood(paths)


def _grid_trips(segment: float) -> tuple[RouteMDP, list[np.ndarray]]:
    mdp = grid_route_mdp(6, seed=8)
    theta = np.array([-9.0, -6.0, -1.0, -0.6, -3.0, segment])
    rng = np.random.default_rng(3)
    o, d = rng.integers(0, mdp.n_states, 200), rng.integers(0, mdp.n_states, 200)
    paths = RouteModel(mdp, theta).sample_trips(o[o != d], d[o != d], random_state=4)
    # the action model ends a trip at its first arrival (it has no stop action): first-passage trips only
    return mdp, [p for p in paths if not np.any(p[:-1] == p[-1])]


def test_action_model_fit_label_bias_is_a_per_transition_bonus() -> None:
    """Drivers pay 0.05 per transition; the action model fits a per-transition *bonus* (label bias),
    compensated by dearer km, and reaches the same optimum from another start (exact, scaled gradient)."""
    mdp, paths = _grid_trips(-0.05)
    fitted = ActionBasedModel().fit(mdp, paths)
    assert fitted.converged_
    assert fitted.theta_[-1] > 0
    assert np.min(-(mdp.features @ fitted.theta_)) >= 1e-3 * (1 - 1e-6)
    other = ActionBasedModel(theta0=np.array([-5.0, -5.0, -2.0, -2.0, -2.0, -0.5])).fit(mdp, paths)
    assert other.log_likelihood(paths) == pytest.approx(fitted.log_likelihood(paths), rel=1e-6)


def test_action_model_fit_with_a_binding_bound_and_cutting_planes(monkeypatch: pytest.MonkeyPatch) -> None:
    """With min_cost = 0.5 the bound binds on the grid. Given a single constraint row, the fit must
    add the violated transitions (cutting planes) and reach the same constrained optimum."""
    from evaluation import baselines

    mdp, paths = _grid_trips(-0.05)
    full = ActionBasedModel(min_cost=0.5).fit(mdp, paths)
    cost = -(mdp.features @ full.theta_)
    assert full.converged_ and full.n_at_min_cost_ > 0
    assert cost.min() >= 0.5 * (1 - 1e-6)
    assert full.log_likelihood(paths) < ActionBasedModel().fit(mdp, paths).log_likelihood(paths)

    monkeypatch.setattr(baselines, "positive_cost_rows", lambda f: f[:1])
    cut = ActionBasedModel(min_cost=0.5).fit(mdp, paths)
    assert cut.converged_
    assert np.min(-(mdp.features @ cut.theta_)) >= 0.5 * (1 - 1e-6)
    assert cut.log_likelihood(paths) == pytest.approx(full.log_likelihood(paths), rel=1e-6)


def test_action_model_fit_rejects_what_cannot_have_positive_costs() -> None:
    mdp = fig2_mdp()
    paths = [np.array([0, 4, 5])]
    with pytest.raises(InvalidParameterError, match="min_cost"):
        ActionBasedModel(min_cost=0.0).fit(mdp, paths)
    feats = mdp.features.copy()
    feats[3] = 0.0
    with pytest.raises(InvalidParameterError, match="no features"):
        ActionBasedModel().fit(RouteMDP(6, mdp.src, mdp.dst, feats, ["cost"]), paths)
    start = ActionBasedModel(theta0=np.array([1.0]), max_iter=0).fit(mdp, paths)  # infeasible, no iterations
    assert not start.converged_


def test_shortest_path_baseline() -> None:
    mdp = fig2_mdp()
    sp = ShortestPathBaseline(mdp.features[:, 0]).fit(mdp, [[0, 4, 5]])
    assert sp.most_likely_path(0, 5).tolist() in ([0, 1, 2, 5], [0, 1, 3, 5], [0, 4, 5])
    costs = mdp.features[:, 0].copy()
    costs[5] = 0.1
    assert ShortestPathBaseline(costs).fit(mdp, [[0, 4, 5]]).most_likely_path(0, 5).tolist() == [0, 4, 5]
    with pytest.raises(ValueError, match="nonnegative"):
        ShortestPathBaseline(-costs).fit(mdp, [[0, 4, 5]])


def _reference_log_likelihood(mdp: RouteMDP, theta: np.ndarray, paths: list[np.ndarray]) -> float:
    """The action model's log-likelihood one destination and one state at a time (plain loops)."""
    from scipy.sparse import csgraph, csr_matrix

    r = mdp.features @ theta
    rev = csr_matrix((-r, (mdp.dst, mdp.src)), shape=(mdp.n_states, mdp.n_states))
    ll = 0.0
    for path in paths:
        dist = csgraph.dijkstra(rev, directed=True, indices=int(path[-1]))
        for s, nxt in itertools.pairwise(path):
            idx, succ = mdp.successors(int(s))
            q = r[idx] - dist[succ]
            chosen = q[succ == nxt][0]
            ll += chosen - np.log(np.sum(np.exp(q[np.isfinite(q)])))
    return ll


def test_action_model_batched_likelihood_and_gradient() -> None:
    """The batched likelihood (blocks of destinations, subtree sums) equals plain loops; its gradient
    equals central finite differences (V* is piecewise linear: generic continuous features avoid ties)."""
    from evaluation import baselines

    mdp = grid_route_mdp(7, seed=3)
    theta = np.array([-9.0, -6.0, -1.0, -0.6, -3.0, -0.7])
    rng = np.random.default_rng(1)
    o, d = rng.integers(0, mdp.n_states, 120), rng.integers(0, mdp.n_states, 120)
    paths = RouteModel(mdp, theta).sample_trips(o[o != d], d[o != d], random_state=2)
    model = ActionBasedModel()
    trips = make_trip_set(mdp, paths)
    old_block = baselines._DEST_BLOCK
    try:
        baselines._DEST_BLOCK = 7  # several blocks, the last one partial
        ll, grad = model._ll_grad(mdp, trips, theta)
    finally:
        baselines._DEST_BLOCK = old_block
    assert ll == pytest.approx(_reference_log_likelihood(mdp, theta, paths), rel=1e-10)
    h = 1e-6
    fd = [(model._ll_grad(mdp, trips, theta + h * e)[0] - model._ll_grad(mdp, trips, theta - h * e)[0]) / (2 * h)
          for e in np.eye(theta.size)]
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-5)
    model.theta_, model.mdp_ = theta, mdp  # as if fitted: path_log_prob uses the same kernels
    assert np.sum(model.path_log_prob(paths)) == pytest.approx(ll, rel=1e-12)


def test_subtree_sums_match_a_walk_up_the_forest() -> None:
    from evaluation.baselines import _subtree_sums

    rng = np.random.default_rng(4)
    m = 300
    parent = np.array([-1 if i == 0 or rng.random() < 0.05 else rng.integers(0, i) for i in range(m)])
    values = rng.normal(size=m)
    expected = np.zeros(m)
    for i in range(m):  # add each value to the node and all its ancestors
        j = i
        while j >= 0:
            expected[j] += values[i]
            j = parent[j]
    np.testing.assert_allclose(_subtree_sums(values, parent), expected, rtol=1e-12, atol=1e-12)


def test_action_model_with_a_dead_end_branch() -> None:
    """A branch from which the destination cannot be reached gets probability 0, and the
    gradient stays finite (no -inf + inf from states whose every action is hopeless)."""
    edges = [(0, 1), (1, 2), (0, 3), (3, 4), (1, 0)]
    src, dst = np.array(edges).T
    feats = np.array([[1.0, 0.2], [1.2, 0.1], [0.7, 0.3], [0.5, 0.5], [0.9, 0.4]])
    mdp = RouteMDP(5, src, dst, feats, ["a", "b"])
    paths = [np.array([0, 1, 2]), np.array([0, 1, 0, 1, 2])]
    theta = np.array([-1.3, -0.4])
    model = ActionBasedModel()
    trips = make_trip_set(mdp, paths)
    ll, grad = model._ll_grad(mdp, trips, theta)
    assert ll == pytest.approx(_reference_log_likelihood(mdp, theta, paths), rel=1e-12)
    assert np.all(np.isfinite(grad))
    h = 1e-6
    fd = [(model._ll_grad(mdp, trips, theta + h * e)[0] - model._ll_grad(mdp, trips, theta - h * e)[0]) / (2 * h)
          for e in np.eye(2)]
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)
    fitted = ActionBasedModel(max_iter=50).fit(mdp, paths)
    assert np.all(np.isfinite(fitted.theta_))
