"""Where is a partly driven trip going? The posterior over every segment, with a prior learned from stored trips.

``P(d | A -> B) ∝ P(d | A) · (Z(B, d) / Z(A, d))^γ`` over every segment ``d``: the route
model's evidence (two rows of ``M``, :meth:`maxent_irl.RouteModel.log_rows`) times a prior
that knows where trips end. The prior (:mod:`maxent_irl.destination_priors`) spreads every
stored destination over nearby segments with a mixture of Gaussian kernels from 25 m to
1.6 km, whose weights and uniform floor are chosen by held-out likelihood, and reshapes it
by a distance profile from the trip's origin (a "gravity" model: trips have a typical
length). ``γ`` tempers the route model's evidence and is chosen on the training trips'
own partial paths (Porto's taxi trips: 1.5). A stop profile then reshapes the posterior by
the distance from the current segment (pooled, or per class of the length driven so far):
the route model's evidence is nearly flat over every destination ahead, so it cannot say
that a trip driven for a while tends to end soon. Measured on real Porto trips in
``benchmarks/bench_porto_destinations.py``.

:func:`fit_destination_prior` chooses these parameters on training trips (the service does
it in the training job and stores them with the model); a :class:`DestinationPredictor`
applies them to a network, a model and the stored destinations, and answers with the
posterior, the clustered top destinations, the point minimizing the expected distance to
the destination, and a heat map.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from maxent_irl import RouteModel
from maxent_irl.destination_priors import (
    DistanceDecayPrior,
    cross_validate_multiscale,
    destination_kernel,
    smoothed_prior,
    with_floor,
)
from maxent_irl.destination_summaries import Cluster, DestinationSummarizer, geometric_median, heat_map
from maxent_irl.exceptions import InvalidParameterError, UnreachableDestinationError
from maxent_irl.roads.network import RoadNetwork

__all__ = ["DEFAULT_BANDWIDTHS_M", "DestinationAnswer", "DestinationPredictor", "DestinationPriorParams",
           "driven_group", "fit_destination_prior", "partial_path"]

log = logging.getLogger(__name__)

#: Kernel widths of the multi-scale prior: repeated spots (stations, stands) to districts.
DEFAULT_BANDWIDTHS_M = (25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0)
#: Evidence exponents tried on the training trips' partial paths.
GAMMAS = (0.5, 1.0, 1.5, 2.0)
#: Shares of a trip's length observed when choosing ``γ`` and fitting the stop profile.
FRACTIONS = (0.2, 0.4, 0.6, 0.8)
#: Distance bins (m) of the stop profile: how far from the current segment trips still end.
STOP_EDGES_M = (0.0, 100.0, 200.0, 350.0, 500.0, 750.0, 1000.0, 1500.0, 2000.0, 3000.0, 4000.0)
#: Quantiles of the driven length that split partial trips into groups with their own stop profile.
STOP_GROUP_QUANTILES = (0.2, 0.4, 0.6, 0.8)


@dataclass
class DestinationPriorParams:
    """What a destination posterior needs beyond the route model; plain numbers, stored as JSON with a model.

    ``bandwidths_m`` / ``weights`` / ``floor``: the multi-scale kernel prior (``weights`` of the
    kernels, ``floor`` of the length-weighted uniform part); ``gravity_edges_m`` /
    ``gravity_beta``: the distance profile from the origin (empty: none); ``gamma``: the
    evidence exponent; ``stop_edges_m`` / ``stop_beta`` (one row per group) /
    ``stop_driven_edges_m``: the stop profile, a distance profile from the current segment
    per class of the length driven so far (empty: none); ``radius_m``: how far apart the top
    destinations are.
    """

    bandwidths_m: list[float] = field(default_factory=lambda: [200.0])
    weights: list[float] = field(default_factory=lambda: [0.9])
    floor: float = 0.1
    gravity_edges_m: list[float] = field(default_factory=list)
    gravity_beta: list[float] = field(default_factory=list)
    gamma: float = 1.0
    stop_edges_m: list[float] = field(default_factory=list)
    stop_beta: list[list[float]] = field(default_factory=list)
    stop_driven_edges_m: list[float] = field(default_factory=list)
    radius_m: float = 500.0
    fitted_on: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> DestinationPriorParams:
        """The parameters stored with a model (defaults for a model trained before they existed)."""
        if not d:
            return cls()
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


@dataclass(frozen=True)
class DestinationAnswer:
    """A posterior and what to show of it: ``probabilities`` ``(n,)`` over states, clusters, the expected point."""

    probabilities: np.ndarray
    clusters: list[Cluster]
    point_lonlat: np.ndarray
    expected_distance_m: float


def partial_path(path: np.ndarray, fraction: float, length_m: np.ndarray) -> np.ndarray:
    """The first segments of ``path`` covering ``fraction`` of its length (at least one)."""
    cum = np.cumsum(length_m[path])
    k = int(np.searchsorted(cum, fraction * cum[-1], side="left")) + 1
    return path[: max(1, min(k, path.size))]


def driven_group(length_m: np.ndarray, path: np.ndarray, edges_m: Sequence[float]) -> int:
    """The class of a partial path's driven length (sum of its segments' lengths) among ``edges_m``."""
    return int(np.searchsorted(np.asarray(edges_m, dtype=np.float64), float(length_m[path].sum()), side="right"))


def _normalized(log_prior: np.ndarray, log_ratio: np.ndarray, gamma: float) -> np.ndarray:
    """``(n,)`` ``P(d) · ratio^γ`` normalized; raises when no destination is reachable."""
    log_post = log_prior + gamma * log_ratio
    log_post[np.isnan(log_post)] = -np.inf
    top = log_post.max()
    if not np.isfinite(top):
        raise UnreachableDestinationError("no destination is reachable along this partial path")
    post: np.ndarray = np.exp(log_post - top)
    post /= post.sum()
    return post


def _log_ratio(model: RouteModel, path: np.ndarray) -> np.ndarray:
    """``(n,)`` ``log M[B, d] - log M[A, d]`` (``-inf`` where ``d`` cannot be reached from ``B``)."""
    rows = model.log_rows(np.array([path[0], path[-1]]))
    with np.errstate(invalid="ignore"):
        ratio: np.ndarray = rows[1] - rows[0]
    ratio[~np.isfinite(rows[1])] = -np.inf
    return ratio


def _segment_xy(net: RoadNetwork) -> np.ndarray:
    return np.asarray(net.projection.forward(net.segment_midpoints), dtype=np.float64)


class DestinationPredictor:
    """The destination posterior of one model on one network, with the prior built from stored destinations.

    Building it spreads the stored destinations ``(N,)`` (states) with the kernels once; a
    query costs two transposed solves, a distance profile, the summaries (milliseconds on a
    city network).
    """

    def __init__(self, net: RoadNetwork, model: RouteModel, params: DestinationPriorParams,
                 destinations: Sequence[int] | np.ndarray) -> None:
        self.net = net
        self.model = model
        self.params = params
        self.xy = _segment_xy(net)
        self.length = np.asarray(net.segment_length_m, dtype=np.float64)
        self.summarizer = DestinationSummarizer(self.xy)
        dest = np.asarray(destinations, dtype=np.int64)
        dest = dest[(dest >= 0) & (dest < net.n_states)]
        self.n_destinations = int(dest.size)
        self.marginal = self._marginal(dest)
        self.gravity: DistanceDecayPrior | None = None
        if params.gravity_beta:
            g = DistanceDecayPrior(params.gravity_edges_m)
            g.beta_ = np.asarray(params.gravity_beta, dtype=np.float64).reshape(1, -1)
            self.gravity = g
        self.stop: DistanceDecayPrior | None = None
        if params.stop_beta:
            beta = np.asarray(params.stop_beta, dtype=np.float64)
            s = DistanceDecayPrior(params.stop_edges_m, n_groups=beta.shape[0])
            s.beta_ = beta
            self.stop = s

    def _marginal(self, dest: np.ndarray) -> np.ndarray:
        """``(n,)`` the kernel prior of the stored destinations with its floor (uniform by length without any)."""
        uniform = self.length / self.length.sum()
        if dest.size == 0:
            return uniform
        p = self.params
        weights = np.asarray(p.weights, dtype=np.float64)
        total = float(weights.sum())
        if total <= 0:
            return uniform
        prior = np.zeros(self.xy.shape[0])
        for h, w in zip(p.bandwidths_m, weights, strict=True):
            if w > 1e-6 * total:
                kernel = destination_kernel(self.xy, self.xy[dest], float(h), self.length)
                prior += (w / total) * smoothed_prior(kernel)
        return with_floor(prior, float(p.floor), self.length)

    def log_prior(self, origin: int) -> np.ndarray:
        """``(n,)`` ``log P(d | the trip started on origin)``."""
        prior = self.marginal if self.gravity is None else self.gravity(self.xy, self.marginal, self.xy[origin])
        with np.errstate(divide="ignore"):
            out: np.ndarray = np.log(prior)
        return out

    def posterior(self, path: Sequence[int] | np.ndarray) -> np.ndarray:
        """``(n,)`` ``P(d | path)`` for a connected partial path (first state A, last B)."""
        p = self.model.mdp.check_states(path, "partial path state")
        if p.size == 0:
            raise InvalidParameterError("the partial path is empty")
        self.model.mdp.transition_indices(p)
        ratio = _log_ratio(self.model, p)
        post = _normalized(self.log_prior(int(p[0])), ratio, self.params.gamma)
        return self.stopping(post, p)

    def stopping(self, post: np.ndarray, path: np.ndarray) -> np.ndarray:
        """``post`` reshaped by the stop profile of the path's class of driven length (unchanged without one).

        The route model says where a trip can still go efficiently, not when it stops: a trip
        driven for a while tends to end nearer its current segment than the evidence alone says.
        """
        if self.stop is None:
            return post
        group = driven_group(self.length, path, self.params.stop_driven_edges_m)
        out: np.ndarray = self.stop(self.xy, post, self.xy[int(path[-1])], group)
        return out

    def answer(self, path: Sequence[int] | np.ndarray, top: int = 5) -> DestinationAnswer:
        """The posterior, its ``top`` clustered destinations and the expected-distance point (lon/lat)."""
        post = self.posterior(path)
        clusters = self.summarizer.top_destinations(post, self.params.radius_m, k=top)
        median = geometric_median(self.xy, post, mass=0.999)
        point = self.net.projection.inverse(np.asarray(median.point).reshape(1, 2))[0]
        return DestinationAnswer(post, clusters, point, float(median.expected_distance))

    def heat_map(self, post: np.ndarray, mass: float = 0.95, max_entries: int = 2000) -> tuple[np.ndarray, np.ndarray]:
        """``(states, probabilities)`` of the most probable segments holding ``mass`` of the posterior."""
        idx, prob = heat_map(post, mass=mass, max_entries=max_entries)
        return idx, prob


def fit_destination_prior(net: RoadNetwork, model: RouteModel, paths: Sequence[np.ndarray], *,
                          bandwidths_m: Sequence[float] = DEFAULT_BANDWIDTHS_M, n_folds: int = 5,
                          max_gravity_trips: int = 2000, max_query_trips: int = 200, seed: int = 0,
                          ) -> DestinationPriorParams:
    """Choose the prior, ``γ`` and the stop profile on training ``paths`` (in time order: folds are consecutive blocks).

    The kernel weights and floor maximize the out-of-fold likelihood of the trips'
    destinations; the gravity profile is fitted by maximum likelihood with each trip's fold left
    out of its base. ``γ`` and the stop profile are chosen on the partial paths (20 % ... 80 %
    of their length) of up to ``max_query_trips`` trips, each with the prior built without its
    own fold (a prior holding the trip's own destination would look too sure): ``γ`` minimizes
    the mean distance from the expected-distance point to the true destination; the stop
    profile (none, one for all, or one per class of driven length) is the variant with the
    smallest out-of-fold mean distance. With fewer than 20 trips the defaults are kept.
    """
    paths = [np.asarray(p, dtype=np.int64) for p in paths if len(p) >= 2]
    params = DestinationPriorParams(fitted_on=len(paths))
    if len(paths) < 20:
        params.notes["reason"] = f"defaults: {len(paths)} trips are too few to fit a prior"
        return params
    xy = _segment_xy(net)
    length = np.asarray(net.segment_length_m, dtype=np.float64)
    dest = np.array([p[-1] for p in paths])
    orig = np.array([p[0] for p in paths])
    n = len(paths)
    folds = np.minimum(np.arange(n) * n_folds // n, n_folds - 1)
    ms = cross_validate_multiscale(xy, xy[dest], dest, list(bandwidths_m), folds, support_weights=length)
    params.bandwidths_m = [float(h) for h in bandwidths_m]
    params.weights = [float(w) for w in ms.weights]
    params.floor = float(ms.floor)
    params.notes["multiscale_cv_loglik"] = float(ms.heldout_loglik)

    # gravity: each trip's base is the marginal without its own fold (the fold marginals serve the queries too)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(n, min(n, max_gravity_trips), replace=False))
    bases = {int(f): DestinationPredictor(net, model, params, dest[folds != f]).marginal for f in np.unique(folds)}
    gravity = DistanceDecayPrior().fit(xy, [bases[int(folds[i])] for i in pick], xy[orig[pick]], dest[pick])
    params.gravity_edges_m = [float(e) for e in gravity.edges]
    params.gravity_beta = [float(b) for b in gravity.beta_[0]]

    # the training trips' partial paths, with priors out of fold; memory: one posterior per query
    n_trips = min(n, max_query_trips, max(10, int(2e7 // (len(FRACTIONS) * net.n_states))))
    sample = np.sort(rng.choice(n, n_trips, replace=False))
    parts, priors, ratios, trip_of = [], [], [], []
    for i in sample.tolist():
        with np.errstate(divide="ignore"):
            prior = np.log(gravity(xy, bases[int(folds[i])], xy[orig[i]]))
        for fraction in FRACTIONS:
            part = partial_path(paths[i], fraction, length)
            parts.append(part)
            priors.append(prior)
            ratios.append(_log_ratio(model, part))
            trip_of.append(i)
    truth = xy[dest[trip_of]]

    def error_m(post: np.ndarray, q: int) -> float:
        point = geometric_median(xy, post, mass=0.99, tol_m=5.0).point
        return float(np.hypot(*(np.asarray(point) - truth[q])))

    mean_error = {g: float(np.mean([error_m(_normalized(priors[q], ratios[q], g), q) for q in range(len(parts))]))
                  for g in GAMMAS}
    params.gamma = min(mean_error, key=mean_error.__getitem__)
    params.notes["gamma_mean_error_m"] = {f"{g:g}": round(e, 1) for g, e in mean_error.items()}
    posts = [_normalized(priors[q], ratios[q], params.gamma) for q in range(len(parts))]
    del priors, ratios
    _fit_stop_profile(params, xy, length, posts, parts, dest[trip_of], folds[trip_of], mean_error[params.gamma],
                      error_m)
    log.info("destination prior on %d trips: kernel weights %s, floor %.3f, gamma %g, stop profile %s", n,
             np.round(params.weights, 3).tolist(), params.floor, params.gamma, params.notes["stop_profile"])
    return params


def _fit_stop_profile(params: DestinationPriorParams, xy: np.ndarray, length: np.ndarray, posts: list[np.ndarray],
                      parts: list[np.ndarray], dest: np.ndarray, folds: np.ndarray, error_without: float,
                      error_m: Callable[[np.ndarray, int], float]) -> None:
    """Choose and fit the stop profile (none, pooled, per driven-length class) by out-of-fold mean error, in place."""
    here = xy[np.array([int(p[-1]) for p in parts])]
    driven = np.array([float(length[p].sum()) for p in parts])
    variants: dict[str, list[float]] = {"pooled": [], "driven": [float(e) for e in np.quantile(
        driven, STOP_GROUP_QUANTILES)]}
    errors = {"none": error_without}
    for name, edges in variants.items():
        groups = np.searchsorted(np.asarray(edges), driven, side="right") if edges else np.zeros(len(parts), int)
        total = 0.0
        for f in np.unique(folds):
            train, held = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
            if train.size == 0:
                continue
            stop = DistanceDecayPrior(STOP_EDGES_M, l2=1e-3, n_groups=len(edges) + 1).fit(
                xy, [posts[q] for q in train], here[train], dest[train], groups[train])
            total += sum(error_m(stop(xy, posts[q], here[q], int(groups[q])), int(q)) for q in held)
        errors[name] = total / len(parts)
    best = min(errors, key=errors.__getitem__)
    params.notes["stop_mean_error_m"] = {k: round(v, 1) for k, v in errors.items()}
    params.notes["stop_profile"] = best
    if best == "none":
        return
    edges = variants[best]
    groups = np.searchsorted(np.asarray(edges), driven, side="right") if edges else np.zeros(len(parts), int)
    stop = DistanceDecayPrior(STOP_EDGES_M, l2=1e-3, n_groups=len(edges) + 1).fit(xy, posts, here, dest, groups)
    params.stop_edges_m = [float(e) for e in STOP_EDGES_M]
    params.stop_beta = [[float(b) for b in row] for row in stop.beta_]
    params.stop_driven_edges_m = edges
