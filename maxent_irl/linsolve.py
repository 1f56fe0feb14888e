"""Sparse LU of ``I - W`` that doubles as a convergence certificate.

``I - W`` with ``W >= 0`` is a nonsingular M-matrix exactly when the spectral radius
of ``W`` is below one, i.e. when the partition function is finite. Such a matrix
has an LU factorization without pivoting under any symmetric ordering, with all
pivots positive; if ``rho(W) >= 1`` some pivot is ``<= 0``. So the factorization we
need anyway tells us, for free, whether the model diverges.

The triangular solves of an M-matrix LU add only nonnegative terms, so every entry
of the solution is computed to high *relative* accuracy down to the float64
underflow threshold; callers only need to guard against underflow itself.

SuperLU releases the GIL in its solve, so many right-hand sides are split across
threads (one per core); BLAS threads are pinned to one meanwhile, since nested BLAS
threading makes SuperLU's solves much slower on small machines.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla
from threadpoolctl import threadpool_limits

from maxent_irl.exceptions import PartitionFunctionDivergedError

__all__ = ["MMatrixLU", "fill_reducing_ordering", "n_solver_threads"]

_MIN_COLUMNS_PER_THREAD = 8


def n_solver_threads() -> int:
    """Threads used for multi-RHS solves: ``ROUTEIRL_SOLVER_THREADS`` or the CPU count (max 8)."""
    env = os.environ.get("ROUTEIRL_SOLVER_THREADS")
    if env:
        return max(1, int(env))
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def fill_reducing_ordering(pattern: sp.spmatrix) -> np.ndarray:
    """A symmetric fill-reducing permutation for matrices with this sparsity pattern.

    The pattern of ``I - W`` depends only on the MDP, not on ``theta``, so the
    ordering is computed once (SuperLU's MMD on ``A^T A``) and reused for every
    factorization during fitting.
    """
    n = pattern.shape[0]
    A = (sp.eye(n, format="csc") + abs(pattern).tocsc() * 0.5 / max(1.0, abs(pattern).sum(axis=1).max())).tocsc()
    lu = sla.splu(A, permc_spec="MMD_ATA", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    return np.asarray(lu.perm_c, dtype=np.int64)


class MMatrixLU:
    """LU factorization of ``A = I - W`` (``W >= 0``, sparse) under a fixed symmetric ordering.

    Raises :class:`PartitionFunctionDivergedError` if ``A`` is not a nonsingular
    M-matrix (``rho(W) >= 1``).

    Parameters
    ----------
    W:
        ``(n, n)`` sparse nonnegative matrix.
    ordering:
        ``(n,)`` permutation from :func:`fill_reducing_ordering` (computed here if omitted).
    """

    def __init__(self, W: sp.spmatrix, ordering: np.ndarray | None = None) -> None:
        n = W.shape[0]
        if ordering is None:
            ordering = fill_reducing_ordering(W)
        self.n = n
        self._perm = ordering
        self._inv = np.empty_like(ordering)
        self._inv[ordering] = np.arange(n)
        A = (sp.eye(n, format="csr") - W.tocsr()).tocsr()
        Ap = A[ordering][:, ordering].tocsc()
        try:
            self._lu = sla.splu(Ap, permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
        except RuntimeError as exc:  # exactly singular: rho(W) == 1 up to rounding
            raise PartitionFunctionDivergedError(f"I - W is singular ({exc}): the partition function is infinite") from exc
        if not np.array_equal(self._lu.perm_r, np.arange(n)):
            raise PartitionFunctionDivergedError("the LU needed row pivoting: I - W is not a nonsingular M-matrix")
        pivots = self._lu.U.diagonal()
        if not np.all(pivots > 0) or not np.all(np.isfinite(pivots)):
            raise PartitionFunctionDivergedError(
                f"a pivot of I - W is {float(np.min(pivots)):.3g} <= 0: the spectral radius of W is >= 1, so the "
                "partition function is infinite (rewards are not negative enough)"
            )

    def solve(self, B: np.ndarray, trans: bool = False) -> np.ndarray:
        """Solve ``A X = B`` (or ``A^T X = B``) for a ``(n,)`` or ``(n, m)`` right-hand side."""
        B = np.asarray(B, dtype=np.float64)
        vector = B.ndim == 1
        Bp = B[self._perm].reshape(self.n, -1)
        mode = "T" if trans else "N"
        m = Bp.shape[1]
        threads = min(n_solver_threads(), max(1, m // _MIN_COLUMNS_PER_THREAD))
        with threadpool_limits(1, user_api="blas"):
            if threads == 1:
                Xp = self._lu.solve(np.asfortranarray(Bp), trans=mode)
            else:
                bounds = np.linspace(0, m, threads + 1).astype(int)
                chunks = [np.asfortranarray(Bp[:, a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
                with ThreadPoolExecutor(threads) as pool:
                    parts = list(pool.map(lambda c: self._lu.solve(c, trans=mode), chunks))
                Xp = np.hstack(parts)
        X = Xp[self._inv]
        return X[:, 0] if vector else X
