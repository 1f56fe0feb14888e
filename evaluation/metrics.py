"""Evaluation metrics of Ziebart et al. (2008): Table 1 and Fig. 5.

* route matching: the share of a held-out route's *distance* that the model's most
  likely path shares with it, and the share of trips matched to >= 90%;
* mean log-probability of held-out routes;
* destination prediction: top-k accuracy of the destination posterior versus the
  fraction of the route (by distance) observed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from maxent_irl.exceptions import InvalidParameterError, UnreachableDestinationError

__all__ = [
    "FRACTIONS", "MATCH90", "destination_accuracy", "paired_difference", "partial_path", "route_match_fraction",
    "route_matches", "table1_summary",
]

#: Share of a route that counts as matched in Table 1's second column.
MATCH90 = 0.9
#: Fractions of a trip's distance observed before predicting its destination (Fig. 5).
FRACTIONS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

PathPredictor = Callable[[int, int], np.ndarray]


def route_match_fraction(predicted: np.ndarray, actual: np.ndarray, state_length: np.ndarray) -> float:
    """Share of ``actual``'s distance on states that ``predicted`` also uses (1 for an empty route)."""
    actual = np.asarray(actual)
    total = float(state_length[actual].sum())
    if total <= 0:
        return 1.0
    shared = np.isin(actual, np.asarray(predicted))
    return float(state_length[actual][shared].sum() / total)


def route_matches(
    predict: PathPredictor, paths: Sequence[np.ndarray], state_length: np.ndarray,
    callback: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Per trip ``(n,)``: the share of the held-out route's distance matched by ``predict(origin, destination)``.

    ``callback(i)`` runs after trip ``i`` (a progress bar's hook).
    """
    if len(paths) == 0:
        raise InvalidParameterError("no paths to evaluate")
    out = np.empty(len(paths))
    for i, p in enumerate(paths):
        out[i] = route_match_fraction(predict(int(p[0]), int(p[-1])), p, state_length)
        if callback is not None:
            callback(i)
    return out


def table1_summary(match: np.ndarray, log_prob: np.ndarray | None = None) -> dict[str, float | int | None]:
    """One row of Table 1 from per-trip values: ``matching`` and ``match90`` (fractions), mean ``log_prob``.

    ``log_prob`` is None for models that are not densities (shortest paths, max margin).
    """
    match = np.asarray(match, dtype=float)
    if match.ndim != 1 or match.size == 0:
        raise InvalidParameterError("no trips to summarize")
    if log_prob is not None and np.shape(log_prob) != match.shape:
        raise InvalidParameterError(f"log_prob has shape {np.shape(log_prob)}, the matches {match.shape}")
    return {
        "matching": float(match.mean()),
        "match90": float(np.mean(match >= MATCH90 - 1e-12)),
        "log_prob": None if log_prob is None else float(np.mean(log_prob)),
        "n_trips": int(match.size),
    }


def paired_difference(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Mean of ``a - b`` over the same trips, with a normal 95 % interval.

    Paired because trips differ far more from each other than two models do on one trip:
    the interval of the difference is much narrower than the two rows' own intervals.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise InvalidParameterError("paired_difference needs two equally long, nonempty per-trip arrays")
    d = a - b
    half = 1.96 * float(d.std(ddof=1)) / math.sqrt(d.size) if d.size > 1 else math.inf
    return {"diff": float(d.mean()), "ci95_low": float(d.mean() - half), "ci95_high": float(d.mean() + half)}


def partial_path(path: np.ndarray, fraction: float, state_length: np.ndarray) -> np.ndarray:
    """The prefix of ``path`` covering ``fraction`` of its distance (at least its first state)."""
    path = np.asarray(path)
    cum = np.cumsum(state_length[path])
    k = int(np.searchsorted(cum, fraction * cum[-1], side="left"))
    return path[: max(1, min(k + 1, path.size))]


def destination_accuracy(
    posterior: Callable[[np.ndarray, np.ndarray, np.ndarray | None], np.ndarray],
    paths: Sequence[np.ndarray],
    candidates: np.ndarray,
    prior: np.ndarray | None,
    state_length: np.ndarray,
    fractions: Sequence[float] = FRACTIONS,
    top_k: Sequence[int] = (1, 3),
    *,
    candidate_region: np.ndarray | None = None,
    true_region: np.ndarray | None = None,
    n_regions: int | None = None,
    callback: Callable[[int], None] | None = None,
) -> dict[int, np.ndarray]:
    """Top-k accuracy ``(len(fractions),)`` for each k, given the first fraction (by distance) of each trip.

    Without regions, the question is "is the true destination among the k most probable
    candidates?", and only trips ending at a candidate count. With regions (the paper's
    Fig. 5 predicts among 5), ``candidate_region`` ``(C,)`` maps each candidate to a
    region, ``true_region`` ``(n,)`` gives each trip's, and a region's probability is the
    sum over its candidates; ``n_regions`` (default: the largest region index + 1) counts
    regions without candidates too, which tie at probability 0. Ties count against the
    truth; a trip that has passed every candidate (:class:`UnreachableDestinationError`)
    is a miss. ``callback(i)`` runs after trip ``i``.
    """
    candidates = np.asarray(candidates)
    if candidate_region is None:
        if true_region is not None or n_regions is not None:
            raise InvalidParameterError("true_region and n_regions need candidate_region")
        trips = [p for p in paths if np.isin(p[-1], candidates)]
        if not trips:
            raise InvalidParameterError("no trip ends at a candidate destination")
        group = np.arange(candidates.size)
        truth = np.array([int(np.flatnonzero(candidates == p[-1])[0]) for p in trips], dtype=int)
    else:
        if true_region is None or len(true_region) != len(paths) or len(candidate_region) != candidates.size:
            raise InvalidParameterError("regions need candidate_region (one per candidate) and true_region "
                                        "(one per path)")
        trips, group, truth = list(paths), np.asarray(candidate_region), np.asarray(true_region, dtype=int)
        if not trips:
            raise InvalidParameterError("no paths to evaluate")
    n_groups = int(max(group.max(initial=-1), truth.max(initial=-1))) + 1
    if n_regions is not None:
        if n_regions < n_groups:
            raise InvalidParameterError(f"n_regions={n_regions}, but region {n_groups - 1} occurs")
        n_groups = n_regions
    hits = {k: np.zeros(len(fractions)) for k in top_k}
    for i, (p, r) in enumerate(zip(trips, truth, strict=True)):
        for f_i, f in enumerate(fractions):
            try:
                probs = posterior(partial_path(p, f, state_length), candidates, prior)
            except UnreachableDestinationError:
                continue
            by_group = np.bincount(group, probs, minlength=n_groups)
            rank = int(np.sum(by_group >= by_group[r])) - 1  # others at least as probable
            for k in top_k:
                hits[k][f_i] += rank < k
        if callback is not None:
            callback(i)
    return {k: v / len(trips) for k, v in hits.items()}
