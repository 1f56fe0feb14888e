"""Destination error in kilometres: the posterior's answer against the simple guesses a user would try first.

For every held-out trip and every observed fraction (20/40/60/80 % of its length), each
method names one point and up to five places:

* ``posterior``: the library's :class:`~maxent_irl.roads.destinations.DestinationPredictor`
  (prior learned on the training trips, route model evidence): the point minimizing the
  expected distance, and the top clustered destinations;
* ``last point``: "the car stops where it is now" (the last observed segment);
* ``prior only``: the same prior given the trip's origin, without the route evidence;
* ``nearest training trip``: the training trips that started nearest the origin and passed
  nearest the current position; their ends.

The error of a point is its distance to the true end (segment midpoints, metres); "top-5
within 500 m" says whether any of the five places lies within ``radius_m`` of it. Every
comparison is paired (the same trips, the same fractions), with a normal 95 % interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from evaluation.metrics import paired_difference
from evaluation.progress import progress_bar
from maxent_irl import RouteModel
from maxent_irl.destination_summaries import geometric_median
from maxent_irl.exceptions import MaxEntIRLError
from maxent_irl.roads import RoadNetwork
from maxent_irl.roads.destinations import (
    DestinationPredictor,
    DestinationPriorParams,
    fit_destination_prior,
    partial_path,
)

__all__ = ["DESTINATION_FRACTIONS", "METHODS", "NearestTrip", "destination_error"]

DESTINATION_FRACTIONS: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
POSTERIOR, LAST, PRIOR, NEAREST = "posterior", "last point", "prior only", "nearest training trip"
METHODS = (POSTERIOR, LAST, PRIOR, NEAREST)


class NearestTrip:
    """Guess the end of the training trip that started nearest the origin and passed nearest the current position."""

    def __init__(self, xy: np.ndarray, paths: Sequence[np.ndarray]) -> None:
        self.start = np.array([xy[p[0]] for p in paths])
        self.end = np.array([xy[p[-1]] for p in paths])
        self.points = np.concatenate([xy[p] for p in paths])
        self.offsets = np.concatenate([[0], np.cumsum([len(p) for p in paths])[:-1]])

    def guesses(self, origin_xy: np.ndarray, here_xy: np.ndarray, k: int) -> np.ndarray:
        """``(k, 2)`` ends of the ``k`` best-matching training trips, best first."""
        passing = np.minimum.reduceat(np.hypot(*(self.points - here_xy).T), self.offsets)
        score = np.hypot(*(self.start - origin_xy).T) + passing
        best = np.argsort(score, kind="stable")[:k]
        out: np.ndarray = self.end[best]
        return out


def _within(places: np.ndarray, truth: np.ndarray, radius_m: float) -> float:
    return float(places.size > 0 and np.min(np.hypot(*(places - truth).T)) <= radius_m)


def destination_error(
    net: RoadNetwork, model: RouteModel, train: Sequence[np.ndarray], test: Sequence[np.ndarray], *,
    fractions: Sequence[float] = DESTINATION_FRACTIONS, params: DestinationPriorParams | None = None,
    radius_m: float = 500.0, top: int = 5, progress: bool = False, log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Per fraction and method: mean and median error (km), share of top-``top`` within ``radius_m``, paired CIs.

    ``params`` default: :func:`fit_destination_prior` on ``train`` (as the service's training job does).
    Test trips of one segment are skipped (nothing to observe before the end).
    """
    if params is None:
        params = fit_destination_prior(net, model, list(train))
    predictor = DestinationPredictor(net, model, params, [int(p[-1]) for p in train])
    xy, length = predictor.xy, predictor.length
    nearest = NearestTrip(xy, list(train))
    trips = [np.asarray(p) for p in test if len(p) >= 2]
    errors: dict[str, dict[float, list[float]]] = {m: {f: [] for f in fractions} for m in METHODS}
    hits: dict[str, dict[float, list[float]]] = {m: {f: [] for f in fractions} for m in METHODS}
    failed = 0
    with progress_bar(progress, total=len(trips), desc="destination error") as bar:
        for path in trips:
            truth = xy[path[-1]]
            prior = np.exp(predictor.log_prior(int(path[0])))
            prior /= prior.sum()
            prior_point = np.asarray(geometric_median(xy, prior, mass=0.999).point)
            prior_places = np.array([c.xy for c in predictor.summarizer.top_destinations(prior, radius_m, k=top)])
            for f in fractions:
                seen = partial_path(path, f, length)
                try:
                    post = predictor.posterior(seen)
                except MaxEntIRLError:
                    failed += 1
                    post = prior
                point = np.asarray(geometric_median(xy, post, mass=0.999).point)
                places = np.array([c.xy for c in predictor.summarizer.top_destinations(post, radius_m, k=top)])
                here = xy[seen[-1]]
                guesses = nearest.guesses(xy[path[0]], here, top)
                for m, p, pl in ((POSTERIOR, point, places), (LAST, here, here[None, :]),
                                 (PRIOR, prior_point, prior_places), (NEAREST, guesses[0], guesses)):
                    errors[m][f].append(float(np.hypot(*(p - truth))) / 1000.0)
                    hits[m][f].append(_within(pl, truth, radius_m))
            bar.update(1)
    if log is not None and failed:
        log(f"{failed} partial paths had no reachable destination; the prior answered for them")
    table: dict[str, Any] = {}
    for f in fractions:
        key = f"{round(100 * f)}%"
        e = {m: np.asarray(errors[m][f]) for m in METHODS}
        h = {m: np.asarray(hits[m][f]) for m in METHODS}
        table[key] = {
            m: {"mean_km": float(e[m].mean()), "median_km": float(np.median(e[m])),
                f"top{top}_within_{round(radius_m)}m": float(h[m].mean())} for m in METHODS
        }
        table[key]["posterior_minus"] = {
            m: {"error_km": paired_difference(e[POSTERIOR], e[m]),
                f"top{top}_within_{round(radius_m)}m": paired_difference(h[POSTERIOR], h[m])}
            for m in METHODS if m != POSTERIOR
        }
    return {"n_trips": len(trips), "fractions": [float(f) for f in fractions], "radius_m": radius_m, "top": top,
            "prior_params": params.to_dict(), "failed_partials": failed, "by_fraction": table,
            "methods": list(METHODS)}
