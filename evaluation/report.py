"""``report.md`` and ``metrics.json``: what an evaluation found, for people and for programs.

``metrics.json`` is strict JSON (no NaN: a missing or infinite number is null). The
Markdown report renders from that same dictionary, so the two never disagree.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.config import ACTION, ACTION_COSTS, MAXENT, MMP, ORACLE

__all__ = ["format_num", "format_pct", "jsonable", "render_report"]


def jsonable(obj: Any) -> Any:
    """JSON without NaN/inf (as null) and with numpy scalars and int keys converted."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def format_pct(x: float | None) -> str:
    """A fraction as a percentage with 2 decimals; ``N/A`` for a model without this number."""
    return "N/A" if x is None else f"{100 * x:.2f}%"


def _rel(x: float | None) -> str:
    """Like :func:`format_pct`, but infinite (an unidentified weight's relative error) is ``N/A`` too."""
    return "N/A" if x is None or not math.isfinite(x) else f"{100 * x:.2f}%"


def format_num(x: float | None, fmt: str = ".3f") -> str:
    """A number in ``fmt``; ``N/A`` when missing or infinite."""
    return "N/A" if x is None or not math.isfinite(x) else format(x, fmt)


def render_report(m: dict[str, Any], out: Path) -> str:
    """``report.md``: Table 1, the paired differences, the weights, Fig. 3 and Fig. 5."""
    d, cfg, t1 = m["data"], m["config"], m["table1"]
    lines = ["# routeirl evaluation (Ziebart et al. 2008, Table 1 / Fig. 3 / Fig. 5)", ""]
    if d["source"] == "simulated":
        how = "true simulated paths"
        if d.get("map_matched"):
            how = (f"paths map-matched from simulated GPS (noise {d['noise_m']:g} m; the matched paths cover "
                   f"{format_pct(d.get('map_match_recall'))} of the true routes' distance; "
                   f"{d['map_match_failed']} failed)")
        temp = f" divided by the drivers' temperature {d['temperature']:.4f}" if d["temperature"] != 1 else ""
        cal = d.get("temperature_calibration")
        if cal:
            temp += (f" (calibrated: at this temperature the true model's most likely path matches ≥ 90 % of the "
                     f"route on {100 * cal['match90']:.1f} % of {cal['n_trips']} calibration trips, for a target of "
                     f"{100 * cal['target_match90']:g} %; the paper's models did so on 43-53 % of real trips"
                     f"{'; capped below the temperature where Z diverges' if cal['capped'] else ''})")
        lines.append(f"Data: {d['n_trips']} trips simulated on **{d['network']}** ({d['n_states']} segments, "
                     f"fingerprint `{d['fingerprint']}`) with the default true θ (not travel time){temp}, "
                     f"origin-destination demand `{d['od']}`, seed {cfg['seed']}; {how}.")
    else:
        lines.append(f"Data: {d['n_trips']} stored trips from `{d['database']}` on **{d['network']}** "
                     f"(fingerprint `{d['fingerprint']}`); true θ unknown.")
    lines += [
        f"Split: {d['n_train']} training / {d['n_test']} held-out trips (test fraction {d['test_fraction']:g}; "
        f"the paper trained on 20 % and tested on 80 %). Mean trip: {d['mean_segments']:.1f} segments, "
        f"{d['mean_km']:.2f} km. Dropped: {d['n_dropped'] or 'none'}.", "",
        "## Table 1: held-out route prediction", "",
        "| Model | Matching | 90% Match | Log Prob |", "|---|---:|---:|---:|",
    ]
    refs = m["references"]
    rows = [n for n in t1 if n not in refs]
    for name in [*rows, *refs]:
        if name == (refs or [None])[0]:
            lines.append("| *References, not baselines:* | | | |")
        row = t1[name]
        label = f"**{name}**" if name == MAXENT else name
        lines.append(f"| {label} | {format_pct(row['matching'])} | {format_pct(row['match90'])} | "
                     f"{format_num(row['log_prob'])} |")
    lines += [
        "",
        "Matching: mean share of a held-out route's distance that the model's most likely path also drives "
        "(given origin and destination). 90% Match: share of held-out trips matched to at least 90 %. "
        "Log Prob: mean natural-log probability of the held-out route given its origin and destination "
        "(N/A for models that are not distributions over routes).", "",
        f"Baselines, which MaxEnt must beat: {', '.join(m['baselines'])}. {ACTION_COSTS} is the action model's "
        "learned costs planned as shortest paths (the paper's second decoding of that model)."
        + "".join(f" {_reference_note(m, r)}" for r in refs), "",
        "MaxEnt minus each model, paired over the same held-out trips (mean, 95 % interval):", "",
        "| Model | Matching | 90% Match | Log Prob |", "|---|---:|---:|---:|",
    ]
    for b, comp in m["paired_differences_maxent_minus"].items():
        label = f"{b} (reference)" if b in refs else b
        lines.append(f"| {label} | " + " | ".join(_diff_cell(comp.get(k), k != "log_prob")
                                                for k in ("match", "match90", "log_prob")) + " |")
    checks = m["checks"]
    lines += ["", f"MaxEnt beats every baseline ({', '.join(m['baselines'])}) on: " + _yes_no(
        checks["maxent_beats_every_baseline"]) + "."]
    if ACTION_COSTS in refs:
        lines.append(f"Against the reference {ACTION_COSTS} (not a baseline): "
                     + _yes_no(checks["maxent_beats_action_costs"]) + ".")
    lines.append("")
    lines += _ceiling_section(m)
    lines += _theta_section(m)
    lines += _destination_section(m)
    lines += _destination_error_section(m)
    models = m["models"]
    n_act = models[ACTION]["n_train_trips"]
    action_trips = f"all {n_act}" if n_act == d["n_train"] else f"a seeded subsample of {n_act}"
    converged = " to convergence" if models[ACTION].get("converged") else ""
    at_min = models[ACTION].get("n_at_min_cost") or 0
    binding = (f"; positive costs bind: {at_min} transitions at the least cost allowed" if at_min else "")
    lines += ["## Models and run", "",
              f"- MaxEnt: unregularized maximum likelihood, {models[MAXENT]['n_iter']} L-BFGS iterations "
              f"({models[MAXENT]['message']}).",
              "- Time-based: shortest path with travel time (entered segment length / its speed) as the cost.",
              f"- Action: locally normalized model P(a|s) ∝ exp(Q*(s,a)), fitted on {action_trips} "
              f"training trips{converged} ({models[ACTION]['n_iter']} SLSQP iterations in all, "
              f"{models[ACTION]['message']}{binding}), from its default start, independent of MaxEnt"
              + (f" (first fitted on a subsample of {models[ACTION]['warm_trips']} of them)"
                 if models[ACTION]["warm_trips"] else "") + "; "
              "Action (costs): the shortest path under its learned costs."]
    if MMP in models:
        mm = models[MMP]
        val = ", ".join(f"λ={k}: {format_pct(v)}" for k, v in mm["validation_matching"].items())
        lines.append(f"- Max margin planning: projected stochastic subgradient, {mm['n_iter']} steps of "
                     f"{mm['batch']} trips, loss = missed demonstrated distance (km); λ = {mm['lambda']:g} chosen "
                     f"on a 20 % validation split of the training trips (validation matching {val}).")
    else:
        lines.append("- Max margin planning: not run (--no-mmp).")
    lines += ["", "Run times (s): " + ", ".join(f"{k} {v:.1f}" for k, v in m["timings_s"].items()), ""]
    return "\n".join(lines)


