"""Destination priors learned from stored trips: smoothed, floored, and conditioned on what a query tells.

Why: with a few hundred trips, the segments where some trip ended are a small share of
the places where the next one ends (on Porto taxi trips 57-65 % of held-out destinations
are on segments no training trip ended on, 99 % within 500 m of one). A prior that puts
mass only there, or spreads it flatly, wastes the route model. Here every stored
destination spreads its unit of mass over nearby segments with a Gaussian kernel on
metres (bandwidth chosen by held-out likelihood), a floor keeps every segment possible,
and the same kernel columns re-weighted by a context kernel (origin, time of day) give
conditional priors at the cost of one sparse matrix-vector product per query.

Everything works on plain arrays: ``support_xy`` ``(n, 2)`` are the candidate
destinations (e.g. segment midpoints) in metres of a local projection, ``points_xy``
``(N, 2)`` the stored trips' destinations. No GIS imports.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.spatial import cKDTree

from maxent_irl.exceptions import InvalidParameterError

__all__ = [
    "BandwidthSelection",
    "DistanceDecayPrior",
    "MultiScaleSelection",
    "conditional_prior",
    "cross_validate_bandwidth",
    "cross_validate_multiscale",
    "destination_kernel",
    "heldout_log_likelihood",
    "kernel_weights",
    "mixture_weights",
    "select_bandwidth",
    "smoothed_prior",
    "with_floor",
]

logger = logging.getLogger(__name__)

#: Kernels are cut at this many bandwidths (the Gaussian's mass beyond 4 sigma in 2-D is exp(-8) = 3e-4).
DEFAULT_CUTOFF = 4.0


def _xy(a: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InvalidParameterError(f"{name} must have shape (m, 2) (metres), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidParameterError(f"{name} must be finite")
    return arr


def _support_weights(weights: np.ndarray | None, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise InvalidParameterError(f"support_weights must be {n} finite nonnegative numbers, not all zero")
    return w


def destination_kernel(
    support_xy: np.ndarray,
    points_xy: np.ndarray,
    bandwidth: float,
    support_weights: np.ndarray | None = None,
    cutoff: float = DEFAULT_CUTOFF,
) -> sp.csc_matrix:
    """``(n, N)`` sparse matrix whose column ``i`` spreads stored destination ``i`` over the support.

    ``K[s, i] ∝ support_weights[s] exp(-|x_s - y_i|^2 / (2 h^2))`` for ``|x_s - y_i| <= cutoff h``,
    each column normalized to 1: every stored trip contributes exactly one unit of mass, also
    near the edge of the network (no boundary bias). ``support_weights`` (e.g. segment lengths)
    make a long segment collect more of the density than a short one. A point with no support
    within the cutoff puts its mass on its nearest support point.
    """
    sxy, pxy = _xy(support_xy, "support_xy"), _xy(points_xy, "points_xy")
    if not (np.isfinite(bandwidth) and bandwidth > 0):
        raise InvalidParameterError(f"bandwidth must be a positive number of metres, got {bandwidth!r}")
    if not (np.isfinite(cutoff) and cutoff > 0):
        raise InvalidParameterError(f"cutoff must be positive, got {cutoff!r}")
    n, m = sxy.shape[0], pxy.shape[0]
    if n == 0:
        raise InvalidParameterError("the support is empty")
    w = _support_weights(support_weights, n)
    tree = cKDTree(sxy)
    hits = tree.query_ball_point(pxy, cutoff * bandwidth)  # distance 0 included (sparse outputs may drop it)
    cols = np.repeat(np.arange(m), np.fromiter(map(len, hits), dtype=np.int64, count=m))
    rows = np.fromiter(itertools.chain.from_iterable(hits), dtype=np.int64, count=cols.size)  # C-level flattening
    dist = np.hypot(*(sxy[rows] - pxy[cols]).T)
    val = w[rows] * np.exp(-0.5 * (dist / bandwidth) ** 2)
    K = sp.csc_matrix((val, (rows, cols)), shape=(n, m))
    K.sum_duplicates()
    colsum = np.asarray(K.sum(axis=0)).ravel()
    empty = np.flatnonzero(colsum <= 0)
    if empty.size:  # nothing (with weight) within the cutoff: the nearest support point with weight takes it all
        pos = np.flatnonzero(w > 0)
        _, j = cKDTree(sxy[pos]).query(pxy[empty])
        fix = sp.csc_matrix((np.ones(empty.size), (pos[j], empty)), shape=(n, m))
        K = K + fix
        colsum = np.asarray(K.sum(axis=0)).ravel()
    K = K @ sp.diags(1.0 / colsum)
    return sp.csc_matrix(K)


def with_floor(p: np.ndarray, floor: float, support_weights: np.ndarray | None = None) -> np.ndarray:
    """``(1 - floor) p / sum(p) + floor u`` with ``u ∝ support_weights``: no segment is impossible."""
    p = np.asarray(p, dtype=np.float64)
    if not (0.0 <= floor <= 1.0):
        raise InvalidParameterError(f"floor must be in [0, 1], got {floor!r}")
    w = _support_weights(support_weights, p.size)
    total = p.sum()
    base = p / total if total > 0 else w / w.sum()
    return (1.0 - floor) * base + floor * w / w.sum()


def smoothed_prior(
    kernel: sp.spmatrix, floor: float = 0.0, support_weights: np.ndarray | None = None,
    point_weights: np.ndarray | None = None,
) -> np.ndarray:
    """``(n,)`` prior: the (weighted) mixture of the kernel's columns, with a floor (:func:`with_floor`)."""
    m = kernel.shape[1]
    a = np.full(m, 1.0 / m) if point_weights is None else np.asarray(point_weights, dtype=np.float64)
    if a.shape != (m,) or np.any(a < 0) or not np.all(np.isfinite(a)):
        raise InvalidParameterError(f"point_weights must be {m} finite nonnegative numbers")
    return with_floor(kernel @ a, floor, support_weights)


