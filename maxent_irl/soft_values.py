"""Backward pass: partition functions ``Z(s, d)`` / soft values ``V(s; d) = alpha log Z(s, d)``.

Notation (shapes): ``n`` states, ``T`` transitions, ``D`` destinations.
``logw`` ``(T,)`` is the log weight of each transition, ``r / alpha + log pi0``;
``W`` is the ``(n, n)`` matrix with ``exp(logw[j])`` at ``(src[j], dst[j])``.

Exact, without a horizon: with ``M = (I - W)^-1`` (one sparse LU for all
destinations), ``y = M e_d`` sums the weights of *all* paths to ``d``, including
those that pass through ``d`` and come back. Every such path is a first-passage
path followed by a loop ``d -> d``, so the absorbing partition function is
``Z(s, d) = y[s] / y[d]``.

Underflow: ``Z`` shrinks like ``exp(-cost)`` and is 0 in float64 beyond ~700 nats.
Where an entry a caller needs is below :data:`TINY`, that destination is solved
again in a rescaled system ``W~ = D W D^-1`` with ``D = diag(exp(h))`` and ``h``
the hard (shortest-path) cost to ``d``: its entries are ``<= 1``, ``Z~ = Z e^h`` is
``>= 1`` where reachable, and ``log Z = log Z~ - h`` is exact in log space. The
similarity keeps every identity below (forward pass included) unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from maxent_irl.exceptions import InvalidParameterError, PartitionFunctionDivergedError, UnreachableDestinationError
from maxent_irl.linsolve import MMatrixLU
from maxent_irl.mdp import RouteMDP

__all__ = [
    "TINY",
    "DestinationBatch",
    "LinearSystem",
    "cost_to_destination",
    "global_system",
    "rescaled_system",
    "shortest_path",
    "solve_destinations",
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


def global_system(
    mdp: RouteMDP, logw: np.ndarray, ordering: np.ndarray | None = None, with_transpose: bool = False
) -> LinearSystem:
    """Factorize ``I - W`` once; raises :class:`PartitionFunctionDivergedError` if ``rho(W) >= 1``.

    ``with_transpose`` also factorizes ``(I - W)^T``, for forward
    passes with many destinations.
    """
    if np.any(np.isnan(logw)):
        raise InvalidParameterError("transition log weights contain NaN (theta or features not finite)")
    if np.any(logw > _LOG_MAX):
        raise PartitionFunctionDivergedError(
            f"a transition weight exp({float(logw.max()):.1f}) overflows: rewards are far too positive"
        )
    return _system(mdp, np.exp(logw), np.zeros(mdp.n_states), ordering, with_transpose)


def cost_to_destination(mdp: RouteMDP, cost: np.ndarray, destination: int) -> np.ndarray:
    """``(n,)`` cheapest path cost from every state to ``destination`` (``inf`` if unreachable).

    Uses Dijkstra, or Johnson's algorithm when some costs are negative; a cycle of
    negative cost means the partition function diverges.
    """
    finite = np.isfinite(cost)
    reverse = sp.csr_matrix(
        (cost[finite], (mdp.dst[finite], mdp.src[finite])), shape=(mdp.n_states, mdp.n_states)
    )
    if np.any(cost[finite] < 0):
        try:
            return csgraph.johnson(reverse, directed=True, indices=destination)
        except csgraph.NegativeCycleError as exc:
            raise PartitionFunctionDivergedError("a cycle has positive total reward: Z is infinite") from exc
    return csgraph.dijkstra(reverse, directed=True, indices=destination)


def shortest_path(mdp: RouteMDP, cost: np.ndarray, origin: int, destination: int) -> np.ndarray:
    """The cheapest path ``origin -> destination`` under per-transition ``cost`` ``(T,)`` (``inf`` = forbidden).

    The ``alpha -> 0`` limit of the soft model. Dijkstra, or Johnson's algorithm when
    some costs are negative (a negative cycle means the soft model diverges).
    """
    o, d = int(origin), int(destination)
    if o == d:
        return np.array([o])
    finite = np.isfinite(cost)
    graph = sp.csr_matrix((cost[finite], (mdp.src[finite], mdp.dst[finite])), shape=(mdp.n_states,) * 2)
    try:
        method = "J" if np.any(cost[finite] < 0) else "D"
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
    mdp: RouteMDP, logw: np.ndarray, destination: int, ordering: np.ndarray | None = None
) -> LinearSystem:
    """The system for one destination rescaled by its shortest-path potential (log-space exact)."""
    h = cost_to_destination(mdp, -logw, destination)
    reach = np.isfinite(h)
    ok = reach[mdp.src] & reach[mdp.dst] & np.isfinite(logw)
    w = np.zeros(mdp.n_transitions)
    w[ok] = np.exp(np.minimum(logw[ok] + h[mdp.src[ok]] - h[mdp.dst[ok]], 0.0))
    return _system(mdp, w, h, ordering)


@dataclass
class DestinationBatch:
    """Backward-pass solution for a batch of destinations.

    ``Z[i, k]`` ``(n, D)`` (Fortran order, rows in the *internal* state order
    ``inv``) holds ``Z~(s, d_k) = Z(s, d_k) e^{h(s)}`` for ``s = perm[i]``, in the
    frame of system ``systems[column_system[k]]`` (system 0 is the global one,
    where ``h = 0``).
    """

    destinations: np.ndarray
    Z: np.ndarray
    systems: list[LinearSystem]
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
            out = np.log(z) - h
        out[~np.isfinite(h) | (z <= 0)] = -np.inf
        return out

    def log_z_column(self, k: int) -> np.ndarray:
        """``(n,)`` ``log Z(s, d_k)`` for every state in state order (``-inf`` where unreachable)."""
        h = self.systems[self.column_system[k]].h
        z = self.Z[self.inv, k]
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.log(z) - h
        out[~np.isfinite(h) | (z <= 0)] = -np.inf
        return out


def solve_destinations(
    mdp: RouteMDP,
    logw: np.ndarray,
    system: LinearSystem,
    destinations: np.ndarray,
    needed_rows: list[np.ndarray] | None = None,
    ordering: np.ndarray | None = None,
) -> DestinationBatch:
    """Backward pass for ``destinations`` ``(D,)``: ``Z(., d)`` for all of them in one multi-RHS solve.

    ``needed_rows[k]`` lists the states whose ``Z(s, d_k)`` the caller will use; if
    any of them underflows (``< TINY``), destination ``k`` is re-solved in its
    rescaled system (exact in log space).
    """
    destinations = np.asarray(destinations, dtype=np.int64)
    D = destinations.size
    n = mdp.n_states
    inv = system.lu.inv
    d_i = inv[destinations]
    rhs = np.zeros((n, D), order="F")
    rhs[d_i, np.arange(D)] = 1.0
    Z = system.lu.solve_internal(rhs) if D else rhs
    diag = Z[d_i, np.arange(D)]
    if np.any(~(diag >= 1.0 - 1e-9)):
        raise PartitionFunctionDivergedError("M[d, d] < 1 for some destination: I - W is numerically singular")
    Z /= diag
    systems = [system]
    column_system = np.zeros(D, dtype=np.int64)
    if needed_rows is not None:
        for k in range(D):
            rows = needed_rows[k]
            if rows.size and np.any(Z[inv[rows], k] < TINY):
                scaled = rescaled_system(mdp, logw, int(destinations[k]), system.lu.perm)
                e = np.zeros((n, 1))
                e[d_i[k], 0] = 1.0
                y = scaled.lu.solve_internal(e)[:, 0]
                Z[:, k] = y / y[d_i[k]]
                column_system[k] = len(systems)
                systems.append(scaled)
    return DestinationBatch(destinations, Z, systems, column_system, inv)
