"""The MaxEnt log-likelihood of a set of trips and its exact gradient.

``log P(path | o, d) = sum_j logw_j - log Z(o, d)`` (a path may pass its destination
before it ends there: :mod:`maxent_irl.soft_values`) and
``d/dtheta sum log P = (empirical - expected feature counts) / alpha``: one backward
and one forward solve per destination, batched over destinations in chunks that
bound the memory to a few ``(n_states, chunk)`` arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from maxent_irl.exceptions import InvalidPathError, UnreachableDestinationError
from maxent_irl.linsolve import TRANSPOSE_FACTOR_MIN_COLUMNS
from maxent_irl.mdp import RouteMDP
from maxent_irl.soft_values import (
    LinearSystem,
    global_system,
    solve_destinations,
    states_reachable_from,
    states_reaching,
)
from maxent_irl.visitation import forward_pass

__all__ = ["TripSet", "feature_rms", "likelihood_from_terms", "log_likelihood_and_gradient", "make_trip_set",
           "pair_log_partition", "pair_terms", "relevant_states"]

#: Elements of one ``(n_states, chunk)`` array; bounds the memory of a pass.
CHUNK_ELEMENTS = 1 << 25


@dataclass
class TripSet:
    """Observed trips reduced to what the likelihood needs.

    ``origins``/``destinations`` ``(N,)``; ``transition_counts`` ``(T,)`` how often each
    transition is used by all trips; ``pair_dest``/``pair_origin``/``pair_count`` the
    distinct (origin, destination) pairs with multiplicities; ``trip_pair`` ``(N,)``
    maps each trip to its pair.
    """

    origins: np.ndarray
    destinations: np.ndarray
    transition_counts: np.ndarray
    path_transitions: list[np.ndarray]
    pair_origin: np.ndarray
    pair_dest: np.ndarray
    pair_count: np.ndarray
    trip_pair: np.ndarray

    @property
    def n_trips(self) -> int:
        return int(self.origins.size)


def make_trip_set(mdp: RouteMDP, paths: Sequence[Sequence[int] | np.ndarray]) -> TripSet:
    """Validate ``paths`` (origin first, destination last) and summarize them."""
    if isinstance(paths, np.ndarray) and paths.ndim == 1 and paths.dtype != object:
        raise InvalidPathError("paths must be a sequence of paths (1-D state arrays), not a single path")
    path_list = list(paths)
    if not path_list:
        raise InvalidPathError("no paths given")
    transitions = []
    origins = np.empty(len(path_list), dtype=np.int64)
    dests = np.empty(len(path_list), dtype=np.int64)
    for i, path in enumerate(path_list):
        try:
            t = mdp.transition_indices(path)
        except InvalidPathError as exc:
            raise InvalidPathError(f"path {i}: {exc}") from exc
        states = np.asarray(path, dtype=np.int64)
        transitions.append(t)
        origins[i], dests[i] = states[0], states[-1]
    counts = np.bincount(np.concatenate(transitions), minlength=mdp.n_transitions).astype(np.float64)
    keys = dests * mdp.n_states + origins
    uniq, trip_pair, pair_count = np.unique(keys, return_inverse=True, return_counts=True)
    return TripSet(
        origins=origins,
        destinations=dests,
        transition_counts=counts,
        path_transitions=transitions,
        pair_origin=uniq % mdp.n_states,
        pair_dest=uniq // mdp.n_states,
        pair_count=pair_count.astype(np.float64),
        trip_pair=trip_pair,
    )


def feature_rms(mdp: RouteMDP, trips: TripSet) -> np.ndarray:
    """``(k,)`` RMS of each feature over the trips' transitions (1 for a feature they never use).

    Optimizers work on ``theta * feature_rms``: km and turn counts then weigh alike, which
    saves many L-BFGS iterations without changing the optimum.
    """
    used = trips.transition_counts > 0
    total = max(float(trips.transition_counts[used].sum()), 1.0)
    rms = np.sqrt(trips.transition_counts[used] @ mdp.features[used] ** 2 / total)
    return np.where(rms > 0, rms, 1.0)


def pair_log_partition(
    mdp: RouteMDP,
    logw: np.ndarray,
    system: LinearSystem | None,
    pair_origin: np.ndarray,
    pair_dest: np.ndarray,
    ordering: np.ndarray | None = None,
    forward_counts: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``log Z`` of each (origin, destination) pair; with ``forward_counts`` also the expected transition counts."""
    log_z = np.empty(pair_origin.size)
    E = np.zeros(mdp.n_transitions) if forward_counts is not None else None
    order = np.argsort(pair_dest, kind="stable")
    udest, starts = np.unique(pair_dest[order], return_index=True)
    bounds = np.append(starts, order.size)
    chunk = max(1, CHUNK_ELEMENTS // mdp.n_states)  # destinations per batch: bounds memory to a few (n, chunk)
    for chunk_start in range(0, udest.size, chunk):
        ks = np.arange(chunk_start, min(udest.size, chunk_start + chunk))
        members = [order[bounds[k] : bounds[k + 1]] for k in ks]
        rows = [pair_origin[m] for m in members]
        batch = solve_destinations(mdp, logw, system, udest[ks], rows, ordering)
        for i, m in enumerate(members):
            log_z[m] = batch.log_z(pair_origin[m], np.full(m.size, i))
        if E is not None:
            E += forward_pass(mdp, batch, rows, [np.asarray(forward_counts)[m] for m in members]).transitions
    return log_z, E


def relevant_states(mdp: RouteMDP, trips: TripSet) -> np.ndarray:
    """``(n,)`` bool: states some trip can drive through, reachable from an origin and reaching a destination.

    Only they enter learning's system: a loop elsewhere (a dead end that loops, a part of
    the map no trip can reach) is never driven, so it must not make ``Z`` diverge.
    """
    relevant: np.ndarray = states_reachable_from(mdp, trips.pair_origin) & states_reaching(mdp, trips.pair_dest)
    return relevant


def pair_terms(
    mdp: RouteMDP,
    logw: np.ndarray,
    pair_origin: np.ndarray,
    pair_dest: np.ndarray,
    pair_count: np.ndarray,
    ordering: np.ndarray | None = None,
    relevant: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``log Z`` ``(P,)`` of each pair and the expected transition counts ``(T,)`` of their trips.

    One factorization of ``I - W`` (on the ``relevant`` states), then the batched backward and
    forward passes. This is the unit of work a Dask worker runs on its share of the pairs
    (:mod:`maxent_irl.distributed`); in one process it runs on all of them.
    """
    many = np.unique(pair_dest).size >= TRANSPOSE_FACTOR_MIN_COLUMNS
    system = global_system(mdp, logw, ordering, with_transpose=many, relevant=relevant)
    log_z, E = pair_log_partition(mdp, logw, system, pair_origin, pair_dest, ordering, forward_counts=pair_count)
    assert E is not None
    return log_z, E


def likelihood_from_terms(
    mdp: RouteMDP, trips: TripSet, logw: np.ndarray, log_z: np.ndarray, expected_features: np.ndarray,
    alpha: float = 1.0,
) -> tuple[float, np.ndarray]:
    """Total log-likelihood and gradient ``(k,)`` from each pair's ``log Z`` and the expected feature counts ``(k,)``.

    Raises :class:`~maxent_irl.exceptions.UnreachableDestinationError` when a pair's ``Z`` is 0.
    """
    if np.any(~np.isfinite(log_z)):
        bad = int(np.flatnonzero(~np.isfinite(log_z))[0])
        raise UnreachableDestinationError(
            f"destination {int(trips.pair_dest[bad])} is unreachable from {int(trips.pair_origin[bad])} "
            "under this model"
        )
    used = trips.transition_counts > 0
    path_logw = float(trips.transition_counts[used] @ logw[used])
    ll = path_logw - float(trips.pair_count @ log_z)
    grad = (mdp.features.T @ trips.transition_counts - expected_features) / alpha
    return ll, grad


def log_likelihood_and_gradient(
    mdp: RouteMDP,
    trips: TripSet,
    logw: np.ndarray,
    alpha: float = 1.0,
    ordering: np.ndarray | None = None,
    system: LinearSystem | None = None,
) -> tuple[float, np.ndarray]:
    """Total log-likelihood of ``trips`` and its gradient ``(k,)`` with respect to ``theta``.

    Raises :class:`~maxent_irl.exceptions.PartitionFunctionDivergedError` when ``Z`` is infinite.
    """
    if system is None:
        log_z, E = pair_terms(mdp, logw, trips.pair_origin, trips.pair_dest, trips.pair_count, ordering,
                              relevant_states(mdp, trips))
    else:
        log_z, E_or_none = pair_log_partition(
            mdp, logw, system, trips.pair_origin, trips.pair_dest, ordering, forward_counts=trips.pair_count
        )
        assert E_or_none is not None
        E = E_or_none
    return likelihood_from_terms(mdp, trips, logw, log_z, mdp.features.T @ E, alpha)
