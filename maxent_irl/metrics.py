"""Evaluation metrics of Ziebart et al. (2008): Table 1 and Fig. 5.

* route matching: the share of a held-out route's *distance* that the model's most
  likely path shares with it, and the share of trips matched to >= 90%;
* mean log-probability of held-out routes;
* destination prediction: top-k accuracy of the destination posterior versus the
  fraction of the route (by distance) observed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from maxent_irl.exceptions import InvalidParameterError

__all__ = ["destination_accuracy", "partial_path", "route_match_fraction", "table1_row"]

PathPredictor = Callable[[int, int], np.ndarray]


def route_match_fraction(predicted: np.ndarray, actual: np.ndarray, state_length: np.ndarray) -> float:
    """Share of ``actual``'s distance on states that ``predicted`` also uses (1 for an empty route)."""
    actual = np.asarray(actual)
    total = float(state_length[actual].sum())
    if total <= 0:
        return 1.0
    shared = np.isin(actual, np.asarray(predicted))
    return float(state_length[actual][shared].sum() / total)


def table1_row(
    predict: PathPredictor,
    paths: Sequence[np.ndarray],
    state_length: np.ndarray,
    log_prob: Callable[[Sequence[np.ndarray]], np.ndarray] | None = None,
) -> dict[str, float | None]:
    """One row of Table 1 for a model: ``matching``, ``match90`` (fractions in [0, 1]) and mean ``log_prob``.

    ``predict(o, d)`` gives the model's route; ``log_prob(paths)`` the per-path
    log-probabilities (None for models that are not densities).
    """
    if len(paths) == 0:
        raise InvalidParameterError("no paths to evaluate")
    match = np.array([route_match_fraction(predict(int(p[0]), int(p[-1])), p, state_length) for p in paths])
    return {
        "matching": float(match.mean()),
        "match90": float(np.mean(match >= 0.9 - 1e-12)),
        "log_prob": None if log_prob is None else float(np.mean(log_prob(paths))),
    }


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
    fractions: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    top_k: Sequence[int] = (1, 3),
) -> dict[int, np.ndarray]:
    """Top-k accuracy ``(len(fractions),)`` for each k: is the true destination among the k most probable?

    Only trips whose destination is a candidate count (the paper predicts among a
    fixed set of destinations). Ties are broken against the true destination.
    """
    candidates = np.asarray(candidates)
    trips = [p for p in paths if np.isin(p[-1], candidates)]
    if not trips:
        raise InvalidParameterError("no trip ends at a candidate destination")
    hits = {k: np.zeros(len(fractions)) for k in top_k}
    for p in trips:
        true_idx = int(np.flatnonzero(candidates == p[-1])[0])
        for f_i, f in enumerate(fractions):
            probs = posterior(partial_path(p, f, state_length), candidates, prior)
            rank = int(np.sum(probs >= probs[true_idx])) - 1  # others at least as probable
            for k in top_k:
                hits[k][f_i] += rank < k
    return {k: v / len(trips) for k, v in hits.items()}