def heldout_log_likelihood(prior: np.ndarray, heldout_idx: np.ndarray) -> float:
    """Mean natural-log probability the prior gives the held-out destinations (support indices)."""
    p = np.asarray(prior)[np.asarray(heldout_idx, dtype=np.int64)]
    with np.errstate(divide="ignore"):
        return float(np.mean(np.log(p)))


def select_bandwidth(
    support_xy: np.ndarray,
    train_xy: np.ndarray,
    heldout_idx: np.ndarray,
    bandwidths: Sequence[float],
    floors: Sequence[float] = (0.0,),
    support_weights: np.ndarray | None = None,
) -> tuple[float, float, np.ndarray]:
    """The ``(bandwidth, floor)`` whose prior built on ``train_xy`` best predicts ``heldout_idx``.

    Returns ``(bandwidth, floor, scores)`` with ``scores[i, j]`` the held-out mean
    log-likelihood of ``bandwidths[i]`` with ``floors[j]``.
    """
    scores = np.empty((len(bandwidths), len(floors)))
    for i, h in enumerate(bandwidths):
        K = destination_kernel(support_xy, train_xy, h, support_weights)
        base = smoothed_prior(K)
        for j, f in enumerate(floors):
            scores[i, j] = heldout_log_likelihood(with_floor(base, f, support_weights), heldout_idx)
    bi, fj = (int(v) for v in np.unravel_index(int(np.argmax(scores)), scores.shape))
    return float(bandwidths[bi]), float(floors[fj]), scores


@dataclass(frozen=True)
class BandwidthSelection:
    """Result of :func:`cross_validate_bandwidth`: the choice and the mean held-out log-likelihood table."""

    bandwidth: float
    floor: float
    bandwidths: np.ndarray
    floors: np.ndarray
    scores: np.ndarray


def cross_validate_bandwidth(
    support_xy: np.ndarray,
    points_xy: np.ndarray,
    points_idx: np.ndarray,
    bandwidths: Sequence[float],
    floors: Sequence[float] = (0.0,),
    n_folds: int = 5,
    seed: int = 0,
    support_weights: np.ndarray | None = None,
    folds: np.ndarray | None = None,
) -> BandwidthSelection:
    """K-fold choice of bandwidth and floor by held-out log-likelihood of the destinations' segments.

    ``points_idx`` ``(N,)`` is the support index each destination lies on (scored when held
    out). ``folds`` ``(N,)`` assigns folds explicitly (e.g. blocks of time); otherwise they are
    drawn at random with ``seed``. Scores are averaged per point over all folds.
    """
    pxy = _xy(points_xy, "points_xy")
    idx = np.asarray(points_idx, dtype=np.int64)
    if idx.shape != (pxy.shape[0],):
        raise InvalidParameterError("points_idx needs one support index per point")
    if folds is None:
        if n_folds < 2 or n_folds > pxy.shape[0]:
            raise InvalidParameterError(f"n_folds must be in 2..{pxy.shape[0]}, got {n_folds}")
        folds = np.random.default_rng(seed).permutation(pxy.shape[0]) % n_folds
    folds = np.asarray(folds)
    total = np.zeros((len(bandwidths), len(floors)))
    for f in np.unique(folds):
        test = folds == f
        _, _, s = select_bandwidth(support_xy, pxy[~test], idx[test], bandwidths, floors, support_weights)
        total += s * test.sum()
    scores = total / pxy.shape[0]
    bi, fj = (int(v) for v in np.unravel_index(int(np.argmax(scores)), scores.shape))
    return BandwidthSelection(float(bandwidths[bi]), float(floors[fj]), np.asarray(bandwidths, dtype=float),
                              np.asarray(floors, dtype=float), scores)


