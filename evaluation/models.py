"""Fitting the models of Table 1 with progress bars: MaxEnt, the action-based model, max margin planning.

The estimators live in :mod:`maxent_irl`; this module chooses how an evaluation runs
them (sample sizes, warm starts, seeds) and shows their progress.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evaluation.baselines import ActionBasedModel
from evaluation.config import EvaluationError
from evaluation.max_margin import MaxMarginPlanning
from evaluation.progress import progress_bar
from maxent_irl import FitProgress, MaxEntIRL, RouteMDP
from maxent_irl.exceptions import InvalidParameterError
from maxent_irl.roads import RoadNetwork
from maxent_irl.uncertainty import information_matrix

__all__ = ["ActionFit", "fit_action_model", "fit_max_margin", "fit_maxent", "maxent_information", "travel_time_costs"]

log = logging.getLogger(__name__)


def travel_time_costs(net: RoadNetwork) -> np.ndarray:
    """``(T,)`` seconds to drive the entered segment at its speed: the paper's "time-based" costs."""
    dst = net.mdp.dst
    return net.segment_length_m[dst] / (np.maximum(net.segment_speed_kph[dst], 1.0) / 3.6)


def fit_maxent(mdp: RouteMDP, paths: Sequence[np.ndarray], max_iter: int, progress: bool) -> MaxEntIRL:
    """MaxEnt IRL by maximum likelihood (unregularized, as the paper), with a progress bar.

    Every segment and turn stays a cost (``nonpositive_rewards``), as in the service and the paper;
    on simulated drivers with costs the optimum is feasible and the fit is unchanged.
    """
    with progress_bar(progress, total=max_iter, desc="MaxEnt fit") as bar:

        def tick(p: FitProgress) -> None:
            bar.update(1)
            bar.set_postfix(ll=f"{p.log_likelihood:.2f}", grad=f"{p.grad_norm:.1e}")

        return MaxEntIRL(max_iter=max_iter, callback=tick, nonpositive_rewards=True).fit(mdp, list(paths))


@dataclass(frozen=True)
class ActionFit:
    """The fitted action-based model and how it was fitted (iterations include the warm start's)."""

    model: ActionBasedModel
    n_iter: int
    warm_start_trips: int
    n_trips: int


def fit_action_model(
    mdp: RouteMDP, paths: Sequence[np.ndarray], max_trips: int, max_iter: int, warm_trips: int, seed: int,
    progress: bool,
) -> ActionFit:
    """The action-based baseline, fitted on at most ``max_trips`` training trips (0: all, the default).

    It starts from the class's default weights, independently of MaxEnt: started from the
    MaxEnt weights it stays so close to them that "Action (costs)" plans MaxEnt's routes and
    the comparison measures nothing. It runs to convergence on all the trips. With
    ``warm_trips`` > 0 and more trips than that, it is first fitted on a seeded subsample of
    ``warm_trips``. That was meant to save time, since each likelihood evaluation costs a
    Dijkstra per distinct destination, but on 40,000 Andorra trips it was slower (113 s
    against 70 s) and reached the same optimum, so the evaluation's default is 0. The
    likelihood is not concave, so a warm start need not end where a cold start does.
    """
    rng = np.random.default_rng(seed)
    paths = list(paths)
    if 0 < max_trips < len(paths):
        keep = np.sort(rng.choice(len(paths), max_trips, replace=False))
        paths = [paths[i] for i in keep]
    with progress_bar(progress, desc="action-based fit (likelihood evaluations)") as bar:

        def tick(_: FitProgress) -> None:
            bar.update(1)

        theta0, n_iter, warm_used = None, 0, 0
        if 0 < warm_trips < len(paths):
            keep = np.sort(rng.choice(len(paths), warm_trips, replace=False))
            warm = ActionBasedModel(max_iter=max_iter, callback=tick).fit(mdp, [paths[i] for i in keep])
            theta0, n_iter, warm_used = warm.theta_, warm.n_iter_, warm_trips
            log.info("action-based model: warm start from %d trips (%d iterations)", warm_trips, n_iter)
        model = ActionBasedModel(max_iter=max_iter, theta0=theta0, callback=tick).fit(mdp, paths)
    return ActionFit(model, n_iter + model.n_iter_, warm_used, len(paths))


def fit_max_margin(mdp: RouteMDP, paths: Sequence[np.ndarray], state_length_m: np.ndarray, n_iter: int, batch: int,
                   seed: int, progress: bool) -> MaxMarginPlanning:
    """Max margin planning with ``lambda`` chosen on a validation split, one progress bar per candidate."""
    with progress_bar(progress, total=0, desc="max margin") as bar:

        def tick(step: FitProgress) -> None:
            if step.iteration == 1:  # a new candidate lambda (or the final refit): a fresh bar
                bar.reset(total=step.total)
                bar.set_description(f"max margin ({step.stage.replace('lam', 'λ')})")
            bar.update(1)
            bar.set_postfix(hinge=f"{step.objective:.3f}")

        try:
            return MaxMarginPlanning(n_iter=n_iter, batch=batch, random_state=seed, callback=tick).fit(
                mdp, paths, state_length_m)
        except InvalidParameterError as exc:  # e.g. features that cannot make every cost positive
            raise EvaluationError(f"max margin planning cannot run on these trips: {exc} (or pass --no-mmp)") from exc


def maxent_information(mdp: RouteMDP, paths: Sequence[np.ndarray], maxent: MaxEntIRL, progress: bool) -> np.ndarray:
    """The observed information of MaxEnt's ``theta`` on its training trips (for standard errors)."""
    n = int(np.any(mdp.features != 0, axis=0).sum())
    with progress_bar(progress, total=n, desc="Hessian (finite differences)") as bar:
        return information_matrix(mdp, paths, maxent.theta_, ordering=maxent.model_.ordering,
                                  callback=lambda _: bar.update(1))
