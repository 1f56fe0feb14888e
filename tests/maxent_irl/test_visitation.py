"""Forward pass: expected transition counts against brute-force enumeration."""

from __future__ import annotations

import numpy as np
import pytest

from maxent_irl import RouteModel
from maxent_irl.objective import make_trip_set, pair_log_partition
from tests.maxent_irl.helpers import brute_force, cyclic_mdp, sink_mdp


@pytest.mark.parametrize("make", [cyclic_mdp, sink_mdp])
def test_expected_visits_match_brute_force(make) -> None:
    mdp = make()
    model = RouteModel(mdp, -np.full(mdp.n_features, 1.8))
    for o, d in [(0, 4), (3, 2), (4, 0), (2, 3), (1, 1)]:
        if o >= mdp.n_states or d >= mdp.n_states:
            continue
        paths, weights, Z, E = brute_force(mdp, model.logw, o, d)
        if Z == 0:
            continue
        visits = model.expected_visits(o, d)
        np.testing.assert_allclose(visits.transitions, E, atol=1e-9)
        state_visits = np.zeros(mdp.n_states)
        for p, w in zip(paths, weights, strict=True):
            np.add.at(state_visits, p, w / Z)
        np.testing.assert_allclose(visits.states, state_visits, atol=1e-9)
        assert visits.states[d] >= 1.0 - 1e-12  # every trip arrives, and may pass its destination before it stops


@pytest.mark.parametrize("seed", range(6))
def test_expected_visits_do_not_depend_on_the_state_ordering(seed: int) -> None:
    """Solves run in the factorization's internal order; every answer must come back in state order, whatever the
    fill-reducing ordering (a reachability check once read an internal row as a state)."""
    from maxent_irl.exceptions import UnreachableDestinationError

    mdp = sink_mdp()
    ordering = np.random.default_rng(seed).permutation(mdp.n_states)
    model = RouteModel(mdp, -np.full(mdp.n_features, 1.8), ordering=ordering)
    for o in range(mdp.n_states):
        for d in range(mdp.n_states):
            _, _, Z, E = brute_force(mdp, model.logw, o, d)
            if Z == 0:  # from the sink 4 nothing is reachable
                with pytest.raises(UnreachableDestinationError):
                    model.expected_visits(o, d)
                continue
            np.testing.assert_allclose(model.expected_visits(o, d).transitions, E, atol=1e-9)
            assert model.log_partition(o, d) == pytest.approx(np.log(Z), rel=1e-9, abs=1e-12)


def test_batched_forward_sums_over_destinations() -> None:
    """Several destinations and origins in one batch equal the sum of single brute-force answers."""
    mdp = cyclic_mdp(seed=4)
    model = RouteModel(mdp, -np.full(3, 1.8))
    pairs = [(0, 5, 2.0), (3, 5, 1.0), (1, 4, 3.0), (5, 0, 1.0), (2, 0, 1.0)]
    o = np.array([p[0] for p in pairs])
    d = np.array([p[1] for p in pairs])
    c = np.array([p[2] for p in pairs])
    log_z, E = pair_log_partition(mdp, model.logw, model.system, o, d, model.ordering, forward_counts=c)
    E_ref = np.zeros(mdp.n_transitions)
    for (oo, dd, cc), lz in zip(pairs, log_z, strict=True):
        _, _, Z, Eb = brute_force(mdp, model.logw, oo, dd)
        assert lz == pytest.approx(np.log(Z), abs=1e-10)
        E_ref += cc * Eb
    np.testing.assert_allclose(E, E_ref, atol=1e-9)
    assert make_trip_set(mdp, [[0, 1, 2, 5]]).n_trips == 1