def _reference_note(m: dict[str, Any], name: str) -> str:
    """Why a row is a reference and not a baseline, true to this run's own numbers."""
    if name == ORACLE:
        return f"{ORACLE} is the simulator's own model: the ceiling, not a competitor."
    tied = [metric for metric, names in (m["checks"]["baselines_at_true_theta_ceiling"] or {}).items()
            if name in names]
    here = (f"in this run the true θ does not beat it on {' and '.join(tied)}" if tied
            else "in this run the true θ's point estimates are ahead of it on both matching metrics; see the "
                 "intervals below")
    return (f"On simulated trips it is a reference, not a baseline: on large samples drawn from a MaxEnt model it "
            f"reaches the true θ's own ceiling, so no fitted model can be expected to beat it ({here}; see "
            "docs/evaluation.md, \"Which rows are baselines\").")


def _yes_no(flags: dict[str, bool]) -> str:
    return ", ".join(f"{k} {'yes' if v else '**no**'}" for k, v in flags.items())


def _diff_cell(c: dict[str, float] | None, pct: bool) -> str:
    """A paired difference with its 95 % interval, in percentage points or in nats."""
    if c is None:
        return "N/A"
    if pct:
        return f"{100 * c['diff']:+.2f} pp [{100 * c['ci95_low']:+.2f}, {100 * c['ci95_high']:+.2f}]"
    return f"{c['diff']:+.3f} [{c['ci95_low']:+.3f}, {c['ci95_high']:+.3f}]"