def mixture_weights(component_probs: np.ndarray, max_iter: int = 1000, tol: float = 1e-10) -> np.ndarray:
    """``(C,)`` weights ``w`` (summing to 1) maximizing ``mean_i log sum_c w_c P[i, c]`` (EM; concave, so global).

    ``component_probs`` ``(N, C)``: the probability each of ``C`` fixed priors gives held-out
    destination ``i``. Used to mix kernel priors of several bandwidths and a floor, so a city
    with a few very popular spots (stations, stands) and diffuse demand elsewhere gets both.
    """
    P = np.asarray(component_probs, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] == 0 or P.shape[1] == 0 or np.any(P < 0) or not np.all(np.isfinite(P)):
        raise InvalidParameterError("component_probs must be a nonempty finite nonnegative (N, C) array")
    if np.any(P.sum(axis=1) <= 0):
        raise InvalidParameterError("every held-out point needs a component giving it positive probability")
    w = np.full(P.shape[1], 1.0 / P.shape[1])
    prev = -np.inf
    for _ in range(max_iter):
        mix = P @ w
        ll = float(np.mean(np.log(mix)))
        w = w * (P / mix[:, None]).mean(axis=0)
        w /= w.sum()
        if ll - prev < tol:
            break
        prev = ll
    return w


@dataclass(frozen=True)
class MultiScaleSelection:
    """Kernel bandwidths and the weights of their priors; ``floor`` is the weight of the uniform part.

    ``heldout_loglik``: the cross-validated mean log-likelihood of the mixture (its weights fitted
    on the same held-out scores, so slightly optimistic: ``len(weights)`` numbers from ``N``
    points), and ``single``: the same for each bandwidth alone with its best floor.
    """

    bandwidths: np.ndarray
    weights: np.ndarray
    floor: float
    heldout_loglik: float
    single: np.ndarray

    def kernel(self, support_xy: np.ndarray, points_xy: np.ndarray, support_weights: np.ndarray | None = None,
               cutoff: float = DEFAULT_CUTOFF) -> sp.csc_matrix:
        """The mixed kernel ``sum_c w_c K_c / sum_c w_c`` (columns still sum to 1), skipping weightless bandwidths."""
        total = float(self.weights.sum())
        K = None
        for h, w in zip(self.bandwidths, self.weights, strict=True):
            if w <= 1e-6 * total:
                continue
            part = destination_kernel(support_xy, points_xy, float(h), support_weights, cutoff) * (w / total)
            K = part if K is None else K + part
        if K is None:
            raise InvalidParameterError("no bandwidth has weight")
        return sp.csc_matrix(K)


def cross_validate_multiscale(
    support_xy: np.ndarray,
    points_xy: np.ndarray,
    points_idx: np.ndarray,
    bandwidths: Sequence[float],
    folds: np.ndarray,
    support_weights: np.ndarray | None = None,
) -> MultiScaleSelection:
    """Out-of-fold probabilities of each training destination under each bandwidth's prior and the uniform
    floor, then :func:`mixture_weights` on them: a multi-scale kernel prior chosen by held-out likelihood."""
    sxy, pxy = _xy(support_xy, "support_xy"), _xy(points_xy, "points_xy")
    idx = np.asarray(points_idx, dtype=np.int64)
    folds = np.asarray(folds)
    w = _support_weights(support_weights, sxy.shape[0])
    uniform = w / w.sum()
    P = np.empty((pxy.shape[0], len(bandwidths) + 1))
    P[:, -1] = uniform[idx]
    for f in np.unique(folds):
        test = folds == f
        for c, h in enumerate(bandwidths):
            prior = smoothed_prior(destination_kernel(sxy, pxy[~test], h, w))
            P[test, c] = prior[idx[test]]
    weights = mixture_weights(P)
    floors = np.linspace(0.0, 0.95, 20)
    with np.errstate(divide="ignore"):  # a bandwidth with no floor may give a held-out point 0
        single = np.array([max(np.mean(np.log((1 - f) * P[:, c] + f * P[:, -1])) for f in floors)
                           for c in range(len(bandwidths))])
    return MultiScaleSelection(np.asarray(bandwidths, dtype=float), weights[:-1], float(weights[-1]),
                               float(np.mean(np.log(P @ weights))), single)


