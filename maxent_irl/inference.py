"""Queries on a MaxEnt route model with known weights: probabilities, routes, visits, destinations."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from maxent_irl.base import RandomState, check_random_state
from maxent_irl.exceptions import (
    InvalidParameterError,
    InvalidPathError,
    PartitionFunctionDivergedError,
    UnreachableDestinationError,
)
from maxent_irl.linsolve import fill_reducing_ordering
from maxent_irl.mdp import RouteMDP
from maxent_irl.objective import make_trip_set, pair_log_partition
from maxent_irl.soft_values import (
    DestinationBatch,
    LinearSystem,
    global_system,
    log_rows,
    reversed_mdp,
    shortest_path,
    solve_destinations,
    transition_log_weights,
)
from maxent_irl.visitation import forward_pass

__all__ = ["ROW_CACHE_BYTES", "RouteModel", "Visits", "validate_reference_policy"]

#: Memory for the rows of M a model keeps (at least two, at most 64 rows).
ROW_CACHE_BYTES = 128 << 20


@dataclass
class Visits:
    """Expected number of uses of each state ``(n,)`` and transition ``(T,)`` by a trip ``o -> d``.

    For a route that never revisits a segment (the overwhelming majority at
    realistic weights) this is the probability that the driver uses it.
    """

    states: np.ndarray
    transitions: np.ndarray


def validate_reference_policy(mdp: RouteMDP, reference_policy: np.ndarray | None) -> np.ndarray | None:
    """Return ``log pi0`` ``(T,)`` or None; ``pi0`` must be finite and nonnegative (0 forbids a transition)."""
    if reference_policy is None:
        return None
    pi0 = np.asarray(reference_policy, dtype=np.float64)
    if pi0.shape != (mdp.n_transitions,):
        raise InvalidParameterError(f"reference_policy must have shape ({mdp.n_transitions},), got {pi0.shape}")
    if not np.all(np.isfinite(pi0)) or np.any(pi0 < 0):
        raise InvalidParameterError("reference_policy must be finite and nonnegative")
    with np.errstate(divide="ignore"):
        return np.log(pi0)


class RouteModel:
    """The MaxEnt distribution over routes for weights ``theta``.

    ``P(path | o, d) = pi0(path) exp(theta . f(path) / alpha) / Z(o, d)`` over every path
    from ``o`` that ends at ``d``, passing ``d`` before or not (the trip ends with a stop
    there: :mod:`maxent_irl.soft_values`). The factorization of ``I - W`` is computed on
    first use and reused by every query, so a query costs one or two sparse solves.

    Parameters
    ----------
    mdp: the route MDP.
    theta: ``(k,)`` reward weights.
    alpha: temperature (default 1: Ziebart's model).
    reference_policy: optional ``(T,)`` prior weights ``pi0`` of each transition.
    """

    def __init__(
        self,
        mdp: RouteMDP,
        theta: np.ndarray,
        alpha: float = 1.0,
        reference_policy: np.ndarray | None = None,
        ordering: np.ndarray | None = None,
    ) -> None:
        theta = np.asarray(theta, dtype=np.float64)
        if theta.shape != (mdp.n_features,):
            raise InvalidParameterError(f"theta must have shape ({mdp.n_features},), got {theta.shape}")
        if not np.all(np.isfinite(theta)):
            raise InvalidParameterError("theta must be finite")
        self.mdp = mdp
        self.theta = theta
        self.alpha = float(alpha)
        self.log_pi0 = validate_reference_policy(mdp, reference_policy)
        self.logw = transition_log_weights(mdp.features, theta, self.alpha, self.log_pi0)
        self._ordering = ordering
        self._system: LinearSystem | None = None
        self._per_destination = False
        self._reverse: RouteMDP | None = None
        # rows of M by state, most recent last: a trip in progress asks with the same start A again and again
        self._rows: OrderedDict[int, np.ndarray] = OrderedDict()
        self._rows_lock = threading.Lock()

    # -- shared machinery -------------------------------------------------------------
    @property
    def ordering(self) -> np.ndarray:
        if self._ordering is None:
            self._ordering = fill_reducing_ordering(self.mdp.adjacency())
        return self._ordering

    @property
    def system(self) -> LinearSystem:
        """The factorized global system; raises :class:`PartitionFunctionDivergedError` if ``I - W`` diverges.

        Queries do not need it to converge (see :meth:`_global_system`).
        """
        system = self._global_system()
        if system is None:
            return global_system(self.mdp, self.logw, self.ordering)  # raises the divergence, with its reason
        return system

    def _global_system(self) -> LinearSystem | None:
        """The global system, or ``None`` when ``I - W`` of the whole graph diverges.

        That can happen while ``Z(., d)`` is finite: through a loop that cannot reach ``d``, or
        one that only passes through ``d`` (where trips end). Each destination then gets its
        own system over the states that reach it, which raises
        :class:`PartitionFunctionDivergedError` if it diverges too.
        """
        if self._system is None and not self._per_destination:
            try:
                self._system = global_system(self.mdp, self.logw, self.ordering)
            except PartitionFunctionDivergedError:
                self._per_destination = True
        return self._system

    def _solve(self, destinations: np.ndarray, needed_rows: list[np.ndarray]) -> DestinationBatch:
        return solve_destinations(self.mdp, self.logw, self._global_system(), destinations, needed_rows,
                                  self.ordering)

    def _state(self, state: int, what: str) -> int:
        return int(self.mdp.check_states([state], what)[0])

    @property
    def rewards(self) -> np.ndarray:
        """``(T,)`` reward ``theta . f`` of every transition."""
        rewards: np.ndarray = self.mdp.features @ self.theta
        return rewards

    # -- probabilities ---------------------------------------------------------------
    def log_partition(self, origins: np.ndarray | int, destinations: np.ndarray | int) -> np.ndarray:
        """``log Z(o, d)`` for broadcast arrays of origins and destinations (``-inf`` if unreachable)."""
        o, d = np.broadcast_arrays(np.asarray(origins), np.asarray(destinations))
        o_flat = self.mdp.check_states(o.ravel(), "origin")
        d_flat = self.mdp.check_states(d.ravel(), "destination")
        log_z, _ = pair_log_partition(self.mdp, self.logw, self._global_system(), o_flat, d_flat, self.ordering)
        return log_z.reshape(o.shape)

    def soft_values(self, destination: int) -> np.ndarray:
        """``(n,)`` soft values ``V(s; d) = alpha log Z(s, d)`` (``-inf`` where ``d`` is unreachable)."""
        d = self._state(destination, "destination")
        batch = self._solve(np.array([d]), [np.arange(self.mdp.n_states)])
        return self.alpha * batch.log_z_column(0)

    def path_log_prob(self, paths: Sequence[Sequence[int] | np.ndarray]) -> np.ndarray:
        """``(len(paths),)`` natural-log probability of each path given its origin and destination."""
        trips = make_trip_set(self.mdp, paths)
        log_z, _ = pair_log_partition(
            self.mdp, self.logw, self._global_system(), trips.pair_origin, trips.pair_dest, self.ordering
        )
        path_logw = np.array([self.logw[t].sum() for t in trips.path_transitions])
        out: np.ndarray = path_logw - log_z[trips.trip_pair]
        return out

    def log_likelihood(self, paths: Sequence[Sequence[int] | np.ndarray]) -> float:
        """Total natural-log likelihood of ``paths``."""
        return float(self.path_log_prob(paths).sum())

    def next_transition_probs(self, state: int, destination: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Transitions leaving ``state``, the states they lead to, and their probabilities toward ``destination``.

        At the destination the driver may also stop, with probability
        ``1 - probs.sum() = 1 / Z(d, d)`` (:meth:`stop_probability`).
        """
        s = self._state(state, "state")
        d = self._state(destination, "destination")
        idx, nxt = self.mdp.successors(s)
        batch = self._solve(np.array([d]), [np.append(nxt, s)])
        log_z = batch.log_z_column(0)
        if not np.isfinite(log_z[s]):
            raise UnreachableDestinationError(f"destination {d} is unreachable from state {s}")
        return idx, nxt, np.exp(self.logw[idx] + log_z[nxt] - log_z[s])

    def stop_probability(self, destination: int) -> float:
        """Probability that a driver on ``destination``, bound for it, stops there (else drives on): ``1/Z(d, d)``."""
        d = self._state(destination, "destination")
        return float(np.exp(-self.log_partition(d, d)))

    # -- routes --------------------------------------------------------------------
    def most_likely_path(self, origin: int, destination: int) -> np.ndarray:
        """The single most probable path ``o -> d`` (the max-reward path: a shortest path on ``-logw``)."""
        o = self._state(origin, "origin")
        d = self._state(destination, "destination")
        if self._global_system() is None:  # a model diverging for this destination has no most likely path
            self._solve(np.array([d]), [np.array([o])])
        return shortest_path(self.mdp, -self.logw, o, d)

    def expected_visits(self, origin: int, destination: int) -> Visits:
        """Expected uses of every state and transition by a trip ``origin -> destination``."""
        o = self._state(origin, "origin")
        d = self._state(destination, "destination")
        batch = self._solve(np.array([d]), [np.array([o])])
        if batch.log_z(np.array([o]), np.array([0]))[0] == -np.inf:
            raise UnreachableDestinationError(f"destination {d} is unreachable from origin {o}")
        res = forward_pass(self.mdp, batch, [np.array([o])], [np.array([1.0])], with_states=True)
        assert res.states is not None  # with_states=True
        return Visits(states=res.states, transitions=res.transitions)

    def sample_paths(self, origin: int, destination: int, n: int, random_state: RandomState = None,
                     max_steps: int | None = None) -> list[np.ndarray]:
        """``n`` independent paths ``origin -> destination`` drawn from the model."""
        if n < 0:
            raise InvalidParameterError("n must be >= 0")
        return self.sample_trips(np.full(n, origin), np.full(n, destination), random_state, max_steps)

    def sample_trips(self, origins: np.ndarray, destinations: np.ndarray,
                     random_state: RandomState = None, max_steps: int | None = None) -> list[np.ndarray]:
        """One path per ``(origins[i], destinations[i])``, all walkers advanced together, step by step.

        The policy toward ``d`` is ``pi(j | s) = w_j Z(dst_j, d) / Z(s, d)``, and at ``d`` a
        stop with ``1 / Z(d, d)``; every destination's ``log Z`` comes from one batched
        backward pass.
        """
        rng = check_random_state(random_state)
        o = self.mdp.check_states(np.atleast_1d(origins), "origin")
        d = self.mdp.check_states(np.atleast_1d(destinations), "destination")
        if o.shape != d.shape:
            raise InvalidParameterError("origins and destinations must have the same length")
        if o.size == 0:
            return []
        max_steps = max_steps or 20 * self.mdp.n_states
        udest, col = np.unique(d, return_inverse=True)
        needed = [o[col == k] for k in range(udest.size)]
        log_z = np.empty((self.mdp.n_states, udest.size))
        step = max(1, (1 << 25) // self.mdp.n_states)
        for a in range(0, udest.size, step):
            batch = self._solve(udest[a : a + step], needed[a : a + step])
            for k in range(batch.destinations.size):
                log_z[:, a + k] = batch.log_z_column(k)
        if np.any(~np.isfinite(log_z[o, col])):
            i = int(np.flatnonzero(~np.isfinite(log_z[o, col]))[0])
            raise UnreachableDestinationError(f"destination {int(d[i])} is unreachable from origin {int(o[i])}")
        order = np.argsort(self.mdp.src, kind="stable")
        ptr = np.concatenate([[0], np.cumsum(np.bincount(self.mdp.src, minlength=self.mdp.n_states))])
        walkers, states = [np.arange(o.size)], [o]
        current = o.copy()
        active = np.arange(o.size)
        for _ in range(max_steps + 1):
            arrived = active[current[active] == d[active]]
            if arrived.size:  # stop with 1 / Z(d, d), else drive on
                stop_p = np.exp(-log_z[d[arrived], col[arrived]])
                active = np.setdiff1d(active, arrived[rng.random(arrived.size) < stop_p], assume_unique=True)
            if active.size == 0:
                break
            s = current[active]
            deg = ptr[s + 1] - ptr[s]
            owner = np.repeat(np.arange(active.size), deg)
            offs = np.arange(owner.size) - np.repeat(np.cumsum(deg) - deg, deg)
            j = order[ptr[s][owner] + offs]
            kk = col[active][owner]
            p = np.exp(self.logw[j] + log_z[self.mdp.dst[j], kk] - log_z[s[owner], kk])
            if np.any(deg == 0):  # a walker at a destination without exits always stops (Z(d, d) = 1)
                raise InvalidParameterError("a sampled path reached a state with no transitions before its end")
            csum = np.cumsum(p)
            ends = np.cumsum(deg) - 1
            before = np.concatenate([[0.0], csum[ends[:-1]]])
            u = before + rng.random(active.size) * (csum[ends] - before)
            pick = np.clip(np.searchsorted(csum, u, side="right"), ends - deg + 1, ends)
            nxt = self.mdp.dst[j[pick]]
            current[active] = nxt
            walkers.append(active)
            states.append(nxt)
        if active.size:
            raise InvalidParameterError(f"{active.size} sampled paths did not arrive within max_steps={max_steps}")
        who = np.concatenate(walkers)
        seq = np.concatenate(states)[np.argsort(who, kind="stable")]
        return np.split(seq, np.cumsum(np.bincount(who, minlength=o.size))[:-1])

    # -- destinations ----------------------------------------------------------------
    def log_rows(self, states: Sequence[int] | np.ndarray) -> np.ndarray:
        """``(S, n)`` ``log Z(a, d)`` for each state ``a`` of ``states`` and every destination ``d``: rows of ``M``.

        Two of them make a destination posterior over the whole network (two transposed
        solves); exact in log space where they underflow (:func:`~maxent_irl.soft_values.log_rows`).
        """
        a = self.mdp.check_states(states, "state")
        with self._rows_lock:
            cached = {int(s): self._rows[int(s)] for s in a.tolist() if int(s) in self._rows}
        todo = np.array(sorted({int(s) for s in a.tolist()} - set(cached)), dtype=np.int64)
        if todo.size:
            if self._reverse is None and (self._global_system() is None or np.max(self.logw, initial=-np.inf) > 0):
                self._reverse = reversed_mdp(self.mdp)
            new = log_rows(self.mdp, self.logw, self._global_system(), todo, self.ordering, self._reverse)
            keep = max(2, min(64, ROW_CACHE_BYTES // (8 * self.mdp.n_states)))
            with self._rows_lock:
                for s, row in zip(todo.tolist(), new, strict=True):
                    row.setflags(write=False)
                    cached[s] = self._rows[s] = row
                while len(self._rows) > keep:
                    self._rows.popitem(last=False)
        with self._rows_lock:
            for s in cached:
                if s in self._rows:
                    self._rows.move_to_end(s)
        out: np.ndarray = np.array([cached[int(s)] for s in a.tolist()])
        return out

    def destination_log_posterior(self, partial_path: Sequence[int] | np.ndarray,
                                  log_prior: np.ndarray | None = None,
                                  candidates: np.ndarray | None = None) -> np.ndarray:
        """Unnormalized ``log P(d | A -> B) = log P(d) + log Z(B, d) - log Z(A, d)``, ``-inf`` where impossible.

        For every state (``(n,)``), or for ``candidates`` only (``(len(candidates),)``);
        ``log_prior`` has the same shape (default uniform). The normalization is left to the
        caller. Where the whole graph's ``I - W`` diverges (a loop no trip to the candidates
        can drive), candidates are solved one by one over the states that reach them.
        """
        path = self.mdp.check_states(partial_path, "partial path state")
        if path.size == 0:
            raise InvalidPathError("partial path is empty")
        self.mdp.transition_indices(path)
        a, b = int(path[0]), int(path[-1])
        if candidates is not None and self._global_system() is None:
            lz = self.log_partition(np.array([[a], [b]]), np.asarray(candidates)[None, :])
            rows = np.array([lz[0], lz[1]])
        else:
            try:
                rows = self.log_rows(np.array([a, b]))
            except PartitionFunctionDivergedError as exc:
                raise PartitionFunctionDivergedError(
                    f"the posterior over every segment needs a finite Z(A, d) for every d, but a loop reachable from "
                    f"the trip's start makes some infinite ({exc}); give candidate destinations instead") from exc
            if candidates is not None:
                rows = rows[:, candidates]
        with np.errstate(invalid="ignore"):
            log_post: np.ndarray = rows[1] - rows[0]
        log_post[~np.isfinite(rows[1])] = -np.inf
        if log_prior is not None:
            log_post = log_post + log_prior
        log_post[np.isnan(log_post)] = -np.inf
        return log_post

    def destination_posterior(self, partial_path: Sequence[int] | np.ndarray,
                              candidates: Sequence[int] | np.ndarray | None = None,
                              prior: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
        """``P(d | A -> B)`` for a partly driven path from A to B, over every state or over ``candidates``.

        ``P(d | A->B) ∝ P(d) exp(reward(A->B)) Z(B, d) / Z(A, d)``; the path reward is the
        same for every ``d`` and cancels. With ``M = (I - W)^-1``, ``Z(B, d) / Z(A, d) =
        M[B, d] / M[A, d]``: two rows of ``M``, two transposed solves for every destination
        at once. A trip may pass its destination before it ends (the model's stop at ``d``),
        so a segment the path already drove through keeps its probability.

        ``candidates=None``: the posterior over all ``n`` states (``prior`` ``(n,)`` or None =
        uniform); else over ``candidates`` only (``prior`` one value per candidate): the
        whole-network posterior restricted to them and renormalized.
        """
        n = self.mdp.n_states
        cand = np.arange(n) if candidates is None else self.mdp.check_states(candidates, "candidate destination")
        if cand.size == 0:
            raise InvalidParameterError("no candidate destinations")
        log_prior = np.zeros(cand.size)
        if prior is not None:
            p = np.asarray(prior, dtype=np.float64)
            if p.shape != cand.shape or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
                raise InvalidParameterError("prior must be nonnegative, finite, one value per candidate (per state "
                                            "without candidates), not all zero")
            with np.errstate(divide="ignore"):
                log_prior = np.log(p)
        log_post = self.destination_log_posterior(partial_path, log_prior, None if candidates is None else cand)
        if not np.any(np.isfinite(log_post)):
            raise UnreachableDestinationError("no candidate destination is reachable along this partial path")
        log_post -= log_post.max()
        post: np.ndarray = np.exp(log_post)
        post /= post.sum()
        return post