def _ceiling_section(m: dict[str, Any]) -> list[str]:
    """How far each fitted model is below the true θ's own most likely path (simulated data only)."""
    diffs = m.get("paired_differences_true_theta_minus")
    if not diffs:
        return []
    refs = m["references"]
    lines = [f"{ORACLE} minus each fitted model (the ceiling; paired, mean, 95 % interval):", "",
             "| Model | Matching | 90% Match |", "|---|---:|---:|"]
    lines += [f"| {f'{b} (reference)' if b in refs else b} | {_diff_cell(c['match'], True)} | "
              f"{_diff_cell(c['match90'], True)} |" for b, c in diffs.items()]
    at = m["checks"]["baselines_at_true_theta_ceiling"]
    tied = {metric: names for metric, names in at.items() if names}
    if tied:
        lines += ["", "The true θ's own most likely path does not beat: " + "; ".join(
            f"{metric}: {', '.join(names)}" for metric, names in tied.items()) + ". MaxEnt's most likely path "
            "converges to the true θ's, so it cannot be expected to beat these models on these metrics and "
            "data: the most likely path is not the route that maximizes the expected matched distance (see "
            "docs/evaluation.md)."]
    return [*lines, ""]


def _theta_section(m: dict[str, Any]) -> list[str]:
    rec, sec = m["theta"], m["seconds"]
    has_true = any("true" in r for r in rec["features"])
    lines = ["## Learned weights (Fig. 3)", ""]
    if sec:
        lines += ["![learned costs in seconds](costs.png)", ""]
    lines += [
        f"A feature is **exercised** when the training trips pin its weight down: relative standard error "
        f"≤ {100 * rec['rel_se_max']:g} % (standard errors from the inverse Hessian of the log-likelihood, by "
        "central differences of the exact gradient), so that a "
        f"{100 * rec['tolerance']:g} % error would be a > {rec['tolerance'] / rec['rel_se_max']:.1f} σ deviation. "
        "This is decided from the training data alone, not from the truth.", "",
    ]
    if has_true:
        ex = rec["exercised"]
        if ex:
            verdict = "all within" if rec["all_exercised_within_tolerance"] else "**not all within**"
            claim = (f"Exercised: {len(ex)} feature(s) ({', '.join(ex)}): {verdict} "
                     f"{100 * rec['tolerance']:g} % of the truth.")
        else:
            claim = (f"No feature is exercised at this sample size (every relative SE > "
                     f"{100 * rec['rel_se_max']:g} %): these trips cannot confirm a "
                     f"{100 * rec['tolerance']:g} % recovery; use more trips.")
        lines += [
            f"{claim} Over all {rec['n_identified']} identified features, "
            f"|z| > 2 for {rec['n_abs_z_gt_2']} and |z| > 3 for {rec['n_abs_z_gt_3']} "
            "(z = (fitted - true) / SE; an unbiased estimator gives ≈ 5 % and ≈ 0.3 %).", "",
            "| Feature | True | Fitted | SE | Rel. SE | Rel. error | z | Train trips | Exercised | s (true) "
            "| s (learned ± SE) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|:---:|---:|---:|",
        ]
    else:
        lines += ["| Feature | Fitted | SE | Rel. SE | Train trips | Exercised | s (learned ± SE) |",
                  "|---|---:|---:|---:|---:|:---:|---:|"]
    for r in rec["features"]:
        name = r["feature"]
        if not r["present_in_network"]:
            name += " (absent)"
        s_l = sec.get("learned", {}).get(r["feature"]) if sec else None
        s_se = sec.get("learned_se", {}).get(r["feature"]) if sec else None
        s_cell = "N/A" if s_l is None or not r["present_in_network"] else f"{s_l:.1f} ± {format_num(s_se, '.1f')}"
        ex = "yes" if r["exercised"] else ""
        if has_true:
            s_t = (sec.get("true") or {}).get(r["feature"]) if sec else None
            z = r.get("z")
            err = r["rel_error"] if r["present_in_network"] else None  # an absent feature's weight is never fitted
            lines.append(
                f"| {name} | {r['true']:.3f} | {r['fitted']:.3f} | {format_num(r['se'])} | {_rel(r['rel_se'])} | "
                f"{format_pct(err)} | {format_num(z, '+.2f') if z is not None else 'N/A'} | "
                f"{r['train_trips_using']} | {ex} | {format_num(s_t, '.1f')} | {s_cell} |")
        else:
            lines.append(f"| {name} | {r['fitted']:.3f} | {format_num(r['se'])} | {_rel(r['rel_se'])} | "
                         f"{r['train_trips_using']} | {ex} | {s_cell} |")
    lines += ["", "Weights are rewards (negative = cost) per km or per turn; seconds: every weight divided by the "
              "weight of 1 km of residential road at 30-50 km/h on one lane, which is set to 72 s (50 km/h), like "
              "the paper's Fig. 3 fixes interstate driving at 65 mph. (absent): the feature is on no transition of "
              "this network.", ""]
    return lines


