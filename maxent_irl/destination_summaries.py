"""Answers a user can act on, from a destination posterior over every segment.

A posterior over 10^4-10^5 segments is not an answer. Three summaries, each from
``xy`` ``(n, 2)`` (segment positions in metres of a local projection) and ``prob``
``(n,)`` (nonnegative, any total):

* :func:`top_destinations`: the most probable *places*, not the most probable segments
  (five neighbouring segments of one street are one answer): greedy non-maximum
  suppression with a radius, each cluster's mass summed.
* :func:`geometric_median`: the single point minimizing the expected distance to the
  destination (Weiszfeld's algorithm over the posterior mass).
* :func:`heat_map`: the segments holding most of the mass, for drawing.

Pure numpy (plus scipy's k-d tree); no GIS imports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from maxent_irl.exceptions import InvalidParameterError
from maxent_irl.parallel import single_threaded_blas

__all__ = [
    "Cluster",
    "DestinationSummarizer",
    "GeometricMedian",
    "expected_distance",
    "geometric_median",
    "heat_map",
    "neighbourhood_mass",
    "top_destinations",
    "truncate_mass",
]


def _inputs(xy: np.ndarray, prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pts = np.asarray(xy, dtype=np.float64)
    p = np.asarray(prob, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or p.shape != (pts.shape[0],):
        raise InvalidParameterError(f"need xy (n, 2) and prob (n,), got {pts.shape} and {p.shape}")
    if not (np.all(np.isfinite(pts)) and np.all(np.isfinite(p))) or np.any(p < 0) or p.sum() <= 0:
        raise InvalidParameterError("xy must be finite; prob finite, nonnegative, not all zero")
    return pts, p


def truncate_mass(prob: np.ndarray, mass: float = 1.0) -> np.ndarray:
    """Indices of the most probable entries that together hold at least ``mass`` of the total (all if 1)."""
    p = np.asarray(prob, dtype=np.float64)
    if not (0.0 < mass <= 1.0):
        raise InvalidParameterError(f"mass must be in (0, 1], got {mass!r}")
    if mass >= 1.0:
        return np.flatnonzero(p > 0)
    order = np.argsort(-p, kind="stable")
    csum = np.cumsum(p[order])
    k = int(np.searchsorted(csum, mass * csum[-1], side="left")) + 1
    return order[: min(k, order.size)]


def expected_distance(xy: np.ndarray, prob: np.ndarray, point: np.ndarray) -> float:
    """``sum_i p_i |x_i - point| / sum_i p_i``: the mean distance from ``point`` to the destination."""
    pts, p = _inputs(xy, prob)
    return float(p @ np.hypot(*(pts - np.asarray(point, dtype=np.float64).reshape(1, 2)).T) / p.sum())


@dataclass(frozen=True)
class GeometricMedian:
    """The minimizer of the expected distance: ``point`` ``(2,)``, its ``expected_distance``.

    ``bound``: a certified lower bound on the expected distance of *any* point, over the mass
    used (the gap ``expected_distance - bound`` bounds how far from optimal ``point`` is);
    ``mass_used``: the share of the mass the iterations saw; ``n_iter``.
    """

    point: np.ndarray
    expected_distance: float
    bound: float
    mass_used: float
    n_iter: int


def geometric_median(
    xy: np.ndarray, prob: np.ndarray, mass: float = 1.0, tol_m: float = 0.1, max_iter: int = 300,
) -> GeometricMedian:
    """The point minimizing the expected distance to the destination (weighted geometric median).

    Weiszfeld's iteration with Vardi & Zhang's (2000) fix at data points, started from the
    weighted mean, after checking whether the heaviest entry is itself optimal (it is when its
    weight outweighs the pull of all others, common for peaked posteriors, where plain Weiszfeld
    crawls). The objective is convex; the iteration stops when the duality gap (expected
    distance minus the lower bound ``f(y) - |grad f(y)| max_i |x_i - y|``, valid by convexity
    since the minimizer lies in the data's hull) is below ``tol_m`` metres, or when a step moves
    less than ``tol_m / 100`` (Weiszfeld's slow tail near a heavy entry; ``bound`` then says how
    far from optimal the answer is certified to be). ``mass < 1`` runs on the most probable
    entries holding that share of the mass (a 300k-segment posterior usually has most of its mass
    on a few thousand): the neglected mass ``1 - mass`` moves the objective by at most that share
    of the distance to it, reported through ``mass_used``.
    """
    pts, p = _inputs(xy, prob)
    keep = truncate_mass(p, mass)
    # (n,) @ (n, 2) products: threaded BLAS only spins on them, 10-100x slower on a busy machine
    with single_threaded_blas():
        return _weiszfeld(pts[keep], p[keep] / p[keep].sum(), float(p[keep].sum() / p.sum()), tol_m, max_iter)


def _weiszfeld(x: np.ndarray, w: np.ndarray, mass_used: float, tol_m: float, max_iter: int) -> GeometricMedian:
    j = int(np.argmax(w))
    diff = x - x[j]
    d = np.hypot(diff[:, 0], diff[:, 1])
    pull = np.where(d > 0, w / np.where(d > 0, d, 1.0), 0.0) @ diff
    w_j = float(w[d == 0].sum())
    if float(np.hypot(*pull)) <= w_j:  # the heaviest entry is optimal: 0 is in the subdifferential there
        f = float(w @ d)
        return GeometricMedian(point=x[j].copy(), expected_distance=f, bound=f, mass_used=mass_used, n_iter=0)
    y = w @ x
    it, f, lower = 0, np.inf, -np.inf
    for it in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
        diff = x - y
        d = np.hypot(diff[:, 0], diff[:, 1])
        f = float(w @ d)
        at = d < 1e-9
        inv = np.where(at, 0.0, w / np.where(at, 1.0, d))
        pull = inv @ diff  # minus the gradient of f away from data points
        w_at = float(w[at].sum())
        gnorm = float(np.hypot(*pull))
        if w_at > 0:  # subgradient at a data point: shrink by its weight (0 if the point is optimal)
            gnorm = max(0.0, gnorm - w_at)
        lower = max(lower, f - gnorm * float(d.max()))
        if f - lower <= tol_m or gnorm == 0.0:
            break
        s = inv.sum()
        t = (inv @ x) / s  # the Weiszfeld step
        if w_at > 0:  # Vardi-Zhang: move only as far as the non-coincident pull warrants
            eta = w_at / float(np.hypot(*pull))
            t = max(0.0, 1.0 - eta) * t + min(1.0, eta) * y
        step = float(np.hypot(*(t - y)))
        y = t
        if step < 0.01 * tol_m:
            break
    return GeometricMedian(point=y, expected_distance=f, bound=max(lower, 0.0), mass_used=mass_used, n_iter=it)


def neighbourhood_mass(xy: np.ndarray, prob: np.ndarray, radius: float) -> np.ndarray:
    """``(n,)`` total probability in the square of half-width ~``radius`` around each entry.

    Mass is binned into square cells of side ``radius`` and each entry gets the mass of its
    cell's 3 x 3 block (between ``radius`` and ``2 radius`` around it): O(n), no neighbour
    lists, so it costs the same on a 300k-segment posterior as a disc sum would on 3k.
    """
    pts, p = _inputs(xy, prob)
    if not (np.isfinite(radius) and radius > 0):
        raise InvalidParameterError(f"radius must be positive, got {radius!r}")
    cell = np.floor((pts - pts.min(axis=0)) / radius).astype(np.int64) + 1  # a margin of one cell
    shape = tuple(cell.max(axis=0) + 2)
    grid = np.zeros(shape)
    np.add.at(grid, (cell[:, 0], cell[:, 1]), p)
    box = np.zeros_like(grid)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            box[1:-1, 1:-1] += grid[1 + dx : shape[0] - 1 + dx, 1 + dy : shape[1] - 1 + dy]
    return box[cell[:, 0], cell[:, 1]]


@dataclass(frozen=True)
class Cluster:
    """One suggested destination: the entry ``index`` at ``xy`` and the ``mass`` of its ``members``."""

    index: int
    xy: np.ndarray
    mass: float
    members: np.ndarray


class DestinationSummarizer:
    """The summaries for one set of positions (a network's segments), with its k-d tree built once.

    Building the tree costs about as much as one query's summaries; a service keeps one per network.
    """

    def __init__(self, xy: np.ndarray) -> None:
        pts = np.asarray(xy, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] == 0 or not np.all(np.isfinite(pts)):
            raise InvalidParameterError(f"xy must be a nonempty finite (n, 2) array, got {pts.shape}")
        self.xy = pts
        self.tree = cKDTree(pts)

    def top_destinations(self, prob: np.ndarray, radius: float, k: int = 5, smooth: bool = True) -> list[Cluster]:
        """See :func:`top_destinations`."""
        pts, p = _inputs(self.xy, prob)
        if not (np.isfinite(radius) and radius > 0):
            raise InvalidParameterError(f"radius must be positive, got {radius!r}")
        if k < 1:
            raise InvalidParameterError(f"k must be >= 1, got {k}")
        total = p.sum()
        score = neighbourhood_mass(pts, p, radius / 2) if smooth else p.copy()
        score[p <= 0] = -np.inf
        clusters: list[Cluster] = []
        for _ in range(2 * k):  # a few more than asked: ranking by mass can differ from the visiting order
            i = int(np.argmax(score))
            if not np.isfinite(score[i]):
                break
            members = np.asarray(self.tree.query_ball_point(pts[i], radius), dtype=np.int64)
            members = members[np.isfinite(score[members])]  # not yet taken (and with mass)
            score[members] = -np.inf
            score[i] = -np.inf
            members = np.union1d(members, [i])
            clusters.append(Cluster(index=i, xy=pts[i].copy(), mass=float(p[members].sum() / total), members=members))
        clusters.sort(key=lambda c: -c.mass)
        return clusters[:k]


def top_destinations(
    xy: np.ndarray, prob: np.ndarray, radius: float, k: int = 5, smooth: bool = True,
) -> list[Cluster]:
    """The ``k`` most probable places, at least ``radius`` metres apart (greedy non-maximum suppression).

    Entries are visited by decreasing score (``smooth``: the mass of the entry's neighbourhood
    of about ``radius / 2`` (:func:`neighbourhood_mass`), so a place many probable segments
    share outranks one lone spike; else their own probability). Each one not yet taken opens a
    cluster and takes every entry within ``radius`` not yet taken; its mass is theirs summed,
    normalized by the total. So centres are never closer than ``radius``, and the clusters
    partition the entries they cover. Clusters are returned by decreasing mass (up to ``2 k``
    are formed, the ``k`` heaviest kept); the entries left over are in none. For many queries on
    one network use :class:`DestinationSummarizer`, which builds the k-d tree once.
    """
    return DestinationSummarizer(xy).top_destinations(prob, radius, k, smooth)


def heat_map(
    prob: np.ndarray, mass: float = 0.95, threshold: float = 0.0, max_entries: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, probabilities)`` of the entries to draw: the most probable holding ``mass`` of the total.

    Entries below ``threshold`` (a probability, of the normalized posterior) are left out, and at
    most ``max_entries`` are kept; probabilities are normalized to the whole, so a client can show
    how much of the mass the map covers.
    """
    p = np.asarray(prob, dtype=np.float64)
    if p.ndim != 1 or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise InvalidParameterError("prob must be finite, nonnegative, not all zero")
    q = p / p.sum()
    idx = truncate_mass(q, mass)
    idx = idx[q[idx] >= threshold]
    if max_entries is not None:
        idx = idx[: max(0, int(max_entries))]
    return idx, q[idx]
