"""Forward pass: expected transition counts of trips, reusing the backward factorization.

With ``M = (I - W)^-1`` and ``Z(s, d) = M[s, d]`` (trips may pass their destination and
end with a stop there, see :mod:`maxent_irl.soft_values`), the paths ``o -> d`` through
state ``s`` weigh ``M[o, s] M[s, d]``. So trips from origins ``o`` (counts ``c_o``) visit
``s`` ``x[s] * Z(s, d)`` times in expectation, with ``x = M^T u`` and
``u_o = c_o / Z(o, d)``: one transposed solve per destination with the LU of the
backward pass. A transition ``j`` is used ``x[src_j] * w_j * Z(dst_j, d)`` times.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from maxent_irl.mdp import RouteMDP
from maxent_irl.parallel import solver_threads
from maxent_irl.soft_values import DestinationBatch

__all__ = ["ForwardResult", "forward_pass"]

@dataclass
class ForwardResult:
    """``transitions`` ``(T,)`` expected transition counts; ``states`` ``(n,)`` expected visits (or None)."""

    transitions: np.ndarray
    states: np.ndarray | None


def forward_pass(
    mdp: RouteMDP,
    batch: DestinationBatch,
    origins: list[np.ndarray],
    counts: list[np.ndarray],
    with_states: bool = False,
) -> ForwardResult:
    """Expected counts summed over trips ``origins[k] -> batch.destinations[k]`` with multiplicities ``counts[k]``.

    A trip whose origin is its destination stops at once or drives a loop back to it.
    """
    E = np.zeros(mdp.n_transitions)
    visits_i = np.zeros(mdp.n_states) if with_states else None
    inv = batch.inv
    src_i, dst_i = inv[mdp.src], inv[mdp.dst]
    perm = np.empty_like(inv)
    perm[inv] = np.arange(inv.size)  # the batch's internal position -> state
    for sys_index, system in enumerate(batch.systems):
        cols = np.flatnonzero(batch.column_system == sys_index)
        if cols.size == 0 or system is None:
            continue
        R = np.zeros((mdp.n_states, cols.size), order="F")
        for i, k in enumerate(cols):
            o_i = inv[np.asarray(origins[k], dtype=np.int64)]
            c = np.asarray(counts[k], dtype=np.float64)
            np.add.at(R[:, i], o_i, c / batch.Z[o_i, k])
        to_sys = system.lu.inv[perm]  # a rescaled system may have its own internal order
        if np.array_equal(to_sys, np.arange(inv.size)):
            X = system.lu.solve_internal(R, trans=True)
        else:
            R_sys = np.empty_like(R)
            R_sys[to_sys] = R
            X = system.lu.solve_internal(R_sys, trans=True)[to_sys]
        acc = _sum_products(X, batch.Z, cols, src_i, dst_i)
        if visits_i is not None:
            visits_i += np.einsum("ij,ij->i", X, batch.Z[:, cols])
        E += system.w * acc
    return ForwardResult(E, None if visits_i is None else visits_i[inv])


def _sum_products(X: np.ndarray, Z: np.ndarray, cols: np.ndarray, src_i: np.ndarray, dst_i: np.ndarray) -> np.ndarray:
    """``(T,)`` ``sum_i X[src_j, i] * Z[dst_j, cols[i]]``, columns split across threads.

    Column by column on Fortran-ordered blocks keeps every gather inside one
    contiguous column; numpy releases the GIL in these loops.
    """

    def work(a: int, b: int) -> np.ndarray:
        acc = np.zeros(src_i.size)
        for i in range(a, b):
            acc += X[src_i, i] * Z[dst_i, cols[i]]
        return acc

    threads = min(solver_threads(), max(1, cols.size // 8))
    if threads == 1:
        return work(0, cols.size)
    bounds = np.linspace(0, cols.size, threads + 1).astype(int)
    with ThreadPoolExecutor(threads) as pool:
        total: np.ndarray = np.sum(list(pool.map(work, bounds[:-1], bounds[1:])), axis=0)
        return total
