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

from dataclasses import dataclass

import numpy as np

from maxent_irl.mdp import RouteMDP
from maxent_irl.soft_values import DestinationBatch

__all__ = ["ForwardResult", "forward_pass"]

_TRANSITION_CHUNK = 1 << 17


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
    visits = np.zeros(mdp.n_states) if with_states else None
    for sys_index, system in enumerate(batch.systems):
        cols = np.flatnonzero(batch.column_system == sys_index)
        if cols.size == 0:
            continue
        n = mdp.n_states
        R = np.zeros((n, cols.size))
        totals = np.zeros(cols.size)
        dests = batch.destinations[cols]
        for i, k in enumerate(cols):
            o = np.asarray(origins[k], dtype=np.int64)
            c = np.asarray(counts[k], dtype=np.float64)
            keep = o != batch.destinations[k]
            o, c = o[keep], c[keep]
            np.add.at(R[:, i], o, c / batch.Z[o, k])
            totals[i] = c.sum()
        R[dests, np.arange(cols.size)] -= totals
        X = system.lu.solve(R, trans=True)
        X[dests, np.arange(cols.size)] = 0.0  # the trip ends at d: no transition leaves it
        Zc = batch.Z if cols.size == batch.Z.shape[1] else batch.Z[:, cols]
        for a in range(0, mdp.n_transitions, _TRANSITION_CHUNK):
            b = min(a + _TRANSITION_CHUNK, mdp.n_transitions)
            E[a:b] += system.w[a:b] * np.einsum("ij,ij->i", X[mdp.src[a:b]], Zc[mdp.dst[a:b]])
        if visits is not None:
            visits += np.einsum("ij,ij->i", X, Zc)
            np.add.at(visits, dests, totals)
    return ForwardResult(E, visits)
