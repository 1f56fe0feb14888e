"""RouteModel queries against brute-force enumeration: probabilities, routes, sampling, destinations."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from maxent_irl import InvalidParameterError, InvalidPathError, RouteModel, UnreachableDestinationError
from maxent_irl.synthetic import grid_route_mdp
from tests.maxent_irl.helpers import brute_force, cyclic_mdp, sink_mdp


def test_path_probabilities_sum_to_one_and_most_likely_path_is_the_argmax() -> None:
    mdp = cyclic_mdp(seed=5)
    model = RouteModel(mdp, np.array([-1.5, -1.0, -2.0]))
    for o, d in [(0, 5), (4, 2), (5, 3)]:
        paths, weights, Z, _ = brute_force(mdp, model.logw, o, d, max_len=30)
        logp = model.path_log_prob(paths)
        assert np.exp(logp).sum() == pytest.approx(1.0, abs=1e-9)
        np.testing.assert_allclose(np.exp(logp), weights / Z, rtol=1e-9)
        best = paths[int(np.argmax(weights))]
        assert model.most_likely_path(o, d).tolist() == best.tolist()
        assert model.log_likelihood(paths[:3]) == pytest.approx(logp[:3].sum())


def test_sampling_frequencies_match_probabilities() -> None:
    mdp = sink_mdp()
    model = RouteModel(mdp, np.array([-1.0, -0.8]))
    paths, weights, Z, _ = brute_force(mdp, model.logw, 0, 4)
    samples = model.sample_paths(0, 4, 20000, random_state=1)
    assert all(p[0] == 0 and p[-1] == 4 for p in samples)
    freq = Counter(tuple(p.tolist()) for p in samples)
    for p, w in zip(paths, weights, strict=True):
        prob = w / Z
        if prob > 0.01:  # binomial standard error below 0.0035 here: 5 sigma
            assert freq[tuple(p.tolist())] / 20000 == pytest.approx(prob, abs=0.018)
    again = model.sample_paths(0, 4, 20000, random_state=1)
    assert all(np.array_equal(a, b) for a, b in zip(again, samples, strict=True))  # seeded: reproducible


def test_next_transition_probabilities() -> None:
    mdp = cyclic_mdp(seed=6)
    model = RouteModel(mdp, np.array([-1.0, -1.0, -1.0]))
    idx, nxt, p = model.next_transition_probs(1, 5)
    assert p.sum() == pytest.approx(1.0)
    _, _, Z, _ = brute_force(mdp, model.logw, 1, 5)
    for j, s, pj in zip(idx, nxt, p, strict=True):
        _, _, Zs, _ = brute_force(mdp, model.logw, int(s), 5)
        assert pj == pytest.approx(np.exp(model.logw[j]) * Zs / Z, rel=1e-9)
    # at the destination the driver may drive on, or stop with 1 / Z(d, d)
    _, _, p_at = model.next_transition_probs(5, 5)
    _, _, Z_dd, _ = brute_force(mdp, model.logw, 5, 5)
    assert model.stop_probability(5) == pytest.approx(1 / Z_dd, rel=1e-9)
    assert p_at.sum() + model.stop_probability(5) == pytest.approx(1.0, abs=1e-12)


def test_destination_posterior_matches_bayes_rule_by_enumeration() -> None:
    mdp = cyclic_mdp(seed=7)
    model = RouteModel(mdp, np.array([-2.0, -2.5, -2.0]))  # the enumeration's tail beyond 26 steps is < 1e-12
    partial = [3, 4, 1]
    candidates = np.array([0, 2, 5, 4, 1])
    prior = np.array([0.1, 0.2, 0.3, 0.25, 0.15])
    post = model.destination_posterior(partial, candidates, prior)
    assert post.sum() == pytest.approx(1.0)
    # Bayes by brute force: P(d) * sum over full paths 3->d that start with the partial path / Z(3, d)
    expected = np.zeros(candidates.size)
    for i, d in enumerate(candidates):
        paths, weights, Z, _ = brute_force(mdp, model.logw, 3, int(d), max_len=26)
        mass = sum(w for p, w in zip(paths, weights, strict=True) if p[:3].tolist() == partial)
        expected[i] = prior[i] * mass / Z
    expected /= expected.sum()
    np.testing.assert_allclose(post, expected, atol=1e-9)
    assert post[candidates.tolist().index(4)] > 0  # the driver passed 4, and may still come back to stop there
    assert post[candidates.tolist().index(1)] > 0  # at B = 1 now: still a possible destination
    # the candidate rule is the whole-network posterior restricted to the candidates, renormalized
    full_prior = np.full(mdp.n_states, 1e-3)
    full_prior[candidates] = prior
    everywhere = model.destination_posterior(partial, prior=full_prior)
    assert everywhere.shape == (mdp.n_states,) and everywhere.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(everywhere[candidates] / everywhere[candidates].sum(), post, atol=1e-12)
    # and it is Bayes' rule over every state, by enumeration
    brute = np.zeros(mdp.n_states)
    for d in range(mdp.n_states):
        paths, weights, Z, _ = brute_force(mdp, model.logw, 3, d, max_len=26)
        brute[d] = full_prior[d] * sum(w for p, w in zip(paths, weights, strict=True) if p[:3].tolist() == partial) / Z
    np.testing.assert_allclose(everywhere, brute / brute.sum(), atol=1e-9)


def test_destination_posterior_far_candidates_underflow_safely() -> None:
    mdp = grid_route_mdp(12)
    model = RouteModel(mdp, np.array([-300.0, -200.0, -20.0, -10.0, -50.0, -5.0]))
    partial = model.most_likely_path(0, 60)[:4]
    cands = np.array([5, 60, mdp.n_states - 1, mdp.n_states - 7])
    post = model.destination_posterior(partial, cands)
    assert np.all(np.isfinite(post)) and post.sum() == pytest.approx(1.0)
    lz = model.log_partition(np.array([[partial[0]], [partial[-1]]]), cands[None, :])
    ref = lz[1] - lz[0]
    ref = np.exp(ref - ref.max()) / np.exp(ref - ref.max()).sum()
    np.testing.assert_allclose(post, ref, atol=1e-12)


def test_query_errors() -> None:
    mdp = sink_mdp()
    model = RouteModel(mdp, np.array([-1.0, -1.0]))
    with pytest.raises(UnreachableDestinationError):
        model.most_likely_path(4, 0)  # 4 is a sink
    with pytest.raises(UnreachableDestinationError):
        model.sample_paths(4, 0, 3)
    with pytest.raises(InvalidPathError):
        model.destination_posterior([0, 3], [4])  # 0 -> 3 is no transition
    with pytest.raises(InvalidParameterError, match="prior"):
        model.destination_posterior([0, 1], [3, 4], prior=[1.0, -1.0])
    with pytest.raises(InvalidParameterError, match="theta"):
        RouteModel(mdp, np.array([np.nan, 1.0]))
    with pytest.raises(InvalidPathError, match="unknown"):
        model.log_partition(0, 17)


@pytest.mark.parametrize("seed", range(4))
def test_every_query_is_independent_of_the_fill_reducing_ordering(seed: int) -> None:
    """The solves run in an internal state order; any symmetric ordering must give the same answers in state order."""
    from maxent_irl.objective import log_likelihood_and_gradient, make_trip_set

    mdp = cyclic_mdp(seed=seed)
    theta = -np.full(mdp.n_features, 1.5)
    ref = RouteModel(mdp, theta, ordering=np.arange(mdp.n_states))
    model = RouteModel(mdp, theta, ordering=np.random.default_rng(seed).permutation(mdp.n_states))
    paths = ref.sample_trips(np.array([0, 3, 5, 1]), np.array([4, 2, 0, 5]), random_state=seed)
    np.testing.assert_allclose(model.path_log_prob(paths), ref.path_log_prob(paths), rtol=1e-10)
    np.testing.assert_allclose(model.soft_values(4), ref.soft_values(4), rtol=1e-10, atol=1e-12)
    for got, want in zip(model.next_transition_probs(1, 4), ref.next_transition_probs(1, 4), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10)
    got, want = model.expected_visits(3, 0), ref.expected_visits(3, 0)
    np.testing.assert_allclose(got.states, want.states, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.transitions, want.transitions, rtol=1e-10, atol=1e-12)
    candidates = [2, 4, 5]
    np.testing.assert_allclose(model.destination_posterior([0, 1], candidates),
                               ref.destination_posterior([0, 1], candidates), rtol=1e-10)
    trips = make_trip_set(mdp, paths)
    ll, g = log_likelihood_and_gradient(mdp, trips, mdp.features @ theta, ordering=model.ordering)
    ll_ref, g_ref = log_likelihood_and_gradient(mdp, trips, mdp.features @ theta, ordering=ref.ordering)
    assert ll == pytest.approx(ll_ref, rel=1e-10)
    np.testing.assert_allclose(g, g_ref, rtol=1e-9, atol=1e-12)
    assert [p.tolist() for p in model.sample_trips([0, 2], [4, 4], random_state=1)] == \
        [p.tolist() for p in ref.sample_trips([0, 2], [4, 4], random_state=1)]