def kernel_weights(
    query: np.ndarray | float, points: np.ndarray, bandwidth: float, period: float | None = None,
) -> np.ndarray:
    """``(N,)`` Gaussian kernel weights ``exp(-|q - p_i|^2 / (2 h^2))`` of stored contexts (unnormalized).

    ``points`` ``(N,)`` scalars (e.g. hours; ``period`` makes the distance circular, 24 for
    time of day) or ``(N, 2)`` positions in metres with ``query`` ``(2,)``.
    """
    if not (np.isfinite(bandwidth) and bandwidth > 0):
        raise InvalidParameterError(f"bandwidth must be positive, got {bandwidth!r}")
    pts = np.asarray(points, dtype=np.float64)
    q = np.asarray(query, dtype=np.float64)
    if pts.ndim == 1:
        d = np.abs(pts - float(q))
        if period is not None:
            d = np.minimum(d % period, period - d % period)
        d2 = d**2
    else:
        d2 = ((pts - q.reshape(1, -1)) ** 2).sum(axis=1)
    return np.exp(-0.5 * d2 / bandwidth**2)


def conditional_prior(
    kernel: sp.spmatrix, weights: np.ndarray, marginal: np.ndarray, mix: float, min_effective: float = 1.0,
) -> np.ndarray:
    """``(1 - mix) marginal + mix sum_i a_i K[:, i]`` with ``a ∝ weights``: a kernel-weighted conditional.

    ``weights`` ``(N,)`` say how much each stored trip resembles the query (e.g. product of
    :func:`kernel_weights` on origin and time). Stored trips alike the query lend their
    destinations more mass; the marginal (floored) keeps the rest. When the weights' effective
    sample size ``(sum a)^2 / sum a^2`` is below ``min_effective`` or they all vanish (a query
    unlike every stored trip), the conditional part is shrunk toward the marginal in proportion.
    """
    a = np.asarray(weights, dtype=np.float64)
    if a.shape != (kernel.shape[1],) or np.any(a < 0) or not np.all(np.isfinite(a)):
        raise InvalidParameterError("weights must be one finite nonnegative number per stored trip")
    if not (0.0 <= mix <= 1.0):
        raise InvalidParameterError(f"mix must be in [0, 1], got {mix!r}")
    total = a.sum()
    if total <= 0 or mix == 0:
        return np.asarray(marginal, dtype=np.float64).copy()
    ess = total**2 / float((a**2).sum())
    lam = mix * min(1.0, ess / min_effective) if min_effective > 0 else mix
    return (1.0 - lam) * marginal + lam * (kernel @ (a / total))


