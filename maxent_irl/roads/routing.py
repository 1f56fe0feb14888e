"""Shortest paths over the segment graph, with cached Dijkstra rows.

Map matching asks for route distances between many pairs of candidate segments; the
same sources come back trace after trace, so rows are cached within a memory budget,
in one of two layouts:

* dense, when every state's full row fits in the budget (small networks: Andorra's
  2,366 states take ~45 MB): one full Dijkstra per source, kept for good and read by
  direct indexing, the fastest there is;
* sparse, otherwise: callers say how far they need to look (``limit_m``; map matching
  never needs a route much longer than the straight line), the search stops there, and
  a row keeps only the states it reached, with the limit it was computed for. On a
  100k-state grid a full row costs ~12 ms and 1.2 MB, a 700 m one ~0.15 ms and ~5 kB,
  so the cost follows the trace, not the size of the network.

Either way :meth:`Router.pair_distances` returns a distance beyond the ``limit_m`` asked
for as ``inf``, whatever is cached, so results never depend on what was asked before;
:meth:`Router.pair_distances_reached` returns all a search found and how far it looked.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

__all__ = ["Router"]

_NO_PRED = -9999  # scipy's marker
_MAX_BATCH_BYTES = 32 * 2**20  # scipy returns dense (sources, n) arrays: bound them per call
_MIN_LIMIT_M = 64.0
_PATH_LIMIT_M = 2000.0  # first reach of a shortest-path search no cached row answers (x8 until found)
_MAX_FINITE_LIMIT_M = 1e6


@dataclass(frozen=True, slots=True)
class _Row:
    """The states one bounded search reached (sorted), their distances and predecessors."""

    limit: float
    idx: np.ndarray
    dist: np.ndarray
    pred: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.idx.nbytes + self.dist.nbytes + self.pred.nbytes) + 200


class Router:
    """Distances between segments: ``dist(a, b)`` = length of the segments entered after ``a``, ``b`` included.

    Parameters
    ----------
    src, dst, length_m:
        The MDP's transitions and each state's length; transition ``a -> b`` weighs ``length_m[b]``
        (plus ``extra_cost[j]`` for transition ``j`` if given, e.g. a U-turn penalty).
    limit_m:
        No search goes beyond this distance (``inf`` entries beyond it); ``None`` = no limit.
    max_cache_bytes:
        Memory for cached rows. If a full row for every state fits (8 bytes per state
        per row), rows are dense and complete; otherwise sparse and bounded (module docstring).
    """

    def __init__(
        self,
        src: np.ndarray,
        dst: np.ndarray,
        length_m: np.ndarray,
        limit_m: float | None = None,
        max_cache_bytes: int = 256 * 2**20,
        extra_cost: np.ndarray | None = None,
    ) -> None:
        self.n = len(length_m)
        self.length_m = np.asarray(length_m, dtype=float)
        w = self.length_m[dst] if extra_cost is None else self.length_m[dst] + np.asarray(extra_cost, dtype=float)
        self.graph = sp.csr_matrix((w, (src, dst)), shape=(self.n, self.n))
        self.limit_m = np.inf if limit_m is None else float(limit_m)
        self.max_cache_bytes = int(max_cache_bytes)
        #: True: full rows for every state fit in the cache; False: searches stop at the ``limit_m`` asked for.
        self.dense = 8 * self.n * self.n <= self.max_cache_bytes
        self._batch = int(max(1, _MAX_BATCH_BYTES // (12 * self.n)))
        # dense layout: (n, n) arrays, allocated on first use (np.empty: pages are touched only when written)
        self._dist = np.empty((0, self.n), dtype=np.float32)
        self._pred = np.empty((0, self.n), dtype=np.int32)
        self._have = np.zeros(self.n, dtype=bool)
        self._seen = np.zeros(self.n if self.dense else 0, dtype=bool)  # sources asked about by recurrent()
        # sparse layout: least recently used first; rows of one lookup are held at once, so at
        # most this many sources per lookup even if every row were complete (16 bytes per entry)
        self._rows: OrderedDict[int, _Row] = OrderedDict()
        self._bytes = 0
        self._chunk = int(max(1, self.max_cache_bytes // (2 * 16 * self.n)))
        self._lock = threading.Lock()  # matchers on several threads share one router

    # ------------------------------------------------------------------ public
    def pair_distances(self, a: np.ndarray, b: np.ndarray, limit_m: float | np.ndarray | None = None) -> np.ndarray:
        """``dist(a[i], b[i])`` for arrays of states (same shape); ``inf`` if beyond ``limit_m`` or unreachable.

        ``limit_m``: a distance, or one per pair, beyond which the caller has no use for
        the value; ``None`` = the router's limit. On a large network it bounds the work.
        """
        dist, _, lim = self._lookup(a, b, limit_m)
        dist[dist > lim] = np.inf
        return dist

    def pair_distances_reached(
        self, a: np.ndarray, b: np.ndarray, limit_m: float | np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`pair_distances`, but with every distance the searches found, even beyond ``limit_m``.

        Returns ``(dist, reach)``: a finite ``dist`` is exact; an ``inf`` one means farther
        than ``reach`` (``>= limit_m``, more if a cached row looked farther) or unreachable.
        A bounded caller can then tell which values it knows and bound the others.
        """
        dist, reach, _ = self._lookup(a, b, limit_m)
        return dist, reach

    def _lookup(
        self, a: np.ndarray, b: np.ndarray, limit_m: float | np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a = np.asarray(a, dtype=np.int64)
        b = np.asarray(b, dtype=np.int64)
        if a.shape != b.shape:
            raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
        lim = np.full(a.shape, self.limit_m) if limit_m is None else np.minimum(limit_m, self.limit_m)
        lim = np.array(np.broadcast_to(np.asarray(lim, dtype=float), a.shape))
        if np.isnan(lim).any():
            raise ValueError("limit_m must not be NaN")
        flat_a, flat_b = a.ravel(), b.ravel()
        out = np.full(a.shape, np.inf)
        reach = np.full(a.shape, self.limit_m)
        if flat_a.size:
            with self._lock:
                if self.dense:
                    self._ensure_dense(np.unique(flat_a))
                    out.reshape(-1)[:] = self._dist[flat_a, flat_b]
                else:
                    self._sparse_lookup(flat_a, flat_b, lim.reshape(-1), out.reshape(-1), reach.reshape(-1))
        return out, reach, lim

    def recurrent(self, sources: np.ndarray) -> bool:
        """Whether every source has a complete cached row or was marked by :meth:`mark_seen` (dense rows only).

        Lets a caller with a cheaper one-off method (map matching's corridor searches)
        reserve complete rows, which cost a search of the whole network but are then kept,
        for the sources that come back: the steady state of a service matching trace after
        trace on one network. Always False for sparse rows.
        """
        if not self.dense:
            return False
        sources = np.asarray(sources, dtype=np.int64)
        with self._lock:
            return bool(np.all(self._have[sources] | self._seen[sources]))

    def covered(self, sources: np.ndarray, need: np.ndarray) -> np.ndarray:
        """Per source, whether a cached sparse row answers it up to ``need[i]`` metres (all False for dense rows)."""
        out = np.zeros(len(sources), dtype=bool)
        if self.dense:
            return out
        with self._lock:
            for i, (s, lim) in enumerate(zip(np.asarray(sources).tolist(), np.asarray(need, dtype=float).tolist(),
                                             strict=True)):
                row = self._rows.get(s)
                out[i] = row is not None and row.limit >= lim
        return out

    def store_rows(
        self, idx: np.ndarray, sources: np.ndarray, dist: np.ndarray, pred: np.ndarray, limits: np.ndarray
    ) -> None:
        """Cache rows searched on a subgraph (sparse layout only): exact up to ``limits[i]`` from ``sources[i]``.

        ``idx``: the subgraph's states (global ids, sorted); ``dist`` / ``pred``: one row per
        source over them, predecessors in local ids (``-9999``: none). The caller certifies
        that every state within ``limits[i]`` of the source in the whole graph is in the
        subgraph with the same distance (map matching's corridors do). A cached row that
        reaches farther is kept.
        """
        if self.dense:
            return
        idx = np.asarray(idx, dtype=np.int64)
        sources, limits = np.asarray(sources).tolist(), np.asarray(limits, dtype=float)
        with self._lock:
            new = [k for k, s in enumerate(sources) if limits[k] > 0 and (
                (old := self._rows.get(s)) is None or old.limit < limits[k])]
            if not new:
                return
            r, c = np.nonzero(dist[new] <= limits[new][:, None])  # row-major: each row's states sorted, as idx is
            d = dist[new][r, c]
            p = pred[new][r, c]
            gidx = idx[c].astype(np.int32)
            gpred = np.where(p >= 0, idx[np.maximum(p, 0)], _NO_PRED).astype(np.int32)
            bounds = np.searchsorted(r, np.arange(len(new) + 1))
            for j, k in enumerate(new):
                a, b = bounds[j], bounds[j + 1]
                row = _Row(float(limits[k]), gidx[a:b].copy(), d[a:b].copy(), gpred[a:b].copy())
                old = self._rows.pop(sources[k], None)
                if old is not None:
                    self._bytes -= old.nbytes
                self._rows[sources[k]] = row
                self._bytes += row.nbytes
            while self._bytes > self.max_cache_bytes and len(self._rows) > 1:
                self._bytes -= self._rows.popitem(last=False)[1].nbytes

    def mark_seen(self, sources: np.ndarray) -> None:
        """Remember these sources for :meth:`recurrent` (no-op for sparse rows)."""
        if self.dense:
            with self._lock:
                self._seen[np.asarray(sources, dtype=np.int64)] = True

    def shortest_path(self, a: int, b: int) -> np.ndarray:
        """States of the shortest path from ``a`` to ``b``, both included (``[a]`` if equal)."""
        a, b = int(a), int(b)
        if a == b:
            return np.array([a], dtype=np.int64)
        with self._lock:
            pred_of = self._dense_pred(a, b) if self.dense else self._sparse_pred(a, b)
        out = [b]
        cur = b
        while cur != a:
            cur = pred_of(cur)
            if cur == _NO_PRED:
                raise ValueError(f"no path from state {a} to state {b}")
            out.append(cur)
            if len(out) > self.n + 1:  # defensive: a corrupt row must not loop forever
                raise RuntimeError("predecessor cycle")
        return np.array(out[::-1], dtype=np.int64)

    # ------------------------------------------------------------------ dense rows
    def _ensure_dense(self, sources: np.ndarray) -> None:
        missing = sources[~self._have[sources]]
        if not missing.size:
            return
        if self._dist.shape[0] == 0:
            self._dist = np.empty((self.n, self.n), dtype=np.float32)
            self._pred = np.empty((self.n, self.n), dtype=np.int32)
        for start in range(0, missing.size, self._batch):
            part = missing[start : start + self._batch]
            d, p = dijkstra(self.graph, directed=True, indices=part, return_predecessors=True, limit=self.limit_m)
            self._dist[part] = d
            self._pred[part] = p
            self._have[part] = True

    def _dense_pred(self, a: int, b: int) -> Callable[[int], int]:
        self._ensure_dense(np.array([a]))
        pred = self._pred[a].copy()
        if pred[b] == _NO_PRED:  # beyond the router's limit (or unreachable): search without one
            _, pred = dijkstra(self.graph, directed=True, indices=a, return_predecessors=True)
        return lambda v: int(pred[v])

    # ------------------------------------------------------------------ sparse rows
    def _sparse_lookup(
        self, flat_a: np.ndarray, flat_b: np.ndarray, lim: np.ndarray, out: np.ndarray, reach: np.ndarray
    ) -> None:
        """Fill ``out`` (and ``reach``) from rows reaching at least as far as each source's farthest pair needs."""
        uniq, inv = np.unique(flat_a, return_inverse=True)
        need = np.zeros(uniq.size)
        np.maximum.at(need, inv, lim)
        order = np.argsort(inv, kind="stable")
        bounds = np.searchsorted(inv[order], np.arange(0, uniq.size + self._chunk, self._chunk))
        for c, start in enumerate(range(0, uniq.size, self._chunk)):
            rows = self._sparse_rows(uniq[start : start + self._chunk], need[start : start + self._chunk])
            sel = order[bounds[c] : bounds[c + 1]]
            reach[sel] = np.array([r.limit for r in rows])[inv[sel] - start]
            # one sorted key per (row, reached state): a single searchsorted answers every pair
            keys = np.concatenate([k * self.n + r.idx.astype(np.int64) for k, r in enumerate(rows)])
            vals = np.concatenate([r.dist for r in rows])
            if not keys.size:
                continue
            q = (inv[sel] - start) * self.n + flat_b[sel]
            pos = np.minimum(np.searchsorted(keys, q), keys.size - 1)
            out[sel] = np.where(keys[pos] == q, vals[pos], np.inf)

    def _sparse_rows(self, sources: np.ndarray, need: np.ndarray) -> list[_Row]:
        """Cached rows of ``sources`` that reach ``need`` metres, computing the missing ones."""
        rows: list[_Row | None] = []
        missing = []
        for i, s in enumerate(sources.tolist()):
            row = self._rows.get(s)
            if row is not None and row.limit >= need[i]:
                self._rows.move_to_end(s)
            else:
                row = None
                missing.append(i)
            rows.append(row)
        if missing:
            miss = np.asarray(missing)
            # rounded up to steps of 2^(1/4), so later requests of similar reach reuse the row
            q = np.minimum(self.limit_m, 2.0 ** (np.ceil(4.0 * np.log2(np.maximum(need[miss], _MIN_LIMIT_M))) / 4.0))
            by_limit = np.argsort(q, kind="stable")
            miss, q = miss[by_limit], q[by_limit]
            for start in range(0, miss.size, self._batch):
                part, limit = miss[start : start + self._batch], float(q[start : start + self._batch].max())
                for i, row in zip(part.tolist(), self._search(sources[part], limit), strict=True):
                    rows[i] = row
        return rows  # type: ignore[return-value]

    def _search(self, sources: np.ndarray, limit: float) -> list[_Row]:
        d, p = dijkstra(self.graph, directed=True, indices=sources, return_predecessors=True, limit=limit)
        out = []
        for k, s in enumerate(sources.tolist()):
            idx = np.flatnonzero(np.isfinite(d[k]))
            row = _Row(limit, idx.astype(np.int32), d[k, idx], p[k, idx].astype(np.int32))
            old = self._rows.pop(s, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._rows[s] = row
            self._bytes += row.nbytes
            out.append(row)
        while self._bytes > self.max_cache_bytes and len(self._rows) > 1:
            self._bytes -= self._rows.popitem(last=False)[1].nbytes
        return out

    def _sparse_pred(self, a: int, b: int) -> Callable[[int], int]:
        """Predecessors from a row of ``a`` that reaches ``b``: the cached one, else searches of growing reach."""
        row = self._rows.get(a)
        while row is None or not _holds(row, b):
            if row is not None and row.limit >= self.limit_m:  # searched as far as allowed: unreachable
                return lambda v: _NO_PRED
            limit = _PATH_LIMIT_M if row is None else 8.0 * row.limit
            limit = min(self.limit_m, limit if limit <= _MAX_FINITE_LIMIT_M else np.inf)
            (row,) = self._search(np.array([a]), limit)
        found = row
        return lambda v: int(found.pred[np.searchsorted(found.idx, v)])


def _holds(row: _Row, state: int) -> bool:
    i = int(np.searchsorted(row.idx, state))
    return i < row.idx.size and int(row.idx[i]) == state
