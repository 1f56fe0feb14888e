"""One evaluation from flags to report folder: data, fits, Table 1, θ recovery (Fig. 3), destinations (Fig. 5).

Every model predicts each held-out trip's route from its origin and destination, and
each comparison with MaxEnt is paired over the same trips. MaxEnt must beat the baselines
(:func:`table_roles`). On simulated trips the true θ's own most likely path is scored too: it
is the ceiling no fitted θ can be expected to pass, and the report names the rows that reach
it. The action model's costs planned as shortest paths reach it there, so on simulated trips
that row is a reference, not a baseline.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.baselines import ShortestPathBaseline
from evaluation.config import (
    ACTION,
    ACTION_COSTS,
    BASELINES,
    MAXENT,
    MMP,
    ORACLE,
    REFERENCE_WHEN_SIMULATED,
    TIME,
    EvalConfig,
    EvaluationError,
    check_config,
)
from evaluation.data import get_trips, load_network, split_train_test, usable_paths
from evaluation.destination_error import destination_error
from evaluation.destinations import destination_prediction
from evaluation.metrics import FRACTIONS, MATCH90, paired_difference, route_matches, table1_summary
from evaluation.models import (
    fit_action_model,
    fit_max_margin,
    fit_maxent,
    maxent_information,
    travel_time_costs,
)
from evaluation.plots import plot_costs, plot_destination_error, plot_destinations
from evaluation.progress import progress_bar, timed
from evaluation.recovery import seconds_with_se, theta_recovery
from evaluation.report import jsonable, render_report
from maxent_irl import RouteModel
from maxent_irl.roads import weights_as_seconds
from maxent_irl.uncertainty import covariance

__all__ = ["maxent_beats", "run_evaluation", "table_roles"]

log = logging.getLogger(__name__)


def run_evaluation(cfg: EvalConfig) -> dict[str, Any]:
    """Run the whole evaluation and write the report folder; returns what ``metrics.json`` holds."""
    check_config(cfg)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    out = Path(cfg.out) if cfg.out else Path("reports") / datetime.now().strftime("evaluate-%Y%m%d-%H%M%S")
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(cfg.seed).spawn(4)]

    with timed(timings, "network"):
        net = load_network(cfg)
    mdp, L, names = net.mdp, net.segment_length_m, net.feature_names
    data: dict[str, Any] = {"network": net.name, "fingerprint": net.fingerprint, "n_states": net.n_states,
                            "n_transitions": int(mdp.n_transitions)}
    with timed(timings, "trips"):
        raw, true_theta = get_trips(cfg, net, data)
        paths, dropped = usable_paths(mdp, raw)
    train_idx, test_idx = split_train_test(len(paths), cfg.test_fraction, seeds[0])
    if cfg.mmp and train_idx.size < 2:
        raise EvaluationError(f"max margin planning chooses its λ on training trips held back from its fit, so it "
                              f"needs at least 2 training trips, got {train_idx.size}: use more trips or --no-mmp")
    out.mkdir(parents=True, exist_ok=True)  # only once there is something to evaluate
    train, test = [paths[i] for i in train_idx], [paths[i] for i in test_idx]
    data.update(n_trips=len(paths), n_dropped=dropped, n_train=len(train), n_test=len(test),
                test_fraction=cfg.test_fraction, mean_segments=float(np.mean([p.size for p in paths])),
                mean_km=float(np.mean([L[p].sum() for p in paths]) / 1000))
    log.info("%d usable trips (%s dropped): %d train, %d test", len(paths), dropped or "none", len(train), len(test))

    # -- fitting
    with timed(timings, "fit_maxent"):
        maxent = fit_maxent(mdp, train, cfg.max_iter, cfg.progress)
    log.info("MaxEnt: %d iterations, %s", maxent.n_iter_, maxent.message_)
    with timed(timings, "hessian"):
        cov = covariance(maxent_information(mdp, train, maxent, cfg.progress))
    time_based = ShortestPathBaseline(travel_time_costs(net)).fit(mdp, train)
    with timed(timings, "fit_action"):
        action_fit = fit_action_model(mdp, train, cfg.action_trips, cfg.action_max_iter, cfg.action_warm_trips,
                                      seeds[1], cfg.progress)
    action = action_fit.model
    log.info("action-based model: %d iterations on %d trips", action_fit.n_iter, action_fit.n_trips)
    mmp = None
    if cfg.mmp:
        with timed(timings, "fit_mmp"):
            mmp = fit_max_margin(mdp, train, L, cfg.mmp_iter, cfg.mmp_batch, seeds[2], cfg.progress)
        log.info("max margin planning: lambda %g", mmp.lam_)
    oracle = RouteModel(mdp, true_theta) if true_theta is not None else None

    # -- Table 1
    predictors: list[tuple[str, Callable[[int, int], np.ndarray], Callable | None]] = [
        (TIME, time_based.most_likely_path, None)]
    if mmp is not None:
        predictors.append((MMP, mmp.most_likely_path, None))
    predictors += [(ACTION, action.most_likely_path, action.path_log_prob),
                   (ACTION_COSTS, action.lowest_cost_path, None),
                   (MAXENT, maxent.most_likely_path, maxent.path_log_prob)]
    if oracle is not None:
        predictors.append((ORACLE, oracle.most_likely_path, oracle.path_log_prob))
    per_trip: dict[str, dict[str, np.ndarray]] = {}
    with timed(timings, "table1"):
        for name, predict, log_prob in predictors:
            with progress_bar(cfg.progress, total=len(test), desc=f"Table 1: {name}") as bar:
                match = route_matches(predict, test, L, callback=lambda _: bar.update(1))
            per_trip[name] = {"match": match, "match90": (match >= MATCH90 - 1e-12).astype(float)}
            if log_prob is not None:
                per_trip[name]["log_prob"] = np.asarray(log_prob(test), dtype=float)
    table1 = {n: table1_summary(v["match"], v.get("log_prob")) for n, v in per_trip.items()}
    rivals = [n for n, _, _ in predictors if n not in (MAXENT, ORACLE)]  # every other fitted predictor
    baselines, references = table_roles(list(table1), simulated=true_theta is not None)
    comparisons = {
        b: {m: paired_difference(per_trip[MAXENT][m], per_trip[b][m]) for m in ("match", "match90", "log_prob")
            if m in per_trip[b]} for b in rivals
    }
    beats = maxent_beats(table1, baselines)
    beats_action_costs = {k: v for k, v in maxent_beats(table1, [ACTION_COSTS]).items() if k != "log_prob"}
    ceiling = _ceiling(per_trip, rivals) if ORACLE in per_trip else None

    # -- theta recovery (Fig. 3)
    present = np.any(mdp.features != 0, axis=0)
    F_train = np.array([(mdp.features[mdp.transition_indices(p)] != 0).any(axis=0) for p in train])
    recovery = theta_recovery(names, maxent.theta_, cov, true_theta, F_train.sum(axis=0), present,
                              cfg.rel_se_max, cfg.tolerance)
    seconds: dict[str, Any] = {}
    try:
        learned_s, learned_se = seconds_with_se(maxent.theta_, cov, names)
        true_s = None
        if true_theta is not None:
            true_s = weights_as_seconds(true_theta, names)
        seconds = {"learned": learned_s, "learned_se": learned_se, "true": true_s}
        plot_costs(out / "costs.png", names, learned_s, learned_se, true_s, present)
    except ValueError as exc:  # the anchor road has no cost: weights cannot be put in seconds
        log.warning("no cost chart: %s", exc)

    # -- Fig. 5
    with timed(timings, "destinations"):
        dest = destination_prediction(cfg, net, maxent, train, test, seeds[3])
    plot_destinations(out / "destinations.png", FRACTIONS, {k: np.array(v) for k, v in dest["accuracy"].items()},
                      dest["prior_accuracy"], dest["n_regions"])

    with timed(timings, "destination_error"):
        err_test = test  # the same number of held-out trips as Fig. 5 (0 = all), a subsample of its own
        if 0 < cfg.destination_trips < len(test):
            pick = np.random.default_rng(seeds[3] + 1).choice(len(test), cfg.destination_trips, replace=False)
            err_test = [test[i] for i in np.sort(pick)]
        dest_err = destination_error(net, maxent.model_, train, err_test, progress=cfg.progress, log=log.warning)
    plot_destination_error(out / "destination_error.png", dest_err)

    timings["total"] = round(time.perf_counter() - t_start, 3)
    checks = {
        "maxent_beats_every_baseline": beats,
        "maxent_beats_action_costs": beats_action_costs,  # part of the first check only where it is a baseline
        "theta_within_tolerance_on_exercised": recovery.get("all_exercised_within_tolerance"),
        "destination_accuracy_rises": dest["rises"],
        "baselines_at_true_theta_ceiling": None if ceiling is None else ceiling["at_ceiling"],
    }
    metrics = {
        "config": asdict(cfg),
        "data": data,
        "baselines": baselines,
        "references": references,
        "table1": table1,
        "paired_differences_maxent_minus": comparisons,
        "paired_differences_true_theta_minus": None if ceiling is None else ceiling["differences"],
        "checks": checks,
        "theta": recovery,
        "seconds": seconds,
        "destinations": dest,
        "destination_error": dest_err,
        "models": {
            MAXENT: {"theta": maxent.theta_.tolist(), "n_iter": maxent.n_iter_, "converged": maxent.converged_,
                     "message": maxent.message_, "train_log_likelihood": maxent.log_likelihood_},
            ACTION: {"theta": np.asarray(action.theta_).tolist(), "n_iter": action_fit.n_iter,
                     "n_train_trips": action_fit.n_trips, "converged": action.converged_,
                     "n_at_min_cost": action.n_at_min_cost_, "max_iter": cfg.action_max_iter,
                     "message": action.message_, "warm_trips": action_fit.warm_start_trips},
            **({MMP: {"w": mmp.w_.tolist(), "lambda": mmp.lam_, "validation_matching": mmp.validation_,
                      "n_iter": cfg.mmp_iter, "batch": cfg.mmp_batch}} if mmp is not None else {}),
        },
        "feature_names": names,
        "timings_s": timings,
    }
    (out / "metrics.json").write_text(json.dumps(jsonable(metrics), indent=2, allow_nan=False) + "\n")
    (out / "report.md").write_text(render_report(metrics, out))
    metrics["out"] = str(out)
    return metrics


def table_roles(names: Sequence[str], simulated: bool) -> tuple[list[str], list[str]]:
    """``(baselines, references)`` among Table 1's rows, in table order: which rows MaxEnt must beat.

    On simulated trips Action (costs) is a reference: it reaches the true θ's ceiling there
    (``config.REFERENCE_WHEN_SIMULATED``). The true θ is always a reference.
    """
    unknown = set(names) - {*BASELINES, *REFERENCE_WHEN_SIMULATED, MAXENT, ORACLE}
    if unknown:  # a new model must be given a role before it can be reported
        raise ValueError(f"Table 1 rows without a role: {sorted(unknown)}")
    reference = {ORACLE, *(REFERENCE_WHEN_SIMULATED if simulated else ())}
    return ([n for n in names if n != MAXENT and n not in reference], [n for n in names if n in reference])


def maxent_beats(table1: dict[str, dict[str, Any]], rivals: Sequence[str]) -> dict[str, bool]:
    """Per Table-1 metric: is MaxEnt's point estimate above every rival that has this number?

    A rival without the number (Log Prob of a planner that is not a distribution over routes)
    does not count for that metric, as N/A in the paper's Table 1.
    """
    return {metric: all(table1[MAXENT][metric] > table1[r][metric] for r in rivals if table1[r][metric] is not None)
            for metric in ("matching", "match90", "log_prob")}


def _ceiling(per_trip: dict[str, dict[str, np.ndarray]], baselines: Sequence[str]) -> dict[str, Any]:
    """Paired ``true θ - rival`` differences, and per matching metric the rivals the true θ does not beat.

    The most likely path is not the prediction that maximizes expected matched distance (a bundle of
    similar, individually less likely routes can carry more probability than the single best one), so
    a biased model can match held-out routes as well as the true θ, or better. Where the true θ's own
    most likely path does not beat a baseline (same point-estimate comparison as the MaxEnt check),
    MaxEnt, whose most likely path converges to the true θ's, cannot be expected to beat it either.
    """
    differences = {b: {m: paired_difference(per_trip[ORACLE][m], per_trip[b][m]) for m in ("match", "match90")}
                   for b in baselines}
    at_ceiling = {metric: [b for b in baselines if differences[b][key]["diff"] <= 0]
                  for metric, key in (("matching", "match"), ("match90", "match90"))}
    return {"differences": differences, "at_ceiling": at_ceiling}
