"""Max margin planning: the projection onto positive costs, and planning the demonstrated routes back."""

from __future__ import annotations

import numpy as np
import pytest

from maxent_irl.baselines import shortest_path
from maxent_irl.exceptions import InvalidParameterError, InvalidPathError
from maxent_irl.max_margin import MaxMarginPlanning, MaxMarginStep, project_onto_positive_costs
from maxent_irl.metrics import route_matches
from maxent_irl.synthetic import grid_route_mdp


def test_projection_is_the_nearest_feasible_point() -> None:
    A = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    interior = np.array([1.0, 1.0])
    x = project_onto_positive_costs(np.array([-1.0, 0.5]), A, 0.1, interior)
    assert np.all(A @ x >= 0.1 - 1e-9)
    np.testing.assert_allclose(x, [0.1, 0.5], atol=1e-4)
    w = np.array([2.0, 3.0])
    assert project_onto_positive_costs(w, A, 0.1, interior) is w  # feasible: unchanged


def _demonstrations(seed: int, n: int) -> tuple:
    """Shortest paths under a known positive cost on a grid: drivers MMP can imitate exactly."""
    mdp = grid_route_mdp(7, seed=seed)
    true_w = np.array([60.0, 25.0, 8.0, 3.0, 30.0, 1.0])  # s per km minor / major, left, right, u-turn, segment
    cost = mdp.features @ true_w
    rng = np.random.default_rng(seed)
    o, d = rng.integers(0, mdp.n_states, n), rng.integers(0, mdp.n_states, n)
    keep = o != d
    paths = [shortest_path(mdp, cost, int(a), int(b)) for a, b in zip(o[keep], d[keep], strict=True)]
    length_m = np.zeros(mdp.n_states)
    length_m[mdp.dst] = 1000 * mdp.features[:, :2].sum(axis=1)  # km of the entered segment
    return mdp, [p for p in paths if p.size > 2], length_m


def test_learns_costs_that_plan_the_demonstrated_routes() -> None:
    mdp, paths, length_m = _demonstrations(seed=3, n=160)
    train, test = paths[:100], paths[100:]
    steps: list[MaxMarginStep] = []
    mmp = MaxMarginPlanning(lams=(1e-3,), n_iter=60, batch=25, eps=1e-3, callback=steps.append).fit(
        mdp, train, length_m)
    assert len(steps) == 60 and steps[-1].step == 60 and steps[0].lam == 1e-3
    assert mmp.costs_.min() >= 1e-3 * (1 - 1e-9)  # every plan is a shortest path on positive costs
    learned = route_matches(mmp.most_likely_path, test, length_m)
    start = route_matches(lambda o, d: shortest_path(mdp, mdp.features[:, -1], o, d), test, length_m)  # fewest turns
    assert learned.mean() > 0.9
    assert learned.mean() > start.mean() + 0.1  # it learned something beyond its starting point
    # the hinge loss of the averaged iterate is below that of the start
    assert np.mean([s.hinge for s in steps[-10:]]) < steps[0].hinge


def test_lambda_is_chosen_on_validation_trips() -> None:
    mdp, paths, length_m = _demonstrations(seed=4, n=80)
    mmp = MaxMarginPlanning(lams=(1e-3, 1e3), n_iter=30, batch=20).fit(mdp, paths, length_m)
    assert set(mmp.validation_) == {1e-3, 1e3}
    assert mmp.lam_ == max(mmp.validation_, key=mmp.validation_.__getitem__)
    assert mmp.validation_[1e-3] > mmp.validation_[1e3]  # a huge lambda shrinks every weight to the bound


def test_bad_input_is_refused() -> None:
    mdp, paths, length_m = _demonstrations(seed=5, n=20)
    with pytest.raises(InvalidParameterError, match="lams"):
        MaxMarginPlanning(lams=(-1.0,)).fit(mdp, paths, length_m)
    with pytest.raises(InvalidParameterError, match="state_length_m"):
        MaxMarginPlanning(lams=(1e-3,), n_iter=2).fit(mdp, paths, length_m[:-1])
    with pytest.raises(InvalidPathError):
        MaxMarginPlanning(lams=(1e-3,), n_iter=2).fit(mdp, [np.array([0, 0])], length_m)
    free = mdp.features.copy()
    free[0] = 0.0  # a transition no weight can make cost anything
    from maxent_irl import RouteMDP

    bad = RouteMDP(mdp.n_states, mdp.src, mdp.dst, free, mdp.feature_names)
    with pytest.raises(InvalidParameterError, match="positive"):
        MaxMarginPlanning(lams=(1e-3,), n_iter=2).fit(bad, paths, length_m)
