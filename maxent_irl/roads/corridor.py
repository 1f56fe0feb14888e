"""Route distances between the candidates of consecutive GPS fixes, searched only near the trace.

The map matcher needs, for every step ``t`` of a trace, the shortest route from each
candidate segment of fix ``t`` to each candidate of fix ``t + 1``, but only routes up to a
limit ``lim[t]`` (longer ones are no transition). A route of length ``<= lim`` that starts at
a candidate within ``radius`` of fix ``t`` never leaves the disc of radius ``radius + lim``
around that fix: the start of every segment it enters is at most ``lim`` metres of road
from the start. So the searches of a run of steps (a *window*) can run on the subgraph of
the segments within that distance of the window's fixes, exactly: every route within the
limit is found with its true length, and nothing shorter can exist outside.

Why: on a city-sized network a search from the full graph costs time and memory in the
size of the network (scipy's Dijkstra returns dense rows); here it costs in the size of the
window's neighbourhood, a few hundred to a few thousand segments, whatever the network.
At 1 Hz a step's limit is a few hundred metres, so one small search per window answers
hundreds of steps. Steps with a long limit (data gaps) go to the network's bounded
:class:`~maxent_irl.roads.routing.Router` instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import dijkstra

__all__ = ["CorridorWindow", "window_distances"]

_NO_PRED = -9999  # scipy's marker


@dataclass
class CorridorWindow:
    """The subgraph one window's searches ran on: global state ids ``idx`` (sorted) and the local CSR graph.

    ``limit``: how far its searches (and :meth:`paths`) look. With ``rows=True``,
    ``sources`` (global ids), ``dist`` and ``pred`` (local ids, scipy's ``-9999`` for none)
    hold the searches' rows over ``idx``, for a cache to keep.
    """

    idx: np.ndarray
    graph: sp.csr_matrix
    limit: float
    sources: np.ndarray | None = None
    dist: np.ndarray | None = None
    pred: np.ndarray | None = None

    def paths(self, a: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
        """Shortest paths (global states, both ends included) from ``a[i]`` to ``b[i]``, all within the window."""
        la = np.searchsorted(self.idx, a)
        lb = np.searchsorted(self.idx, b)
        src, inv = np.unique(la, return_inverse=True)
        _, pred = dijkstra(self.graph, directed=True, indices=src, return_predecessors=True, limit=self.limit)
        out = []
        for k in range(a.size):
            row, cur, path = pred[inv[k]], int(lb[k]), [int(lb[k])]
            while cur != la[k]:
                cur = int(row[cur])
                if cur == _NO_PRED:
                    raise ValueError(f"no path from state {int(a[k])} to state {int(b[k])} in the window")
                path.append(cur)
            out.append(self.idx[np.asarray(path[::-1], dtype=np.int64)])
        return out


def _boxes(xy: np.ndarray, reach: float, group: int = 16) -> np.ndarray:
    """Boxes around runs of ``group`` consecutive points (each overlapping the next), grown by ``reach``."""
    starts = np.arange(0, max(xy.shape[0] - 1, 1), group)
    lo = np.minimum.reduceat(xy, starts, axis=0)
    hi = np.maximum.reduceat(xy, starts, axis=0)
    nxt = xy[np.minimum(starts + group, xy.shape[0] - 1)]  # runs share their end points: no gap between boxes
    lo, hi = np.minimum(lo, nxt) - reach, np.maximum(hi, nxt) + reach
    return shapely.box(lo[:, 0], lo[:, 1], hi[:, 0], hi[:, 1])


def _subgraph(graph: sp.csr_matrix, idx: np.ndarray, pos: np.ndarray) -> sp.csr_matrix:
    """Rows and columns ``idx`` of ``graph``; ``pos`` maps global -> local ids (``-1`` outside ``idx``)."""
    indptr, indices, data = graph.indptr, graph.indices, graph.data
    lo, hi = indptr[idx], indptr[idx + 1]
    counts = hi - lo
    take = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    cols = pos[indices[take]]
    keep = cols >= 0
    rows = np.repeat(np.arange(idx.size), counts)[keep]
    ptr = np.zeros(idx.size + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=idx.size), out=ptr[1:])
    # rows come in order and each row's columns are a subset of a canonical row's: already a valid CSR
    return sp.csr_matrix((data[take][keep], cols[keep].astype(np.int32), ptr.astype(np.int32)),
                         shape=(idx.size, idx.size))


def window_distances(
    graph: sp.csr_matrix,
    tree: shapely.STRtree,
    piece_state: np.ndarray,
    xy: np.ndarray,
    C: np.ndarray,
    need: np.ndarray,
    reach_m: float,
    pos: np.ndarray | None = None,
    rows: bool = False,
) -> tuple[np.ndarray, CorridorWindow]:
    """``dist(C[t, i], C[t + 1, j])`` for the steps of one window, for every pair with ``need[t, i, j] >= dist``.

    ``graph``: the segment graph (``dist(a, b)``: weights of the transitions from ``a`` to
    ``b``, ``b``'s included); ``tree`` / ``piece_state``: the network's spatial index of
    segment pieces and each piece's state; ``xy``: the window's projected fixes (``s + 1``
    of them for ``s`` steps); ``C``: their candidates (``-1`` padding); ``need``: the
    largest distance of use per pair; ``reach_m``: how far from the fixes a route within
    ``need`` can go (candidate radius + longest route of the window). Pairs not found
    within ``need`` are ``inf``. Returns the distances ``(s, K, K)`` and the window.
    ``pos``: optional workspace, ``-1`` for every state (and left so), to spare allocating
    one per window on a large network. ``rows``: keep the searches' rows in the window.
    """
    found = tree.query(_boxes(xy, float(reach_m)))[1]  # bounding boxes only: a superset, 10x cheaper than distances
    idx = np.unique(np.concatenate([piece_state[found], C[C >= 0]]))
    if pos is None:
        pos = np.full(graph.shape[0], -1, dtype=np.int64)
    pos[idx] = np.arange(idx.size)
    try:
        return _distances(graph, idx, pos, C, need, rows)
    finally:
        pos[idx] = -1


def _distances(
    graph: sp.csr_matrix, idx: np.ndarray, pos: np.ndarray, C: np.ndarray, need: np.ndarray, rows: bool
) -> tuple[np.ndarray, CorridorWindow]:
    s, K = C.shape[0] - 1, C.shape[1]
    sub = _subgraph(graph, idx, pos)
    finite = np.isfinite(need)
    limit = float(need[finite].max()) if finite.any() else 0.0
    out = np.full((s, K, K), np.inf)
    window = CorridorWindow(idx, sub, limit)
    if limit <= 0:
        return out, window
    A = np.broadcast_to(C[:-1, :, None], (s, K, K))
    B = np.broadcast_to(C[1:, None, :], (s, K, K))
    ask = (A >= 0) & (B >= 0) & (A != B) & finite & (need > 0)
    if not ask.any():
        return out, window
    src, inv = np.unique(pos[A[ask]], return_inverse=True)
    if rows:
        D, P = dijkstra(sub, directed=True, indices=src, limit=limit, return_predecessors=True)
        window.sources, window.dist, window.pred = idx[src], D, P
    else:
        D = dijkstra(sub, directed=True, indices=src, limit=limit)
    d = D[inv, pos[B[ask]]]
    out[ask] = np.where(d <= need[ask], d, np.inf)
    return out, window
