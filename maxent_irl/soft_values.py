"""Backward pass: partition functions ``Z(s, d)`` / soft values ``V(s; d) = alpha log Z(s, d)``.

Notation (shapes): ``n`` states, ``T`` transitions, ``D`` destinations.
``logw`` ``(T,)`` is the log weight of each transition, ``r / alpha + log pi0``;
``W`` is the ``(n, n)`` matrix with ``exp(logw[j])`` at ``(src[j], dst[j])``.

The end of a trip: a driver may pass the destination segment before stopping there
(loop around the block to park, come back to a door), so a trip ``o -> d`` is any path
from ``o`` that ends at ``d`` with a "stop" (the recursive-logit model's destination
link; Fosgerau, Frejinger & Karlström 2013). The stop has weight 1 (a constant per trip,
which cancels in ``P(path | o, d)``), so the partition function is the sum over *all*
paths from ``s`` to ``d``:

    Z(s, d) = M[s, d]   with   M = (I - W)^-1 = I + W + W^2 + ...

Exact, without a horizon: one sparse LU of ``I - W`` serves every destination, and
``Z(., d) = M e_d`` is one solve. At ``d`` the driver stops with probability
``1 / Z(d, d)`` and goes on along transition ``j`` with ``w_j Z(dst_j, d) / Z(d, d)``.
A trip that never passes its destination has ``M[d, d]`` times less probability than
under an absorbing destination (Ziebart et al.'s first-passage model); that is the
probability that a driver at ``d`` stops rather than drives on.

Underflow: ``Z`` shrinks like ``exp(-cost)`` and is 0 in float64 beyond ~700 nats.
Where an entry a caller needs is below :data:`TINY`, that destination is solved
again in a rescaled system ``W~ = D W D^-1`` with ``D = diag(exp(h))`` and ``h``
the hard (shortest-path) cost to ``d`` (``h(d) = 0``): its entries are ``<= 1`` (a
cycle through ``d`` costs ``>= 0`` wherever ``Z`` is finite), ``Z~ = Z e^h`` is ``>= 1``
where reachable, and ``log Z = log Z~ - h`` is exact in log space. The similarity keeps
every identity below (forward pass included) unchanged.

Overflow of the rescaled system: ``Z~ = Z e^h`` is the route-choice entropy the
hard cost leaves out, and it grows with route length (on a two-way line at one nat
per transition, ~0.18 nats per segment: past ~4,000 segments ``Z~`` overflows). So
the rescaling is repeated: where ``Z~`` came out finite, ``log Z`` is exact; every
other state gets the potential ``h(s) = -max_f (log Z(f) - cost(s -> f))`` over
those exact states ``f`` (a max-plus extension, one multi-source Dijkstra), which
is still a lower bound of ``log Z`` and keeps every entry of ``W~`` ``<= 1``. Each
round pins down the states whose remaining entropy is below ~700 nats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from maxent_irl.exceptions import (
    InvalidParameterError,
    NumericalRangeError,
    PartitionFunctionDivergedError,
    UnreachableDestinationError,
)
from maxent_irl.linsolve import MMatrixLU
from maxent_irl.mdp import RouteMDP

__all__ = [
    "TINY",
    "DestinationBatch",
    "LinearSystem",
    "cost_to_destination",
    "global_system",
    "log_rows",
    "rescaled_solution",
    "rescaled_system",
    "reversed_mdp",
    "shortest_path",
    "solve_destinations",
    "states_reachable_from",
    "states_reaching",
    "transition_log_weights",
]

#: Entries of Z below this are treated as underflowed and recomputed in log space.
TINY = 1e-250
_LOG_MAX = 700.0  # exp(709) overflows float64


def transition_log_weights(
    features: np.ndarray, theta: np.ndarray, alpha: float = 1.0, log_pi0: np.ndarray | None = None
) -> np.ndarray:
    """``(T,)`` log weights ``features @ theta / alpha + log pi0`` of every transition."""
    if not np.isfinite(alpha) or alpha <= 0:
        raise InvalidParameterError(f"alpha must be a positive finite temperature, got {alpha!r}")
    logw = features @ np.asarray(theta, dtype=np.float64) / alpha
    if log_pi0 is not None:
        logw = logw + log_pi0
    return logw


@dataclass
class LinearSystem:
    """One factorized system ``I - W~`` with ``W~ = diag(e^h) W diag(e^-h)``.

    ``w`` ``(T,)`` are the entries of ``W~`` per transition; ``h`` ``(n,)`` the
    potential (zeros for the global, unscaled system; ``inf`` marks states that
    cannot reach the destination of a rescaled system). ``src_i``/``dst_i`` are the
    transitions' ends in the factorization's internal state order.
    """

    lu: MMatrixLU
    w: np.ndarray
    h: np.ndarray
    src_i: np.ndarray
    dst_i: np.ndarray


def _system(
    mdp: RouteMDP, w: np.ndarray, h: np.ndarray, ordering: np.ndarray | None, with_transpose: bool = False
) -> LinearSystem:
    W = sp.csr_matrix((w, (mdp.src, mdp.dst)), shape=(mdp.n_states, mdp.n_states))
    lu = MMatrixLU(W, ordering, with_transpose)
    return LinearSystem(lu, w, h, lu.inv[mdp.src], lu.inv[mdp.dst])


def states_reaching(mdp: RouteMDP, destinations: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: the states from which some state of ``destinations`` can be reached."""
    n = mdp.n_states
    reverse = sp.csr_matrix((np.ones(mdp.n_transitions), (mdp.dst, mdp.src)), shape=(n, n))
    dist = csgraph.dijkstra(reverse, directed=True, indices=np.unique(destinations), min_only=True, unweighted=True)
    reach: np.ndarray = np.isfinite(dist)
    return reach


