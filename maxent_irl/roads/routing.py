"""Shortest paths over the segment graph, with cached Dijkstra rows.

Map matching asks for route distances between many pairs of candidate segments;
the same sources come back trace after trace, so distance and predecessor rows are
kept in a bounded ring buffer (on the default network every row fits: ~45 MB).
"""

from __future__ import annotations

import threading

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

__all__ = ["Router"]

_NO_PRED = -9999  # scipy's marker


class Router:
    """Distances between segments: ``dist(a, b)`` = length of the segments entered after ``a``, ``b`` included.

    Parameters
    ----------
    src, dst, length_m:
        The MDP's transitions and each state's length; transition ``a -> b`` weighs ``length_m[b]``
        (plus ``extra_cost[j]`` for transition ``j`` if given, e.g. a U-turn penalty).
    limit_m:
        Dijkstra stops beyond this distance (``inf`` entries beyond it); ``None`` = no limit.
    max_cache_bytes:
        Memory for cached rows (8 bytes per state per cached source).
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
        self._cap = int(max(1, min(self.n, max_cache_bytes // (8 * self.n))))
        self._dist = np.empty((0, self.n), dtype=np.float32)
        self._pred = np.empty((0, self.n), dtype=np.int32)
        self._slot_of = np.full(self.n, -1, dtype=np.int64)
        self._source_in = np.full(self._cap, -1, dtype=np.int64)
        self._next = 0
        self._lock = threading.Lock()  # matchers on several threads share one router

    def _ensure(self, sources: np.ndarray) -> np.ndarray:
        """Compute missing rows; return the slots of ``sources``."""
        sources = np.asarray(sources, dtype=np.int64)
        missing = np.unique(sources[self._slot_of[sources] < 0])
        if np.unique(sources).size > self._cap:  # cannot hold them all: callers chunk
            raise MemoryError(f"{np.unique(sources).size} distance rows exceed the cache of {self._cap}")
        if missing.size:
            if self._dist.shape[0] == 0:  # np.empty: pages are only touched when rows are written
                self._dist = np.empty((self._cap, self.n), dtype=np.float32)
                self._pred = np.empty((self._cap, self.n), dtype=np.int32)
            d, p = dijkstra(self.graph, directed=True, indices=missing, return_predecessors=True, limit=self.limit_m)
            # ring order, but never evict a row this call also needs
            ring = (np.arange(self._cap) + self._next) % self._cap
            slots = ring[~np.isin(self._source_in[ring], sources)][: missing.size]
            self._next = int(slots[-1]) + 1
            old = self._source_in[slots]
            self._slot_of[old[old >= 0]] = -1
            self._dist[slots] = d
            self._pred[slots] = p
            self._slot_of[missing] = slots
            self._source_in[slots] = missing
        return self._slot_of[sources]

    def pair_distances(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``dist(a[i], b[i])`` for arrays of states (same shape), ``inf`` if beyond the limit."""
        a = np.asarray(a, dtype=np.int64)
        b = np.asarray(b, dtype=np.int64)
        out = np.full(a.shape, np.inf)
        flat_a, flat_b, flat_out = a.ravel(), b.ravel(), out.reshape(-1)
        uniq = np.unique(flat_a)
        chunk = max(1, self._cap // 2)
        with self._lock:
            for start in range(0, uniq.size, chunk):
                part = uniq[start : start + chunk]
                self._ensure(part)
                sel = np.isin(flat_a, part) if uniq.size > chunk else slice(None)
                slots = self._slot_of[flat_a[sel]]
                flat_out[sel] = self._dist[slots, flat_b[sel]]
        return out

    def shortest_path(self, a: int, b: int) -> np.ndarray:
        """States of the shortest path from ``a`` to ``b``, both included (``[a]`` if equal)."""
        a, b = int(a), int(b)
        if a == b:
            return np.array([a], dtype=np.int64)
        with self._lock:
            slot = self._ensure(np.array([a]))[0]
            pred = self._pred[slot].copy()
        if pred[b] == _NO_PRED:  # beyond the limit (or unreachable): search without one
            _, p = dijkstra(self.graph, directed=True, indices=a, return_predecessors=True)
            pred = p
            if pred[b] == _NO_PRED:
                raise ValueError(f"no path from state {a} to state {b}")
        out = [b]
        cur = b
        while cur != a:
            cur = int(pred[cur])
            out.append(cur)
            if len(out) > self.n + 1:  # defensive: a corrupt row must not loop forever
                raise RuntimeError("predecessor cycle")
        return np.array(out[::-1], dtype=np.int64)
