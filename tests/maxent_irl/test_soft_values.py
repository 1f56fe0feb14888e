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
            # V(s) = alpha log sum_a pi0(a|s) exp((r_a + V(s')) / alpha) for s != d, V(d) = 0
            terms = np.log(pi0) + (r + V[mdp.dst]) / alpha
            backup = np.full(mdp.n_states, -np.inf)
            np.logaddexp.at(backup, mdp.src, terms)
            backup = alpha * backup
            backup[d] = 0.0
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
