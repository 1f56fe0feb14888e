"""Backward pass: exact partition functions, soft Bellman, the hard limit, underflow and divergence."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maxent_irl import PartitionFunctionDivergedError, RouteMDP, RouteModel
from maxent_irl.reference import log_space_partition
from maxent_irl.soft_values import TINY
from maxent_irl.synthetic import grid_route_mdp
from tests.maxent_irl.helpers import brute_force, cyclic_mdp, sink_mdp


@pytest.mark.parametrize("make", [cyclic_mdp, sink_mdp])
def test_partition_function_matches_brute_force_enumeration(make) -> None:
    mdp = make()
    theta = -np.full(mdp.n_features, 1.8)
    model = RouteModel(mdp, theta)
    for d in range(mdp.n_states):
        for o in range(mdp.n_states):
            _, _, Z, _ = brute_force(mdp, model.logw, o, d)
            if Z == 0:
                assert model.log_partition(o, d) == -np.inf
            else:
                assert model.log_partition(o, d) == pytest.approx(np.log(Z), abs=1e-9)


def test_soft_bellman_residual_with_temperature_and_reference_policy() -> None:
    mdp = grid_route_mdp(6, u_turns=True)
    rng = np.random.default_rng(3)
    pi0 = rng.random(mdp.n_transitions) + 0.1
    theta = np.array([-8.0, -5.0, -1.0, -0.5, -3.0, -0.5])
    for alpha in (1.0, 0.5, 2.0):
        model = RouteModel(mdp, theta, alpha=alpha, reference_policy=pi0)
        r = mdp.features @ theta
        for d in (0, 17, mdp.n_states - 1):
            V = model.soft_values(d)
            # V(s) = alpha log (sum_a pi0(a|s) exp((r_a + V(s')) / alpha) + [s = d]): at d, the stop weighs 1
            terms = np.log(pi0) + (r + V[mdp.dst]) / alpha
            backup = np.full(mdp.n_states, -np.inf)
            np.logaddexp.at(backup, mdp.src, terms)
            backup[d] = np.logaddexp(backup[d], 0.0)
            backup = alpha * backup
            assert np.max(np.abs(backup - V)) <= 1e-9


def test_hard_limit_equals_dijkstra() -> None:
    from scipy.sparse.csgraph import dijkstra

    mdp = grid_route_mdp(7)
    theta = np.array([-8.0, -5.0, -1.0, -0.5, -3.0, -0.5])
    cost = -(mdp.features @ theta)
    W = mdp.adjacency(cost)
    for d in (0, 40, mdp.n_states - 1):
        dist = dijkstra(W.T.tocsr(), indices=d)  # cost from every state to d
        for alpha in (1e-2, 1e-3):
            V = RouteModel(mdp, theta, alpha=alpha).soft_values(d)
            # V -> -shortest cost; the gap is at most alpha * log(number of tied near-optimal paths)
            assert np.max(np.abs(V + dist)) <= 50 * alpha
        V = RouteModel(mdp, theta, alpha=1e-6).soft_values(d)
        assert np.max(np.abs(V + dist)) <= 1e-6 * 50


def test_long_routes_do_not_underflow() -> None:
    """Costs far beyond exp(-745): the rescaled fallback agrees with log-space value iteration."""
    mdp = grid_route_mdp(12)
    theta = np.array([-300.0, -200.0, -20.0, -10.0, -50.0, -5.0])  # ~30 nats per block: far corners ~ 1e-300
    model = RouteModel(mdp, theta)
    d = 0
    ref = log_space_partition(mdp, model.logw, d)
    far = np.argsort(ref)[:5]
    assert ref[far].max() < np.log(TINY)  # these pairs underflow in linear space
    got = model.log_partition(far, d)
    np.testing.assert_allclose(got, ref[far], rtol=1e-10)
    np.testing.assert_allclose(model.soft_values(d), ref, rtol=1e-10, atol=1e-9)


def test_divergent_rewards_raise_specific_error() -> None:
    mdp = cyclic_mdp()
    model = RouteModel(mdp, np.zeros(mdp.n_features))  # every cycle has weight 1: Z is infinite
    with pytest.raises(PartitionFunctionDivergedError, match=r"infinite|spectral"):
        model.log_partition(0, 5)
    with pytest.raises(PartitionFunctionDivergedError):
        model.most_likely_path(0, 5)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(3, 9), extra=st.integers(0, 12), scale=st.floats(0.5, 5.0))
def test_linear_solve_agrees_with_log_space_iteration(seed: int, n: int, extra: int, scale: float) -> None:
    """Property: on random strongly connected graphs, LU-based log Z equals log-space value iteration."""
    rng = np.random.default_rng(seed)
    ring = [(i, (i + 1) % n) for i in range(n)]
    pairs = {(int(a), int(b)) for a, b in rng.integers(0, n, (extra, 2)) if a != b} | set(ring)
    src, dst = np.array(sorted(pairs)).T
    mdp = RouteMDP(n, src, dst, rng.random((src.size, 2)) + 0.05)
    theta = -scale * np.ones(2)
    try:
        model = RouteModel(mdp, theta)
        lz = model.log_partition(np.arange(n)[:, None], np.arange(n)[None, :])
    except PartitionFunctionDivergedError:
        # divergence must be genuine: the spectral radius of W is >= 1
        W = mdp.adjacency(np.exp(mdp.features @ theta)).toarray()
        assert np.max(np.abs(np.linalg.eigvals(W))) >= 1 - 1e-9
        return
    for d in range(n):
        np.testing.assert_allclose(lz[:, d], log_space_partition(mdp, model.logw, d), rtol=1e-8, atol=1e-8)


def _two_way_line(n: int) -> RouteMDP:
    """States 0..n-1 in a row, both directions; features: [forward step, backward step]."""
    src = np.r_[np.arange(n - 1), np.arange(1, n)]
    dst = np.r_[np.arange(1, n), np.arange(n - 1)]
    return RouteMDP(n, src, dst, np.column_stack([src < dst, src > dst]).astype(float))


def _line_log_partition(n: int, cost_forward: float, cost_back: float) -> np.ndarray:
    """Exact ``log Z(s, n - 1)`` on the two-way line, from ``Z(s) = a Z(s+1) + b Z(s-1)`` and, at the destination,
    ``Z(n-1) = 1 + b Z(n-2)`` (stop or drive on), by ratios (no overflow)."""
    a, b = np.exp(-cost_forward), np.exp(-cost_back)
    ratio = np.empty(n - 1)  # Z(s) / Z(s + 1)
    ratio[0] = a
    for s in range(1, n - 1):
        ratio[s] = a / (1.0 - b * ratio[s - 1])
    log_z_last = -np.log1p(-b * ratio[-1])
    return np.r_[np.cumsum(np.log(ratio)[::-1])[::-1], 0.0] + log_z_last


def _bellman_residual(mdp: RouteMDP, logw: np.ndarray, V: np.ndarray, d: int) -> float:
    terms = logw + V[mdp.dst]
    backup = np.full(mdp.n_states, -np.inf)
    np.logaddexp.at(backup, mdp.src, terms)
    backup[d] = np.logaddexp(backup[d], 0.0)  # the stop at d weighs 1
    return float(np.max(np.abs(backup - V) / np.maximum(1.0, np.abs(V))))


@pytest.mark.parametrize("n", [6000, 20000])
def test_long_routes_whose_entropy_overflows_the_rescaled_system(n: int) -> None:
    """Cheap, long routes: beyond the hard cost, Z carries ~0.18 nats of route entropy per segment.

    At 6,000 segments that is > 709 nats, so ``Z e^h`` overflows the shortest-path rescaling; at
    20,000 its fill-reducing factorization overflows too. Both must match the exact recurrence.
    """
    mdp, theta, d = _two_way_line(n), np.array([-1.0, -1.0]), n - 1
    model = RouteModel(mdp, theta)
    ref = _line_log_partition(n, 1.0, 1.0)
    assert ref[0] + (n - 1) > 709  # the entropy beyond the hard cost does not fit in float64
    np.testing.assert_allclose(model.log_partition(np.arange(n), d), ref, rtol=1e-12)
    assert _bellman_residual(mdp, model.logw, model.soft_values(d), d) <= 1e-12


def test_long_ladder_satisfies_the_soft_bellman_equation() -> None:
    """Two lanes of 1,500 segments with rungs: the exact log Z is the unique solution of the log-space backup."""
    m = 1500
    a, b = np.arange(m), np.arange(m, 2 * m)
    pairs = [(a[:-1], a[1:]), (a[1:], a[:-1]), (b[:-1], b[1:]), (b[1:], b[:-1]), (a, b), (b, a)]
    src = np.concatenate([p[0] for p in pairs])
    dst = np.concatenate([p[1] for p in pairs])
    mdp = RouteMDP(2 * m, src, dst, np.ones((src.size, 1)))
    model = RouteModel(mdp, np.array([-1.2]))
    d = 2 * m - 1
    V = model.soft_values(d)
    hard = -RouteModel(mdp, np.array([-1.2]), alpha=1e-9).soft_values(d)  # shortest-path cost, for scale
    assert V[0] + hard[0] > 709 and np.all(np.isfinite(V))
    assert _bellman_residual(mdp, model.logw, V, d) <= 1e-12


def test_gradient_on_a_long_route_matches_finite_differences() -> None:
    """The forward pass in the rescaled (and re-ordered) system: expected counts = d log Z / d theta."""
    from maxent_irl.objective import log_likelihood_and_gradient, make_trip_set
    from maxent_irl.soft_values import transition_log_weights

    n = 20000
    mdp = _two_way_line(n)
    theta = np.array([-1.0, -1.3])
    back_and_forth = np.r_[np.arange(0, 11), [9], np.arange(10, n)]
    trips = make_trip_set(mdp, [np.arange(n), back_and_forth, np.arange(n - 3000, n)])

    def ll(th: np.ndarray) -> tuple[float, np.ndarray]:
        return log_likelihood_and_gradient(mdp, trips, transition_log_weights(mdp.features, th))

    _, grad = ll(theta)
    for i in range(2):
        step = np.zeros(2)
        step[i] = 1e-5
        fd = (ll(theta + step)[0] - ll(theta - step)[0]) / 2e-5
        assert fd == pytest.approx(grad[i], rel=1e-6)


def test_a_loop_through_the_destination_is_part_of_the_trip() -> None:
    """0 -> 1 -> 2 = d, and 2 -> 1 back: a driver may pass d, loop back and stop at the second arrival.

    With costs 1 per step, Z(0, 2) = e^-2 / (1 - e^-2) (any number of loops), and the driver at d stops with
    probability 1 / Z(2, 2) = 1 - e^-2. When the loop pays, the trip could drive it for ever: Z is infinite.
    """
    mdp = RouteMDP(3, np.array([0, 1, 2]), np.array([1, 2, 1]), np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    model = RouteModel(mdp, np.array([-1.0, -1.0]))
    loop = np.exp(-2.0)
    assert model.log_partition(0, 2) == pytest.approx(-2.0 - np.log1p(-loop), abs=1e-12)
    assert model.stop_probability(2) == pytest.approx(1 - loop, abs=1e-12)
    assert model.most_likely_path(0, 2).tolist() == [0, 1, 2]
    visits = model.expected_visits(0, 2)
    np.testing.assert_allclose(visits.states, [1.0, 1 / (1 - loop), 1 / (1 - loop)], atol=1e-12)
    assert model.path_log_prob([[0, 1, 2, 1, 2]])[0] == pytest.approx(-4.0 + np.log1p(-loop) + 2.0, abs=1e-12)
    with pytest.raises(PartitionFunctionDivergedError):
        RouteModel(mdp, np.array([-1.0, 2.0])).log_partition(0, 2)


def _with_dead_end_loop(mdp: RouteMDP) -> RouteMDP:
    """``mdp`` plus states n, n+1 entered from state 0 and looping forever, at zero reward (weight 1)."""
    n = mdp.n_states
    src = np.r_[mdp.src, 0, n, n + 1]
    dst = np.r_[mdp.dst, n, n + 1, n]
    return RouteMDP(n + 2, src, dst, np.vstack([mdp.features, np.zeros((3, mdp.n_features))]))


def test_a_loop_no_route_can_use_does_not_make_z_infinite() -> None:
    """A dead end that loops at zero reward diverges on its own, but no trip to another state can drive it."""
    base = grid_route_mdp(4, seed=3)
    mdp = _with_dead_end_loop(base)
    theta = np.array([-8.0, -5.0, -1.0, -0.5, -3.0, -0.5])
    model, ref_model = RouteModel(mdp, theta), RouteModel(base, theta)
    d = base.n_states - 1
    np.testing.assert_allclose(model.log_partition(np.arange(base.n_states), d),
                               ref_model.log_partition(np.arange(base.n_states), d), rtol=1e-10)
    np.testing.assert_allclose(model.soft_values(d)[: base.n_states], log_space_partition(mdp, model.logw, d)[
        : base.n_states], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(model.expected_visits(0, d).states[: base.n_states],
                               ref_model.expected_visits(0, d).states, atol=1e-10)
    post = model.destination_posterior(np.array([0, 1]), np.arange(2, base.n_states))
    np.testing.assert_allclose(post, ref_model.destination_posterior(np.array([0, 1]), np.arange(2, base.n_states)),
                               atol=1e-10)
    with pytest.raises(PartitionFunctionDivergedError, match="every segment"):  # the loop's own Z is infinite
        model.destination_posterior(np.array([0, 1]))
    # learning: the loop changes nothing, so the fit is the loop-free graph's
    from maxent_irl import MaxEntIRL

    paths = ref_model.sample_trips(np.zeros(40, dtype=int), np.full(40, d), random_state=1)
    fitted = MaxEntIRL().fit(mdp, paths)
    np.testing.assert_allclose(fitted.theta_, MaxEntIRL().fit(base, paths).theta_, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("scale", [1.0, 300.0, 800.0])
def test_positive_rewards_on_an_acyclic_graph(scale: float) -> None:
    """No cycle, so Z is finite whatever the rewards (up to e^4000 here); as alpha -> 0, the longest path."""
    rng = np.random.default_rng(7)
    n = 12
    pairs = sorted({(int(a), int(b)) for a, b in rng.integers(0, n, (40, 2)) if a < b})  # a DAG in index order
    src, dst = (np.array(x) for x in zip(*pairs, strict=True))
    rewards = rng.normal(0.3, 1.0, src.size) * scale
    mdp = RouteMDP(n, src, dst, rewards[:, None])
    d = n - 1
    ref = np.full(n, -np.inf)  # exact log Z by dynamic programming in log space, in reverse topological order
    ref[d] = 0.0
    for s in range(n - 2, -1, -1):
        out = src == s
        if out.any():
            ref[s] = np.logaddexp.reduce(rewards[out] + ref[dst[out]])
    model = RouteModel(mdp, np.array([1.0]))
    reach = np.isfinite(ref)
    assert ref[reach].max() > 709 or scale == 1.0  # beyond float64 for the large scales
    np.testing.assert_allclose(model.soft_values(d)[reach], ref[reach], rtol=1e-12, atol=1e-9)
    assert np.all(model.soft_values(d)[~reach] == -np.inf)
    longest = np.full(n, -np.inf)
    longest[d] = 0.0
    for s in range(n - 2, -1, -1):
        out = src == s
        if out.any():
            longest[s] = np.max(rewards[out] + longest[dst[out]])
    cold = RouteModel(mdp, np.array([1.0]), alpha=1e-9)
    np.testing.assert_allclose(cold.soft_values(d)[reach], longest[reach], rtol=1e-9, atol=1e-6)
    o = int(np.flatnonzero(reach)[0])
    path = cold.most_likely_path(o, d)
    assert mdp.path_features(path)[0] == pytest.approx(longest[o])


def test_a_rewarding_dead_end_loop_is_never_driven() -> None:
    """0 -> 1 = d, and 0 -> 2 -> 3 with a self-loop at 3 paying +0.5: it cannot reach d, so Z(0, 1) = e^-1."""
    src, dst = np.array([0, 0, 2, 3, 3]), np.array([1, 2, 3, 3, 4])
    mdp = RouteMDP(5, src, dst, np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]))
    model = RouteModel(mdp, np.array([-1.0, 0.5]))
    assert model.log_partition(0, 1) == pytest.approx(-1.0, abs=1e-12)
    assert model.most_likely_path(0, 1).tolist() == [0, 1]
    with pytest.raises(PartitionFunctionDivergedError):  # towards 4 the loop is on the way: Z is infinite
        model.log_partition(0, 4)
    with pytest.raises(PartitionFunctionDivergedError):
        model.most_likely_path(0, 4)


def test_long_route_where_steps_towards_the_destination_pay() -> None:
    """Towards d every step pays +1, away costs 3 (each cycle costs 2): finite, with log Z in the thousands."""
    n = 12000
    mdp = _two_way_line(n)
    model = RouteModel(mdp, np.array([-3.0, 1.0]))  # forward (away from d = 0) costs 3, backward pays 1
    ref = _line_log_partition(n, -1.0, 3.0)[::-1]  # the mirrored line: log Z(s, 0)
    assert ref[-1] == pytest.approx(14110.5558 + 0.1760, abs=1e-3)  # + log Z(d, d): the loops through d
    np.testing.assert_allclose(model.log_partition(np.arange(n), 0), ref, rtol=1e-12)


def test_learning_with_a_loop_through_the_destination() -> None:
    """Trips end at 1; every transition weighs w = e^theta and the loop 1 -> 3 -> 1 may be driven before stopping.

    Z(0, 1) = (w + w^2) / (1 - w^2) = w / (1 - w), so P(0, 2, 1) = w (1 - w) and P(0, 1) = 1 - w: with 4 and 1
    such trips the likelihood w^4 (1 - w)^5 peaks at w = 4/9 (not at the absorbing model's 4, where the loop
    is cut). One trip drives the loop; it counts like any other.
    """
    from maxent_irl import MaxEntIRL

    mdp = RouteMDP(4, np.array([0, 0, 2, 1, 3]), np.array([1, 2, 1, 3, 1]), np.ones((5, 1)))
    paths = [[0, 2, 1]] * 4 + [[0, 1]]
    est = MaxEntIRL().fit(mdp, paths)
    assert est.theta_[0] == pytest.approx(np.log(4 / 9), abs=1e-4)
    assert est.log_likelihood_ == pytest.approx(4 * np.log(4 / 9) + 5 * np.log(5 / 9), abs=1e-6)
    # a trip that loops through its destination before it stops: w^4 (1 - w) / (w (1 - w)) ... by the formula
    looped = [[0, 1, 3, 1]] + [[0, 2, 1]] * 3 + [[0, 1]]
    est = MaxEntIRL().fit(mdp, looped)
    # P(0,1,3,1) = w^3 / M = w^2 (1 - w); likelihood w^2 (1-w) * w^3 (1-w)^3 * (1-w) = w^5 (1-w)^5: w = 1/2
    assert est.theta_[0] == pytest.approx(np.log(0.5), abs=1e-4)


def test_an_underflowed_detour_multiplied_back_up_by_rewards() -> None:
    """0 -> 1 -> 2 -> 3 weighs e^(600 + 600 - 1300) = e^-100, the direct 0 -> 3 e^-99: Z(2, 3) underflows in
    the plain solve, and the rewards after it must not turn that 0 into a silently wrong log Z or a NaN gradient."""
    from maxent_irl.objective import log_likelihood_and_gradient, make_trip_set

    mdp = RouteMDP(4, np.array([0, 1, 2, 0]), np.array([1, 2, 3, 3]), np.array([[600.0], [600.0], [-1300.0], [-99.0]]))
    model = RouteModel(mdp, np.array([1.0]))
    exact = np.logaddexp(-100.0, -99.0)
    assert model.log_partition(0, 3) == pytest.approx(exact, abs=1e-12)
    ll, grad = log_likelihood_and_gradient(mdp, make_trip_set(mdp, [[0, 1, 2, 3]]), model.logw)
    p_long = np.exp(-100.0 - exact)
    assert ll == pytest.approx(-100.0 - exact, abs=1e-9)
    assert grad[0] == pytest.approx(-100.0 - (p_long * -100.0 + (1 - p_long) * -99.0), abs=1e-9)
