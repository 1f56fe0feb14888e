"""Forward pass: expected transition counts of trips, reusing the backward factorization.

For destination ``d`` the model is the chain with ``d`` absorbing, i.e. ``W`` with
row ``d`` removed (``W_-d``). Trips from origins ``o`` (counts ``c_o``) visit state
``s`` ``x[s] * Z(s, d)`` times in expectation, where ``x = G^T u``,
``G = (I - W_-d)^-1`` and ``u_o = c_o / Z(o, d)``. Since every one of the ``N``
trips reaches ``d`` once, ``x[d] = N``, which turns the system into one with the
*unmodified* matrix: ``x = M^T (u - N e_d) + N e_d`` with ``M = (I - W)^-1``. So the
forward pass is one transposed solve per destination with the LU of the backward
pass, and a transition ``j`` (leaving ``s != d``) is used
``x[src_j] * w_j * Z(dst_j, d)`` times in expectation.
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

    Trips whose origin is their destination use no transition and are ignored.
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
        totals = np.zeros(cols.size)
        d_i = inv[batch.destinations[cols]]
        for i, k in enumerate(cols):
            o = np.asarray(origins[k], dtype=np.int64)
            c = np.asarray(counts[k], dtype=np.float64)
            keep = o != batch.destinations[k]
            o_i, c = inv[o[keep]], c[keep]
            np.add.at(R[:, i], o_i, c / batch.Z[o_i, k])
            totals[i] = c.sum()
        R[d_i, np.arange(cols.size)] -= totals
        to_sys = system.lu.inv[perm]  # a rescaled system may have its own internal order
        if np.array_equal(to_sys, np.arange(inv.size)):
            X = system.lu.solve_internal(R, trans=True)
        else:
            R_sys = np.empty_like(R)
            R_sys[to_sys] = R
            X = system.lu.solve_internal(R_sys, trans=True)[to_sys]
        X[d_i, np.arange(cols.size)] = 0.0  # the trip ends at d: no transition leaves it
        acc = _sum_products(X, batch.Z, cols, src_i, dst_i)
        if visits_i is not None:
            visits_i += np.einsum("ij,ij->i", X, batch.Z[:, cols])
        E += system.w * acc
        if visits_i is not None:
            np.add.at(visits_i, d_i, totals)
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