class DistanceDecayPrior:
    """``P(d | o) ∝ base(d) exp(beta[g] · bins(|x_d - o|))``: a distribution reshaped by a distance profile.

    As a prior (``o`` the trip's origin, ``base`` the marginal): a gravity model. Trips have a
    typical length; the marginal alone does not know where a query started. As a correction of a
    posterior (``o`` the last GPS fix, ``base`` the posterior, group ``g`` e.g. the current speed
    class): how far from here trips still go, which a route model does not know (it says where
    the trip can go efficiently, not when it stops). The log-weights ``beta`` of a few distance bins
    per group are fitted by maximum likelihood (a conditional logit over the whole support, concave,
    with an L2 penalty), so they need far fewer trips than a kernel over origins: a few numbers per
    group, not a destination map per origin area.

    Parameters
    ----------
    edges: bin edges in metres, increasing, starting at 0 (the last bin is open-ended).
    l2: penalty on ``beta`` (per trip).
    n_groups: number of groups with their own profile (default one).
    """

    def __init__(self, edges: Sequence[float] = (0, 500, 1000, 1500, 2000, 3000, 4000, 6000), l2: float = 1e-2,
                 n_groups: int = 1) -> None:
        e = np.asarray(edges, dtype=np.float64)
        if e.ndim != 1 or e.size < 2 or e[0] != 0 or np.any(np.diff(e) <= 0):
            raise InvalidParameterError("edges must increase from 0 with at least two entries")
        if not (np.isfinite(l2) and l2 >= 0):
            raise InvalidParameterError(f"l2 must be >= 0, got {l2!r}")
        if int(n_groups) < 1:
            raise InvalidParameterError(f"n_groups must be >= 1, got {n_groups!r}")
        self.edges = e
        self.l2 = float(l2)
        self.n_groups = int(n_groups)

    def _bins(self, support_xy: np.ndarray, origin: np.ndarray) -> np.ndarray:
        r = np.hypot(*(support_xy - np.asarray(origin, dtype=np.float64).reshape(1, 2)).T)
        return np.asarray(np.searchsorted(self.edges, r, side="right") - 1)

    def fit(
        self, support_xy: np.ndarray, base: np.ndarray | Sequence[np.ndarray], origins_xy: np.ndarray,
        dest_idx: np.ndarray, groups: np.ndarray | None = None,
    ) -> DistanceDecayPrior:
        """Fit ``beta`` on stored trips: ``origins_xy`` ``(N, 2)``, ``dest_idx`` ``(N,)`` support indices.

        ``base`` is one ``(n,)`` distribution for all, or one per trip (e.g. a marginal left out of
        its own trip, which the in-sample marginal overrates, or each query's posterior).
        ``groups`` ``(N,)`` in ``0 .. n_groups - 1`` (default all 0).
        """
        sxy, oxy = _xy(support_xy, "support_xy"), _xy(origins_xy, "origins_xy")
        idx = np.asarray(dest_idx, dtype=np.int64)
        N, nb, G = oxy.shape[0], self.edges.size, self.n_groups
        grp = np.zeros(N, dtype=np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
        if grp.shape != (N,) or np.any(grp < 0) or np.any(grp >= G):
            raise InvalidParameterError(f"groups must be {N} integers in 0..{G - 1}")
        per_trip = isinstance(base, list | tuple) or np.ndim(base) == 2
        if per_trip and len(base) != N:
            raise InvalidParameterError("base needs one distribution per trip")
        # the factor is constant within a bin, so each trip reduces to its base mass per bin (N, nb)
        # and the bin of its destination: the optimization never touches the support again
        mass = np.empty((N, nb))
        own = np.empty(N, dtype=np.int64)
        for i in range(N):
            b = np.asarray(base[i] if per_trip else base, dtype=np.float64)
            bins = self._bins(sxy, oxy[i])
            mass[i] = np.bincount(bins, b, minlength=nb) / b.sum()
            own[i] = bins[idx[i]]
        onehot = np.zeros((G, nb))
        np.add.at(onehot, (grp, own), 1.0)

        def f(x: np.ndarray) -> tuple[float, np.ndarray]:
            beta = x.reshape(G, nb)
            bg = beta[grp]  # (N, nb)
            mx = bg.max(axis=1, keepdims=True)
            e = mass * np.exp(bg - mx)
            z = e.sum(axis=1)
            ll = float(beta[grp, own].sum() - (mx[:, 0] + np.log(z)).sum())
            g = onehot.copy()
            np.add.at(g, grp, -e / z[:, None])
            return -ll / N + 0.5 * self.l2 * float(x @ x), (-g / N).ravel() + self.l2 * x

        res = minimize(f, np.zeros(G * nb), jac=True, method="L-BFGS-B")
        beta = res.x.reshape(G, nb)
        self.beta_ = beta - beta.mean(axis=1, keepdims=True)  # a constant per group cancels
        self.log_likelihood_ = -float(res.fun) * N  # of the bin factors (the base's own terms left out)
        return self

    def __call__(self, support_xy: np.ndarray, base: np.ndarray, origin_xy: np.ndarray, group: int = 0) -> np.ndarray:
        """``(n,)`` distribution for a query whose reference point is ``origin_xy`` ``(2,)``."""
        if not hasattr(self, "beta_"):
            raise InvalidParameterError("DistanceDecayPrior is not fitted: call fit first")
        with np.errstate(divide="ignore"):
            s = np.log(np.asarray(base, dtype=np.float64))
        s = s + self.beta_[int(group)][self._bins(_xy(support_xy, "support_xy"), np.asarray(origin_xy, dtype=float))]
        p = np.exp(s - s.max())
        return p / p.sum()