def states_reachable_from(mdp: RouteMDP, sources: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: the states some state of ``sources`` can reach."""
    n = mdp.n_states
    forward = sp.csr_matrix((np.ones(mdp.n_transitions), (mdp.src, mdp.dst)), shape=(n, n))
    dist = csgraph.dijkstra(forward, directed=True, indices=np.unique(sources), min_only=True, unweighted=True)
    reach: np.ndarray = np.isfinite(dist)
    return reach


def global_system(
    mdp: RouteMDP, logw: np.ndarray, ordering: np.ndarray | None = None, with_transpose: bool = False,
    relevant: np.ndarray | None = None,
) -> LinearSystem:
    """Factorize ``I - W`` once; raises :class:`PartitionFunctionDivergedError` if ``rho(W) >= 1``.

    ``with_transpose`` also factorizes ``(I - W)^T``, for forward
    passes with many destinations. With ``relevant`` ``(n,)`` (e.g. the states reachable
    from the trips' origins that reach their destinations), transitions touching other
    states are left out: no trip uses them, and a cycle there (a dead end that loops)
    cannot make the system diverge.
    """
    if np.any(np.isnan(logw)):
        raise InvalidParameterError("transition log weights contain NaN (theta or features not finite)")
    if np.any(logw > _LOG_MAX):  # queries go on per destination (RouteModel); learning backs off
        raise PartitionFunctionDivergedError(
            f"a transition weight exp({float(logw.max()):.1f}) overflows: rewards are far too positive"
        )
    w = np.exp(logw)
    if relevant is not None:
        w[~(relevant[mdp.src] & relevant[mdp.dst])] = 0.0
    return _system(mdp, w, np.zeros(mdp.n_states), ordering, with_transpose)


def cost_to_destination(
    mdp: RouteMDP, cost: np.ndarray, destination: int, start: np.ndarray | None = None
) -> np.ndarray:
    """``(n,)`` cheapest path cost from every state to ``destination`` (``inf`` if unreachable).

    Trips end at ``destination``, so paths never leave it. With ``start`` ``(n,)``, the
    cost is ``min_f cost(s -> f) + start[f]`` over the states ``f`` where ``start`` is
    finite instead (a multi-source search, through a virtual source joined to each ``f``).
    Uses Dijkstra, or Bellman-Ford when some costs are negative: it only finds negative
    cycles that can reach the destination, the ones that make the partition function diverge.
    """
    n = mdp.n_states
    keep = np.isfinite(cost) & (mdp.src != destination)
    rows, cols, vals = mdp.dst[keep], mdp.src[keep], cost[keep]  # the reversed graph
    source, offset = int(destination), 0.0
    if start is not None:
        f = np.flatnonzero(np.isfinite(start))
        offset = float(start[f].min()) - 1.0  # virtual edges weigh >= 1: csgraph may drop explicit zeros
        rows, cols, vals = np.r_[rows, np.full(f.size, n)], np.r_[cols, f], np.r_[vals, start[f] - offset]
        source, n = n, n + 1
    reverse = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
    if np.any(vals < 0):
        try:
            dist = csgraph.bellman_ford(reverse, directed=True, indices=source)
        except csgraph.NegativeCycleError as exc:
            raise PartitionFunctionDivergedError("a cycle has positive total reward: Z is infinite") from exc
    else:
        dist = csgraph.dijkstra(reverse, directed=True, indices=source)
    out: np.ndarray = dist if start is None else dist[: mdp.n_states] + offset
    return out


def shortest_path(mdp: RouteMDP, cost: np.ndarray, origin: int, destination: int) -> np.ndarray:
    """The cheapest path ``origin -> destination`` under per-transition ``cost`` ``(T,)`` (``inf`` = forbidden).

    The ``alpha -> 0`` limit of the soft model. Dijkstra, or Bellman-Ford over the states
    that reach ``destination`` when some costs are negative (a negative cycle there means
    the soft model diverges; one elsewhere is never driven).
    """
    o, d = int(origin), int(destination)
    if o == d:
        return np.array([o])
    finite = np.isfinite(cost) & (mdp.src != d)  # the trip ends at d: a cycle through d is never driven
    graph = sp.csr_matrix((cost[finite], (mdp.src[finite], mdp.dst[finite])), shape=(mdp.n_states,) * 2)
    try:
        method = "BF" if np.any(cost[finite] < 0) else "D"
        if method == "BF":
            finite &= states_reaching(mdp, np.array([d]))[mdp.src]
            graph = sp.csr_matrix((cost[finite], (mdp.src[finite], mdp.dst[finite])), shape=(mdp.n_states,) * 2)
        dist, pred = csgraph.shortest_path(graph, method=method, directed=True, indices=o, return_predecessors=True)
    except csgraph.NegativeCycleError as exc:
        raise PartitionFunctionDivergedError("a cycle has positive total reward: Z is infinite") from exc
    if not np.isfinite(dist[d]):
        raise UnreachableDestinationError(f"destination {d} is unreachable from origin {o}")
    path = [d]
    while path[-1] != o:
        path.append(int(pred[path[-1]]))
    return np.array(path[::-1], dtype=np.int64)


def rescaled_system(
    mdp: RouteMDP, logw: np.ndarray, destination: int, ordering: np.ndarray | None = None,
    h: np.ndarray | None = None,
) -> LinearSystem:
    """The system for one destination rescaled by the potential ``h`` (log-space exact).

    ``h`` ``(n,)`` defaults to the shortest-path cost to ``destination``; any potential with
    ``h(src) <= h(dst) - logw`` on every transition keeps the entries of ``W~`` ``<= 1``.
    It is shifted so that ``h(destination) = 0`` (a constant shift leaves ``W~`` as it is):
    then ``Z~(s) = Z(s, d) e^{h(s)}``. An entry above 1 beyond rounding is a cycle through
    ``destination`` with a positive reward: ``Z`` is infinite.
    """
    if h is None:
        h = cost_to_destination(mdp, -logw, destination)
    h = h - h[destination]
    reach = np.isfinite(h)
    ok = reach[mdp.src] & reach[mdp.dst] & np.isfinite(logw)
    exponent = logw[ok] + h[mdp.src[ok]] - h[mdp.dst[ok]]
    if exponent.size and float(exponent.max()) > 1e-8 * max(1.0, float(np.abs(h[reach]).max())):
        raise PartitionFunctionDivergedError(
            f"a cycle through destination {destination} has a positive reward: Z(., {destination}) is infinite")
    w = np.zeros(mdp.n_transitions)
    w[ok] = np.exp(np.minimum(exponent, 0.0))
    return _system(mdp, w, h, ordering)


def rescaled_solution(
    mdp: RouteMDP, logw: np.ndarray, destination: int, ordering: np.ndarray | None = None, max_rounds: int = 100,
    own_system: bool = False,
) -> tuple[LinearSystem, np.ndarray]:
    """``(system, y)``: ``y`` ``(n,)`` in *state* order is ``Z(s, d) e^{h(s)}`` (``h`` is ``system.h``), finite.

    Starts from the shortest-path potential and, while some reachable state's ``y``
    overflows, extends the exactly known ``log Z`` to a new potential (module docstring).
    The system's internal order is ``ordering`` unless that factorization overflowed.
    Raises :class:`NumericalRangeError` if a round pins down no new state. With
    ``own_system`` (no convergent global system vouches for this one), a factorization
    that fails in the farthest-first order too is a genuine divergence and is re-raised.
    """
    d = int(destination)
    h = cost_to_destination(mdp, -logw, d)
    reach = np.isfinite(h)
    far_first = False  # switched on only when the caller's order overflows (rare: no extra search otherwise)
    known = np.zeros(mdp.n_states, dtype=bool)
    for _ in range(max_rounds):
        try:
            system = rescaled_system(mdp, logw, d, ordering, h)
            h = system.h
            e = np.zeros((mdp.n_states, 1))
            e[system.lu.inv[d], 0] = 1.0
            ys = system.lu.solve_internal(e)[:, 0][system.lu.inv]
            ok = reach & np.isfinite(ys) & (ys > 0)
        except PartitionFunctionDivergedError:  # an overflow when a global system with rho(W) < 1 vouches for it
            if own_system and far_first:
                raise
            ok = known
        if ok[reach].all():
            return system, ys
        if not np.any(ok & ~known):  # no progress: the factorization itself overflowed
            if far_first:
                break
            ordering, far_first = _farthest_first(mdp, d, reach), True
            continue
        known = ok
        start = np.full(mdp.n_states, np.inf)
        start[ok] = h[ok] - np.log(ys[ok])  # -log Z(f, d), exact
        h = cost_to_destination(mdp, -logw, d, start=start)
    raise NumericalRangeError(
        f"Z(., {d}) does not fit in float64 even after rescaling: {int((reach & ~known).sum())} states left")


def _farthest_first(mdp: RouteMDP, destination: int, reach: np.ndarray) -> np.ndarray:
    """An elimination order (position -> state): farthest from ``destination`` first, in transitions.

    It keeps the factorization's Schur complements at the entropy of short detours, where a
    fill-reducing order can sum the entropy of whole blocks and overflow. Transitions, not
    cost, because rewards can make cost negative.
    """
    keep = mdp.src != destination
    n = mdp.n_states
    reverse = sp.csr_matrix((np.ones(int(keep.sum())), (mdp.dst[keep], mdp.src[keep])), shape=(n, n))
    hops = csgraph.dijkstra(reverse, directed=True, indices=destination, unweighted=True)
    return np.lexsort((np.arange(n), -np.where(reach, hops, np.inf)))


@dataclass
class DestinationBatch:
    """Backward-pass solution for a batch of destinations.

    ``Z[i, k]`` ``(n, D)`` (Fortran order, rows in the global system's internal
    state order ``inv``) holds ``Z~(s, d_k) = Z(s, d_k) e^{h(s)}`` for ``s = perm[i]``,
    in the frame of system ``systems[column_system[k]]`` (system 0 is the global one,
    where ``h = 0``). A rescaled system may factorize in another internal order.
    """

    destinations: np.ndarray
    Z: np.ndarray
    systems: list[LinearSystem | None]
    column_system: np.ndarray
    inv: np.ndarray

    def log_z(self, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """``log Z(rows[i], destinations[columns[i]])`` for paired arrays of states and column indices."""
        rows = np.asarray(rows)
        columns = np.asarray(columns)
        h = np.zeros(rows.shape)
        scaled = self.column_system[columns] > 0
        for c in np.unique(columns[scaled]):
            sel = columns == c
            h[sel] = self.systems[self.column_system[c]].h[rows[sel]]
        z = self.Z[self.inv[rows], columns]
        with np.errstate(divide="ignore", invalid="ignore"):
            out: np.ndarray = np.log(z) - h
        out[~np.isfinite(h) | (z <= 0)] = -np.inf
        return out

    def log_z_column(self, k: int) -> np.ndarray:
        """``(n,)`` ``log Z(s, d_k)`` for every state in state order (``-inf`` where unreachable)."""
        h = self.systems[self.column_system[k]].h
        z = self.Z[self.inv, k]
        with np.errstate(divide="ignore", invalid="ignore"):
            out: np.ndarray = np.log(z) - h
        out[~np.isfinite(h) | (z <= 0)] = -np.inf
        return out


def solve_destinations(
    mdp: RouteMDP,
    logw: np.ndarray,
    system: LinearSystem | None,
    destinations: np.ndarray,
    needed_rows: list[np.ndarray] | None = None,
    ordering: np.ndarray | None = None,
) -> DestinationBatch:
    """Backward pass for ``destinations`` ``(D,)``: ``Z(., d)`` for all of them in one multi-RHS solve.

    ``needed_rows[k]`` lists the states whose ``Z(s, d_k)`` the caller will use; if
    any of them underflows (``< TINY``), destination ``k`` is re-solved in its
    rescaled system (exact in log space). ``system=None`` (the whole graph's ``I - W``
    diverges, e.g. through a loop no route to these destinations can use) solves each
    destination in its own rescaled system, over the states that reach it; that one
    raises :class:`PartitionFunctionDivergedError` if it diverges too.
    """
    destinations = np.asarray(destinations, dtype=np.int64)
    D = destinations.size
    n = mdp.n_states
    if system is None:
        Z = np.zeros((n, D), order="F")
        systems: list[LinearSystem | None] = [None]
        for k in range(D):
            scaled, y = rescaled_solution(mdp, logw, int(destinations[k]), ordering, own_system=True)
            Z[:, k] = y
            systems.append(scaled)
        return DestinationBatch(destinations, Z, systems, np.arange(1, D + 1), np.arange(n))
    inv = system.lu.inv
    d_i = inv[destinations]
    rhs = np.zeros((n, D), order="F")
    rhs[d_i, np.arange(D)] = 1.0
    Z = system.lu.solve_internal(rhs) if D else rhs
    # Z overflows (rewards so positive that Z > 1e308) where a column is not finite: that
    # column is rescaled too. M[d, d] = 1 + (loops through d) >= 1: a finite M[d, d] < 1 is a
    # numerically singular I - W instead.
    overflow = np.asarray(~np.isfinite(Z).all(axis=0))
    diag = np.where(overflow, 1.0, Z[d_i, np.arange(D)])
    if np.any(~(diag >= 1.0 - 1e-9)):
        raise PartitionFunctionDivergedError("M[d, d] < 1 for some destination: I - W is numerically singular")
    systems = [system]
    column_system = np.zeros(D, dtype=np.int64)
    # With rewards > 0 an underflowed intermediate Z can be multiplied back up into a needed entry
    # that looks fine (e^600 x 0 instead of e^600 x e^-1300): then any reachable entry < TINY counts.
    amplified = bool(logw.size and np.max(logw) > 0)
    if needed_rows is not None or overflow.any() or amplified:
        for k in range(D):
            rows = needed_rows[k] if needed_rows is not None else np.zeros(0, dtype=np.int64)
            if amplified:
                rows = np.flatnonzero(states_reaching(mdp, destinations[k : k + 1]))
            if bool(overflow[k]) or (rows.size > 0 and bool(np.any(Z[inv[rows], k] < TINY))):
                scaled, y = rescaled_solution(mdp, logw, int(destinations[k]), system.lu.perm)
                Z[:, k] = y[system.lu.perm]
                column_system[k] = len(systems)
                systems.append(scaled)
    return DestinationBatch(destinations, Z, systems, column_system, inv)


def reversed_mdp(mdp: RouteMDP) -> RouteMDP:
    """The MDP with every transition reversed (same transition order): its ``Z(., a)`` is row ``a`` of ``M``.

    ``(I - W^T)^-1 = M^T``, so the backward pass of the reversed graph gives rows of ``M``,
    with its rescaling (potentials from ``a`` instead of to ``d``) for free.
    """
    return RouteMDP(mdp.n_states, mdp.dst, mdp.src, np.zeros((mdp.n_transitions, 1)))


def log_rows(
    mdp: RouteMDP,
    logw: np.ndarray,
    system: LinearSystem | None,
    sources: np.ndarray,
    ordering: np.ndarray | None = None,
    reverse: RouteMDP | None = None,
) -> np.ndarray:
    """``(S, n)`` ``log M[a, d]`` for every source ``a`` in ``sources`` and every state ``d`` (``-inf``: unreachable).

    One transposed solve per source with the global factorization; a row with an entry
    that underflowed (below :data:`TINY` where ``d`` is reachable), overflowed, or that
    rewards > 0 could have amplified, is computed again exactly in log space from the
    reversed graph's rescaled system (:func:`rescaled_solution`). ``system=None`` (the whole
    graph's ``I - W`` diverges) solves every row that way. ``reverse`` is
    :func:`reversed_mdp` of ``mdp``, if the caller keeps one.
    """
    sources = np.asarray(sources, dtype=np.int64)
    n = mdp.n_states
    out = np.full((sources.size, n), -np.inf)
    redo = np.ones(sources.size, dtype=bool)
    amplified = bool(logw.size and np.max(logw) > 0)
    if system is not None and not amplified:
        E = np.zeros((n, sources.size))
        E[sources, np.arange(sources.size)] = 1.0
        rows = system.lu.solve(E, trans=True).T
        for i, a in enumerate(sources.tolist()):
            r = rows[i]
            small = ~(r >= TINY)
            if small.any() and np.any(states_reachable_from(mdp, np.array([a]))[small]):
                continue  # an entry underflowed (or overflowed): exact row below
            with np.errstate(divide="ignore"):
                out[i] = np.log(np.maximum(r, 0.0))
            redo[i] = False
    if redo.any():
        rev = reversed_mdp(mdp) if reverse is None else reverse
        for i in np.flatnonzero(redo).tolist():
            scaled, y = rescaled_solution(rev, logw, int(sources[i]), ordering, own_system=system is None)
            with np.errstate(divide="ignore", invalid="ignore"):
                row = np.log(y) - scaled.h
            row[~np.isfinite(scaled.h) | ~(y > 0)] = -np.inf
            out[i] = row
    return out
