"""MaxEntIRL: known-parameter recovery on a real road graph, convexity, options, divergence back-off."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maxent_irl import (
    FitProgress,
    InvalidParameterError,
    InvalidPathError,
    MaxEntIRL,
    NotFittedError,
    RouteMDP,
    RouteModel,
)
from maxent_irl.synthetic import grid_route_mdp

DATA = Path(__file__).resolve().parents[2] / "data"
#: Features the sampled Andorra trips exercise strongly (each has thousands of uses).
RECOVERY_FEATURES = ["km_primary", "km_secondary", "km_residential", "turn_left", "turn_uturn", "segment"]


@pytest.fixture(scope="module")
def andorra_mdp() -> RouteMDP:
    from maxent_irl.roads import RoadNetwork

    net = RoadNetwork.load(DATA / "andorra_drive.osm.bz2")
    cols = [net.feature_names.index(f) for f in RECOVERY_FEATURES]
    return RouteMDP(net.mdp.n_states, net.mdp.src, net.mdp.dst, net.mdp.features[:, cols], RECOVERY_FEATURES)


def _sample(mdp: RouteMDP, theta: np.ndarray, n: int, n_dest: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    dests = rng.choice(mdp.n_states, n_dest, replace=False)
    o, d = rng.integers(0, mdp.n_states, n), rng.choice(dests, n)
    return RouteModel(mdp, theta).sample_trips(o[o != d], d[o != d], random_state=seed)


def test_recovers_known_theta_on_real_road_graph(andorra_mdp: RouteMDP) -> None:
    from maxent_irl.roads import default_true_theta

    theta = default_true_theta(RECOVERY_FEATURES)
    paths = _sample(andorra_mdp, theta, 8000, 300, seed=11)
    est = MaxEntIRL().fit(andorra_mdp, paths)
    assert est.converged_
    rel = np.abs(est.theta_ - theta) / np.abs(theta)
    assert rel.max() <= 0.05, dict(zip(RECOVERY_FEATURES, rel.round(4), strict=True))
    # at the optimum the expected feature counts match the empirical ones
    assert est.log_likelihood_ >= RouteModel(andorra_mdp, theta).log_likelihood(paths)


def test_same_optimum_from_different_starts_and_divergent_start() -> None:
    mdp = grid_route_mdp(8, u_turns=True, seed=2)
    theta = np.array([-9.0, -6.0, -1.0, -0.6, -3.0, -0.7])
    paths = _sample(mdp, theta, 400, 40, seed=3)
    fits = [
        MaxEntIRL(theta0=t0, tol=1e-9).fit(mdp, paths)
        for t0 in (None, np.full(6, -20.0), np.array([-1.0, -30.0, 5.0, -5.0, 0.0, -3.0]))
    ]
    # None starts at theta = 0, where Z diverges (every cycle has weight 1): the learner backs off
    for f in fits[1:]:
        np.testing.assert_allclose(f.theta_, fits[0].theta_, atol=1e-4)
        assert f.log_likelihood_ == pytest.approx(fits[0].log_likelihood_, abs=1e-6)
    assert all(np.isfinite(f.theta_).all() for f in fits)


def test_progress_callback_regularization_and_bounds() -> None:
    mdp = grid_route_mdp(6, seed=4)
    theta = np.array([-9.0, -6.0, -1.0, -0.6, -3.0, -0.7])
    paths = _sample(mdp, theta, 200, 20, seed=5)
    seen: list[FitProgress] = []
    plain = MaxEntIRL(callback=seen.append).fit(mdp, paths)
    assert [p.iteration for p in seen] == list(range(1, len(seen) + 1)) and len(seen) == plain.n_iter_
    assert all(np.isfinite(p.log_likelihood) and p.grad_norm >= 0 for p in seen)
    assert seen[-1].log_likelihood >= seen[0].log_likelihood
    l2 = MaxEntIRL(l2=1.0).fit(mdp, paths)
    assert np.linalg.norm(l2.theta_) < np.linalg.norm(plain.theta_)
    l1 = MaxEntIRL(l1=0.5).fit(mdp, paths)
    assert np.sum(np.abs(l1.theta_)) < np.sum(np.abs(plain.theta_))
    bounded = MaxEntIRL(bounds=[(-5.0, -4.0)] + [(None, None)] * 5).fit(mdp, paths)
    assert -5.0 - 1e-12 <= bounded.theta_[0] <= -4.0 + 1e-12
    stopped = MaxEntIRL(callback=lambda p: p.iteration < 2).fit(mdp, paths)
    assert stopped.n_iter_ == 2 and not stopped.converged_


def test_reference_policy_and_temperature_are_used() -> None:
    mdp = grid_route_mdp(5, seed=6)
    theta = np.array([-9.0, -6.0, -1.0, -0.6, -3.0, -0.7])
    paths = _sample(mdp, theta, 100, 10, seed=7)
    pi0 = np.full(mdp.n_transitions, 0.5)
    a = MaxEntIRL(reference_policy=pi0).fit(mdp, paths)
    b = MaxEntIRL().fit(mdp, paths)
    # a constant pi0 per transition acts like a reward of log(0.5) per segment: only "segment" absorbs it
    np.testing.assert_allclose(a.theta_[:5], b.theta_[:5], atol=1e-4)
    assert a.theta_[5] == pytest.approx(b.theta_[5] - np.log(0.5), abs=1e-4)
    hot = MaxEntIRL(alpha=2.0).fit(mdp, paths)
    np.testing.assert_allclose(hot.theta_, 2.0 * b.theta_, rtol=1e-4, atol=1e-4)  # theta / alpha is identified


def test_bad_inputs_and_unfitted_use() -> None:
    mdp = grid_route_mdp(4)
    with pytest.raises(NotFittedError):
        MaxEntIRL().log_likelihood([[0, 1]])
    with pytest.raises(InvalidParameterError):
        MaxEntIRL(alpha=0).fit(mdp, [[0, 1]])
    with pytest.raises(InvalidParameterError):
        MaxEntIRL(l2=-1).fit(mdp, [[0, 1]])
    with pytest.raises(InvalidParameterError, match="bounds"):
        MaxEntIRL(bounds=[(0, 1)]).fit(mdp, [[0, 1]])
    with pytest.raises(InvalidPathError):
        MaxEntIRL().fit(mdp, [[0, 999]])
    pi0 = np.ones(mdp.n_transitions)
    pi0[mdp.transition_indices([0, 1])[0]] = 0
    with pytest.raises(InvalidPathError, match="pi0"):
        MaxEntIRL(reference_policy=pi0).fit(mdp, [[0, 1]])
    with pytest.raises(InvalidPathError, match="nothing to learn"):  # every trip starts at its destination
        MaxEntIRL().fit(mdp, [[3], [5]])


def test_line_search_backs_off_from_divergence(monkeypatch: pytest.MonkeyPatch) -> None:
    """From a far start the first steps overshoot into rho(W) >= 1; the fit backs off and converges."""
    import maxent_irl.learning as learning
    from maxent_irl import PartitionFunctionDivergedError

    mdp = grid_route_mdp(6, u_turns=True, seed=9)
    theta = np.array([-9.0, -6.0, -1.0, -0.6, -3.0, -0.7])
    paths = _sample(mdp, theta, 300, 30, seed=9)
    diverged = []
    real = learning.log_likelihood_and_gradient

    def counting(*args, **kwargs):
        try:
            return real(*args, **kwargs)
        except PartitionFunctionDivergedError:
            diverged.append(1)
            raise

    monkeypatch.setattr(learning, "log_likelihood_and_gradient", counting)
    far = MaxEntIRL(theta0=np.full(6, -200.0), tol=1e-9).fit(mdp, paths)
    near = MaxEntIRL(theta0=theta, tol=1e-9).fit(mdp, paths)
    assert diverged, "the far start was expected to step into the divergent region"
    assert np.all(np.isfinite(far.theta_))
    np.testing.assert_allclose(far.theta_, near.theta_, atol=1e-4)


def test_a_feature_no_path_uses_is_absent_not_learned() -> None:
    """Maximum likelihood would push an unused feature's weight to -inf (no data favour it); it stays at 0,
    named in absent_features_, and the other weights are those of the fit without it."""
    mdp = grid_route_mdp(5, seed=2)
    extra = np.zeros((mdp.n_transitions, 1))
    extra[np.flatnonzero(mdp.src == mdp.n_states - 1)] = 1.0  # only on transitions out of the last state
    wide = RouteMDP(mdp.n_states, mdp.src, mdp.dst, np.hstack([mdp.features, extra]),
                    [*mdp.feature_names, "rare"])
    paths = [p for p in _sample(mdp, np.array([-8.0, -5.0, -1.0, -0.5, -3.0, -0.5]), 150, 20, seed=5)
             if mdp.n_states - 1 not in p[:-1]]
    est = MaxEntIRL().fit(wide, paths)
    assert est.absent_features_ == ["u_turn", "rare"] and est.theta_[-1] == 0.0  # the grid has no U-turns either
    base = MaxEntIRL().fit(mdp, paths)
    np.testing.assert_allclose(est.theta_[:-1], base.theta_, rtol=1e-5, atol=1e-6)


def test_nonpositive_rewards_is_the_constrained_optimum() -> None:
    """Drivers who gain on long major segments: the unconstrained fit learns positive rewards; with
    nonpositive_rewards the fit meets the KKT conditions of the optimum under theta · f <= 0 for every
    transition (the gradient is a non-negative combination of the active constraints), and an already
    feasible fit is unchanged."""
    from scipy.optimize import nnls

    from maxent_irl.objective import log_likelihood_and_gradient, make_trip_set
    from maxent_irl.soft_values import transition_log_weights

    mdp = grid_route_mdp(7, seed=4)
    theta = np.array([-9.0, 6.5, -1.0, -0.6, -3.0, -0.7])
    paths = _sample(mdp, theta, 300, 30, seed=6)
    free = MaxEntIRL(l2=1e-3).fit(mdp, paths)
    assert np.max(mdp.features @ free.theta_) > 0
    costs = MaxEntIRL(l2=1e-3, nonpositive_rewards=True, tol=1e-9).fit(mdp, paths)
    rewards = mdp.features @ costs.theta_
    assert np.max(rewards) <= 0 and "no positive reward" in costs.message_ and costs.converged_
    assert costs.log_likelihood_ < free.log_likelihood_

    trips = make_trip_set(mdp, paths)
    used = [i for i, name in enumerate(mdp.feature_names) if name not in free.absent_features_]
    ll, grad = log_likelihood_and_gradient(mdp, trips, transition_log_weights(mdp.features, costs.theta_))
    grad_f = (-grad / trips.n_trips + 1e-3 * costs.theta_)[used]  # of the minimized objective
    active = mdp.features[rewards > -1e-6][:, used]
    assert active.shape[0] > 0
    _, residual = nnls(active.T, -grad_f)  # grad f + A^T lam = 0 with some lam >= 0
    assert residual <= 1e-3 * np.linalg.norm(grad_f), (residual, np.linalg.norm(grad_f))
    assert ll == pytest.approx(costs.log_likelihood_)

    safe = _sample(mdp, np.array([-9.0, -5.0, -1.0, -0.6, -3.0, -0.7]), 200, 20, seed=7)
    a, b = MaxEntIRL(l2=1e-3).fit(mdp, safe), MaxEntIRL(l2=1e-3, nonpositive_rewards=True).fit(mdp, safe)
    assert np.max(mdp.features @ a.theta_) < 0
    np.testing.assert_array_equal(a.theta_, b.theta_)
