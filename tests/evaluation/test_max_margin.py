"""Max margin planning: the projection onto positive costs, and planning the demonstrated routes back."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.baselines import shortest_path
from evaluation.max_margin import MaxMarginPlanning, project_onto_positive_costs
from evaluation.metrics import route_matches
from maxent_irl.base import FitProgress
from maxent_irl.exceptions import InvalidParameterError, InvalidPathError
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
    steps: list[FitProgress] = []
    mmp = MaxMarginPlanning(lams=(1e-3,), n_iter=60, batch=25, eps=1e-3, callback=steps.append).fit(
        mdp, train, length_m)
    assert len(steps) == 60 and steps[-1].iteration == 60 and steps[0].stage == "final" and steps[0].total == 60
    assert mmp.costs_.min() >= 1e-3 * (1 - 1e-9)  # every plan is a shortest path on positive costs
    learned = route_matches(mmp.most_likely_path, test, length_m)
    start = route_matches(lambda o, d: shortest_path(mdp, mdp.features[:, -1], o, d), test, length_m)  # fewest turns
    assert learned.mean() > 0.9
    assert learned.mean() > start.mean() + 0.1  # it learned something beyond its starting point
    # the hinge loss of the averaged iterate is below that of the start
    assert np.mean([s.objective for s in steps[-10:]]) < steps[0].objective


def test_lambda_is_chosen_on_validation_trips() -> None:
    mdp, paths, length_m = _demonstrations(seed=4, n=80)
    mmp = MaxMarginPlanning(lams=(1e-3, 1.0), n_iter=30, batch=20).fit(mdp, paths, length_m)
    assert set(mmp.validation_) == {1e-3, 1.0}
    assert mmp.lam_ == max(mmp.validation_, key=mmp.validation_.__getitem__)
    assert mmp.validation_[1e-3] > mmp.validation_[1.0]  # strong decay pulls the weights to the bound


@pytest.mark.parametrize("seed", [0, 1, 4])
def test_a_huge_lambda_stays_stable(seed: int) -> None:
    """A step beyond 1/lambda would overshoot the weight decay and diverge (it once hung in the projection)."""
    mdp, paths, length_m = _demonstrations(seed=seed, n=40)
    steps: list[FitProgress] = []
    mmp = MaxMarginPlanning(lams=(1e3,), n_iter=20, batch=10, callback=steps.append).fit(mdp, paths, length_m)
    assert max(np.abs(s.theta).max() for s in steps) < 10.0
    assert mmp.costs_.min() >= 1e-3 * (1 - 1e-9)


def test_hinge_and_averaging_follow_the_definition() -> None:
    """The first step's hinge is mean_i [c(y_i) - min_y (c(y) - missed km of y_i)] at the start, by enumeration of
    every path; the result is the mean of the second half of the iterates."""
    from maxent_irl.reference import enumerate_paths

    mdp_small = grid_route_mdp(3, seed=6)  # small enough to enumerate every path
    cost = mdp_small.features @ np.array([60.0, 25.0, 8.0, 3.0, 30.0, 1.0])
    pairs = [(0, 7), (2, 9), (5, 11), (10, 1)]
    paths = [shortest_path(mdp_small, cost, o, d) for o, d in pairs]
    length_m = np.zeros(mdp_small.n_states)
    length_m[mdp_small.dst] = 1000 * mdp_small.features[:, :2].sum(axis=1)
    steps: list[FitProgress] = []
    mmp = MaxMarginPlanning(lams=(0.01,), n_iter=8, batch=len(paths), callback=steps.append).fit(
        mdp_small, paths, length_m)
    w0 = mmp._interior_point(mdp_small)
    c0 = mdp_small.features @ w0
    km = length_m / 1000
    expected = []
    for p in paths:
        demo_cost = c0[mdp_small.transition_indices(p)].sum()
        best = min(c0[t].sum() - (km[p[1:]].sum() - km[np.intersect1d(s[1:], p[1:])].sum())
                   for s, t in enumerate_paths(mdp_small, int(p[0]), int(p[-1]), max_len=12))
        expected.append(demo_cost - best)
    assert steps[0].objective == pytest.approx(np.mean(expected), rel=1e-9)
    assert steps[0].objective > 0  # the start does not separate the routes by their margin
    np.testing.assert_allclose(mmp.w_, np.mean([s.theta for s in steps[4:]], axis=0), rtol=1e-12)


def test_projection_adds_cuts_where_the_rows_miss_a_transition(monkeypatch: pytest.MonkeyPatch) -> None:
    """positive_cost_rows keeps the extreme rows of each feature pattern; a middle row can still go negative."""
    import evaluation.max_margin as mm

    F = np.array([[0.1, 1.0], [5.0, 10.0], [2.0, 2.0005]])  # one pattern; row 2 is neither shortest nor longest
    mmp = MaxMarginPlanning(eps=1e-3)
    mmp._F, mmp._A, mmp._interior = F, mm.positive_cost_rows(F), np.array([0.0, 1.0])
    assert len(mmp._A) == 2
    w = np.array([-1.02, 1.0])  # feasible for the two extreme rows, not for row 2
    x = mmp._project(w)
    assert np.all(F @ x >= 1e-3 * (1 - 1e-9)) and len(mmp._A) == 3
    monkeypatch.setattr(mm, "_MAX_CUTS", 0)  # no cuts at all: the interior fallback still makes every cost positive
    mmp._A = mm.positive_cost_rows(F)
    assert np.all(F @ mmp._project(w) >= 1e-3 * (1 - 1e-9))


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