def _destination_section(m: dict[str, Any]) -> list[str]:
    dest = m["destinations"]
    fr = dest["fractions"]
    lines = [
        "## Destination prediction (Fig. 5)", "", "![destination accuracy](destinations.png)", "",
        f"{dest['n_trips']} held-out trips; {dest['n_regions']} destination regions (k-means of the training "
        f"trips' destinations; {dest['n_candidates']} candidate destination segments, prior = their training "
        "frequency). The posterior of a region sums the MaxEnt posterior P(d | partial path) ∝ P(d) Z(B,d)/Z(A,d) "
        "over its candidates.", "",
        "| Fraction observed | " + " | ".join(f"{f:.1f}" for f in fr) + " | prior only |",
        "|---|" + "---:|" * (len(fr) + 1),
    ]
    for k, acc in dest["accuracy"].items():
        lines.append(f"| top-{k} | " + " | ".join(f"{100 * a:.1f}%" for a in acc)
                     + f" | {100 * dest['prior_accuracy'][k]:.1f}% |")
    lines += ["", f"Accuracy rises with the fraction observed: {'yes' if dest['rises'] else '**no**'}.", ""]
    return lines


def _destination_error_section(m: dict[str, Any]) -> list[str]:
    res = m.get("destination_error")
    if not res:
        return []
    hit_key = f"top{res['top']}_within_{round(res['radius_m'])}m"
    hit_label = f"top-{res['top']} within {round(res['radius_m'])} m"
    lines = ["## Destination error in km", "", "![destination error](destination_error.png)", "",
             f"{res['n_trips']} held-out trips, each observed to 20/40/60/80 % of its length. posterior: the point "
             "minimizing the expected distance under P(d | partial path) over every segment, and its top clustered "
             "destinations; last point: the last segment observed; prior only: the learned prior given the origin; "
             "nearest training trip: the end of the training trip that started nearest the origin and passed "
             "nearest the current position. Paired differences posterior − method, 95 % interval "
             "(negative error = the posterior is closer).", "",
             "| Observed | Method | Mean km | Median km | " + hit_label + " | posterior − method, km | "
             "posterior − method, " + hit_label + " |",
             "|---|---|---:|---:|---:|---|---|"]
    for frac, row in res["by_fraction"].items():
        for method in res["methods"]:
            r = row[method]
            diff = row["posterior_minus"].get(method)
            e = "" if diff is None else _ci(diff["error_km"], 3)
            h = "" if diff is None else _ci(diff[hit_key], 3)
            lines.append(f"| {frac} | {method} | {r['mean_km']:.3f} | {r['median_km']:.3f} | "
                         f"{100 * r[hit_key]:.1f}% | {e} | {h} |")
    lines.append("")
    return lines


def _ci(d: dict[str, float], digits: int) -> str:
    return f"{d['diff']:+.{digits}f} [{d['ci95_low']:+.{digits}f}, {d['ci95_high']:+.{digits}f}]"
