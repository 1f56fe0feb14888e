"""Sparse LU of ``I - W`` that doubles as a convergence certificate.

``I - W`` with ``W >= 0`` is a nonsingular M-matrix exactly when the spectral radius
of ``W`` is below one, i.e. when the partition function is finite. Such a matrix
has an LU factorization without pivoting under any symmetric ordering, with all
pivots positive; if ``rho(W) >= 1`` some pivot is ``<= 0``. So the factorization we
need anyway tells us, for free, whether the model diverges.

The triangular solves of an M-matrix LU add only nonnegative terms, so every entry
of the solution is computed to high *relative* accuracy down to the float64
underflow threshold; callers only need to guard against underflow itself.

Performance notes (measured on 2 cores, see ``benchmarks/``):

* The hot paths work in the *internal* (fill-reducing) state order, with
  Fortran-ordered ``(n, m)`` blocks, so no solve copies or permutes its input.
* SuperLU releases the GIL in its solve, so right-hand sides are split across
  threads (how many: :mod:`maxent_irl.parallel`); BLAS threads are pinned to one
  meanwhile (nested BLAS threading makes SuperLU's solves many times slower).
  Factorizations all run on one owner thread, which also frees them: scipy frees a
  factor only in the thread that built it (:mod:`maxent_irl._factor_owner`).
* SuperLU's transposed solve handles one right-hand side at a time; for many
  right-hand sides it is faster to factorize ``(I - W)^T`` once more.
* Right-hand sides are passed in blocks of 8-64 columns: SuperLU's solve is
  memory-bound, and a block whose working set stays in cache is up to 2x faster.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pymetis
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from maxent_irl._factor_owner import FactorOwner, factor_owner
from maxent_irl.exceptions import InvalidParameterError, PartitionFunctionDivergedError
from maxent_irl.parallel import single_threaded_blas, solver_threads

__all__ = ["MMatrixLU", "fill_reducing_ordering"]

_MIN_COLUMNS_PER_THREAD = 4
#: Right-hand sides go to SuperLU in blocks of about this many bytes (2 to 3x faster than
#: one big block on small graphs, where a block then fits in the L2 cache).
_CACHE_BYTES = 1 << 20
#: Transposed solves with at least this many right-hand sides use a factorization of A^T.
TRANSPOSE_FACTOR_MIN_COLUMNS = 32


def fill_reducing_ordering(pattern: sp.spmatrix, method: str = "metis") -> np.ndarray:
    """A symmetric fill-reducing order (position -> state) for matrices with this sparsity pattern.

    The pattern of ``I - W`` depends only on the MDP, not on ``theta``, so the ordering is
    computed once and reused for every factorization during fitting. ``method``:

    * ``"metis"`` (default): METIS nested dissection of the symmetrized graph (pymetis).
      Road graphs are nearly planar, the case nested dissection is made for: on a
      300k-state grid its factors are about as large as minimum degree's, but the
      triangular solves, the cost of every likelihood evaluation, run about 1.5x faster
      (large dense separator blocks instead of scattered small supernodes).
    * ``"mmd"``: SuperLU's multiple minimum degree on ``A^T A``.
    """
    n = pattern.shape[0]
    P = abs(pattern).tocsr()
    if method == "metis":
        S = (P + P.T).tocsr()
        S.setdiag(0)
        S.eliminate_zeros()
        if S.nnz == 0:  # no edges: any order is fill-free
            return np.arange(n, dtype=np.int64)
        perm, _ = pymetis.nested_dissection(pymetis.CSRAdjacency(S.indptr.astype(np.int32),
                                                                 S.indices.astype(np.int32)))
        return np.asarray(perm, dtype=np.int64)  # METIS: perm[i] is the vertex at position i
    if method != "mmd":
        raise InvalidParameterError(f"unknown ordering method {method!r}: use 'metis' or 'mmd'")
    A = (sp.eye(n, format="csc") + P * (0.5 / max(1.0, float(P.sum(axis=1).max())))).tocsc()
    lu = sla.splu(A, permc_spec="MMD_ATA", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    # SuperLU's perm_c maps a state to its position; we keep the inverse too.
    order = np.empty(n, dtype=np.int64)
    order[lu.perm_c] = np.arange(n)
    return order


def _factorize(Ap: sp.csc_matrix) -> sla.SuperLU:
    n = Ap.shape[0]
    try:
        lu = sla.splu(Ap, permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    except RuntimeError as exc:  # exactly singular: rho(W) == 1 up to rounding
        raise PartitionFunctionDivergedError(f"I - W is singular ({exc}): the partition function is infinite") from exc
    pivoted = not np.array_equal(lu.perm_r, np.arange(n))
    pivots = lu.U.diagonal()
    if pivoted or not (np.all(pivots > 0) and np.all(np.isfinite(pivots))):
        del lu  # here, on the owner thread: a traceback must not carry the factor elsewhere
        if pivoted:
            raise PartitionFunctionDivergedError(
                "the LU met a zero pivot (it needed row pivoting): I - W is not a nonsingular M-matrix, so the "
                "spectral radius of W is >= 1 and the partition function is infinite (rewards are not negative enough)")
        raise PartitionFunctionDivergedError(
            f"a pivot of I - W is {float(np.min(pivots)):.3g} <= 0: the spectral radius of W is >= 1, so the "
            "partition function is infinite (rewards are not negative enough)"
        )
    return lu


class MMatrixLU:
    """LU factorization of ``A = I - W`` (``W >= 0``, sparse) under a fixed symmetric ordering.

    Raises :class:`PartitionFunctionDivergedError` if ``A`` is not a nonsingular
    M-matrix (``rho(W) >= 1``).

    ``perm`` ``(n,)`` maps internal positions to states and ``inv`` states to
    positions; :meth:`solve_internal` works in internal order (no copies),
    :meth:`solve` in state order.
    """

    def __init__(self, W: sp.spmatrix, ordering: np.ndarray | None = None, with_transpose: bool = False) -> None:
        n = W.shape[0]
        self.n = n
        self.perm = fill_reducing_ordering(W) if ordering is None else np.asarray(ordering, dtype=np.int64)
        self.inv = np.empty_like(self.perm)
        self.inv[self.perm] = np.arange(n)
        W = W.tocoo()
        Wp = sp.csc_matrix((W.data, (self.inv[W.row], self.inv[W.col])), shape=(n, n))
        self._Ap = (sp.eye(n, format="csc") - Wp).tocsc()
        self._lu = self._own(self._Ap)
        self._lu_t: tuple[FactorOwner, int] | None = None
        self._pid, self._transpose_lock = os.getpid(), threading.Lock()
        if with_transpose:
            self._factorize_transpose()

    def _own(self, Ap: sp.csc_matrix) -> tuple[FactorOwner, int]:
        """Factorize on the owner thread (see :mod:`maxent_irl._factor_owner`); freed there with this object."""
        owner = factor_owner()
        key = owner.reserve()
        owner.attach(self, key)  # before the build: an interruption cannot orphan the factor
        owner.build_into(key, _factorize, Ap)
        return owner, key

    def _factor(self, transposed: bool = False) -> sla.SuperLU:
        ref = self._lu_t if transposed else self._lu
        assert ref is not None, "the transposed factor is built before it is used"
        owner, key = ref
        return owner.get(key)

    def prepare_transposed_solves(self) -> None:
        """Factorize ``A^T`` too, so every transposed solve runs as a plain one (about 1.6x faster on a
        300k-state grid than SuperLU's transposed mode); for a model answering row queries (destinations)."""
        self._factorize_transpose()

    def _factorize_transpose(self) -> None:
        if self._pid != os.getpid():  # a forked child: the lock may have been held by a thread of the parent
            self._pid, self._transpose_lock = os.getpid(), threading.Lock()
        with self._transpose_lock:  # two threads may need it at once; build it once
            if self._lu_t is None:
                self._lu_t = self._own(self._Ap.T.tocsc())

    def solve_internal(self, B: np.ndarray, trans: bool = False) -> np.ndarray:
        """Solve ``A_p X = B`` (or the transpose) in internal order; ``B`` ``(n, m)``, returns ``(n, m)`` F-ordered."""
        B = np.asfortranarray(B, dtype=np.float64)
        m = B.shape[1]
        lu, mode = self._factor(), ("T" if trans else "N")
        if trans and (m >= TRANSPOSE_FACTOR_MIN_COLUMNS or self._lu_t is not None):
            self._factorize_transpose()
            lu, mode = self._factor(transposed=True), "N"
        threads = min(solver_threads(), max(1, m // _MIN_COLUMNS_PER_THREAD))
        block = int(np.clip(_CACHE_BYTES // (8 * self.n), 8, 64))
        out = np.empty_like(B, order="F")

        def work(a: int, b: int) -> None:
            for c in range(a, b, block):  # small blocks keep SuperLU's working set in cache
                e = min(b, c + block)
                out[:, c:e] = lu.solve(B[:, c:e], trans=mode)

        with single_threaded_blas():
            if threads == 1:
                work(0, m)
            else:
                bounds = np.linspace(0, m, threads + 1).astype(int)
                with ThreadPoolExecutor(threads) as pool:
                    list(pool.map(work, bounds[:-1], bounds[1:]))
        return out

    def solve(self, B: np.ndarray, trans: bool = False) -> np.ndarray:
        """Solve ``A X = B`` (or ``A^T X = B``) in state order for a ``(n,)`` or ``(n, m)`` right-hand side."""
        B = np.asarray(B, dtype=np.float64)
        X = self.solve_internal(B.reshape(self.n, -1)[self.perm], trans)[self.inv]
        return X[:, 0] if B.ndim == 1 else X
