"""Slow reference implementations, kept to check and benchmark the fast passes against.

* :func:`enumerate_paths` - brute force over every path (tiny graphs only).
* :func:`algorithm1_log_likelihood_and_gradient` - Ziebart et al. (2008), Algorithm 1:
  a fixed number ``N`` of backward and forward iterations per destination.
* :func:`log_space_partition` - value iteration in log space (no underflow, slow).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

from maxent_irl.mdp import RouteMDP
from maxent_irl.objective import TripSet

__all__ = ["algorithm1_log_likelihood_and_gradient", "enumerate_paths", "log_space_partition"]


def enumerate_paths(
    mdp: RouteMDP, origin: int, destination: int, max_len: int
) -> Iterator[tuple[list[int], np.ndarray]]:
    """Every path ``origin -> destination`` with at most ``max_len`` transitions, with its transition indices.

    A trip may pass its destination before it ends there, so a path that arrives at
    ``destination`` is yielded and also continued.
    """
    succ: dict[int, list[tuple[int, int]]] = {}
    for j, (s, t) in enumerate(zip(mdp.src.tolist(), mdp.dst.tolist(), strict=True)):
        succ.setdefault(s, []).append((j, t))
    stack: list[tuple[list[int], list[int]]] = [([origin], [])]
    while stack:
        states, trans = stack.pop()
        if states[-1] == destination:
            yield states, np.array(trans, dtype=np.int64)
        if len(trans) >= max_len:
            continue
        for j, t in succ.get(states[-1], []):
            stack.append(([*states, t], [*trans, j]))


def algorithm1_log_likelihood_and_gradient(
    mdp: RouteMDP, trips: TripSet, logw: np.ndarray, n_iter: int
) -> tuple[float, np.ndarray]:
    """Log-likelihood and gradient by Ziebart's Algorithm 1 with horizon ``n_iter``.

    Backward: ``Z <- e_d + W Z`` (``N`` times, all destinations at once as a dense
    ``(n, D)`` block; the ``e_d`` term is the stop at ``d``, where trips may also drive on);
    local policy ``P(a | s) = w_a Z(s') / Z(s)``; forward: ``D_{t+1} = P^T D_t`` from the
    origins, summed over ``t``. Underflows where the fast passes do not: that is what it
    is kept to show.
    """
    n = mdp.n_states
    W = sp.csr_matrix((np.exp(logw), (mdp.src, mdp.dst)), shape=(n, n))
    dests = np.unique(trips.pair_dest)
    col = np.searchsorted(dests, trips.pair_dest)
    D = dests.size
    Z = np.zeros((n, D))
    Z[dests, np.arange(D)] = 1.0
    for _ in range(n_iter):
        Z = W @ Z
        Z[dests, np.arange(D)] += 1.0
    # forward: expected visits per destination column, starting from the trip origins
    start = np.zeros((n, D))
    np.add.at(start, (trips.pair_origin, col), trips.pair_count)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_z = np.where(Z > 0, 1.0 / Z, 0.0)
    Dt = start * inv_z  # D_t / Z: the policy's normalization folded in
    visits = Dt.copy()
    WT = W.T.tocsr()
    for _ in range(n_iter):
        Dt = WT @ Dt
        visits += Dt
    # visits[s] * Z[s] is the expected number of visits; transition j used x[src] w_j Z[dst] times
    E = np.exp(logw) * np.einsum("ij,ij->i", visits[mdp.src], Z[mdp.dst])
    with np.errstate(divide="ignore"):
        log_z = np.log(Z[trips.pair_origin, col])
    ll = float(trips.transition_counts @ logw - trips.pair_count @ log_z)
    grad = mdp.features.T @ (trips.transition_counts - E)
    return ll, grad


def log_space_partition(mdp: RouteMDP, logw: np.ndarray, destination: int, tol: float = 1e-13,
                        max_iter: int = 1_000_000) -> np.ndarray:
    """``(n,)`` ``log Z(s, d)`` by value iteration in log space until entrywise convergence:
    ``Z <- e_d + W Z`` (the stop at ``d``, or a transition on)."""
    n = mdp.n_states
    v = np.full(n, -np.inf)
    v[destination] = 0.0
    src, dst, lw = mdp.src, mdp.dst, logw
    order = np.argsort(src, kind="stable")
    src, dst, lw = src[order], dst[order], lw[order]
    starts = np.searchsorted(src, np.arange(n))
    has = np.bincount(src, minlength=n) > 0
    for _ in range(max_iter):
        terms = lw + v[dst]
        new = np.full(n, -np.inf)
        if terms.size:
            red = np.full(n, -np.inf)
            mx = np.maximum.reduceat(terms, starts[has]) if has.any() else np.array([])
            red[has] = mx
            shifted = np.exp(terms - np.where(np.isfinite(red[src]), red[src], 0.0))
            sums = np.add.reduceat(shifted, starts[has]) if has.any() else np.array([])
            with np.errstate(divide="ignore"):
                new[has] = np.where(np.isfinite(mx), mx + np.log(sums), -np.inf)
        new[destination] = np.logaddexp(new[destination], 0.0)
        fin = np.isfinite(new)
        close = np.all(np.abs(new[fin] - v[fin]) <= tol * np.maximum(1, np.abs(new[fin])))
        if np.array_equal(fin, np.isfinite(v)) and close:
            return new
        v = new
    return v


