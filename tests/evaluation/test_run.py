"""A small report end to end through the CLI: the files it writes and the numbers that could come out wrong.

It simulates trips on the small Monaco network (a few seconds per fit) and checks fractions
in [0, 1], MaxEnt's held-out log-probability above the action-based model's, the true-θ
ceiling, destination accuracy rising with the fraction observed, and weights consistent
with the truth within their standard errors.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from evaluation import run
from evaluation.config import ACTION, ACTION_COSTS, MAXENT, MMP, ORACLE, TIME
from evaluation.metrics import FRACTIONS
from evaluation.report import render_report
from evaluation.run import maxent_beats
from tests.evaluation.helpers import FAST, MONACO

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


#: The rivals ``maxent_beats`` was asked about during the fixture's run, in call order.
BEATS_CALLS: list[list[str]] = []


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    out = tmp_path_factory.mktemp("report") / "run"
    argv = ["evaluate", "--network", str(MONACO), "--simulate", "260", "--seed", "3", "--out", str(out), *FAST]

    def spy(table1: dict, rivals: list[str]) -> dict[str, bool]:
        BEATS_CALLS.append(list(rivals))
        return maxent_beats(table1, rivals)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run, "maxent_beats", spy)
        code = main(argv)
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    return out, metrics, (out / "report.md").read_text()


def test_report_files(report: tuple[Path, dict, str]) -> None:
    out, metrics, text = report
    for name in ("costs.png", "destinations.png", "destination_error.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000, name
    assert "## Table 1" in text and "![learned costs in seconds](costs.png)" in text
    assert "![destination accuracy](destinations.png)" in text
    assert "## Destination error in km" in text and "![destination error](destination_error.png)" in text
    err = metrics["destination_error"]
    assert err["n_trips"] > 0 and err["fractions"] == [0.2, 0.4, 0.6, 0.8]
    last = err["by_fraction"]["60%"]["last point"]
    assert f"| 60% | last point | {last['mean_km']:.3f} | {last['median_km']:.3f} |" in text
    # the table in the report shows the numbers of metrics.json
    me = metrics["table1"][MAXENT]
    row = f"| **{MAXENT}** | {100 * me['matching']:.2f}% | {100 * me['match90']:.2f}% | {me['log_prob']:.3f} |"
    assert row in text
    assert metrics["data"]["n_train"] + metrics["data"]["n_test"] == metrics["data"]["n_trips"] == 260
    assert metrics["data"]["n_test"] == 130
    action = metrics["models"][ACTION]
    assert action["n_train_trips"] == 60 and action["warm_trips"] == 30  # warm start, then all 60
    assert "first fitted on a subsample of 30" in text
    # default --temperature auto: drivers calibrated to the paper's route variety, and the report says so
    cal = metrics["data"]["temperature_calibration"]
    assert cal["target_match90"] == 0.5 and 0.5 <= cal["match90"] < 0.6 and cal["capped"] is False
    assert 1.0 < metrics["data"]["temperature"] < 4.4  # Z diverges on Monaco near 4.4
    assert f"temperature {metrics['data']['temperature']:.4f} (calibrated" in text
    assert "capped below" not in text
    capped = json.loads(json.dumps(metrics))  # the report says when the target was out of reach
    capped["data"]["temperature_calibration"]["capped"] = True
    assert "capped below the temperature where Z diverges" in render_report(capped, out)


def test_table1_numbers(report: tuple[Path, dict, str]) -> None:
    _, metrics, _ = report
    t1 = metrics["table1"]
    assert set(t1) == {TIME, MMP, ACTION, ACTION_COSTS, MAXENT, ORACLE}
    for name, row in t1.items():
        assert 0.0 <= row["matching"] <= 1.0 and 0.0 <= row["match90"] <= 1.0, name
        assert row["n_trips"] == 130
    for name in (TIME, MMP, ACTION_COSTS):
        assert t1[name]["log_prob"] is None
    for name in (ACTION, MAXENT, ORACLE):
        assert t1[name]["log_prob"] < 0
    # routes drawn from a MaxEnt model: MaxEnt must explain held-out routes better than the action model
    assert t1[MAXENT]["log_prob"] > t1[ACTION]["log_prob"]
    diff = metrics["paired_differences_maxent_minus"][ACTION]["log_prob"]
    assert diff["diff"] == pytest.approx(t1[MAXENT]["log_prob"] - t1[ACTION]["log_prob"])
    assert diff["ci95_low"] < diff["diff"] < diff["ci95_high"]
    # the true theta is not travel time: the time-based shortest path is clearly worse
    assert t1[MAXENT]["matching"] > t1[TIME]["matching"] + 0.05
    assert metrics["checks"]["maxent_beats_every_baseline"]["log_prob"] is True


def test_baselines_and_references(report: tuple[Path, dict, str]) -> None:
    """The check counts the three fitted baselines; Action (costs) and the true θ are shown below them."""
    _, metrics, text = report
    t1, checks = metrics["table1"], metrics["checks"]
    assert metrics["baselines"] == [TIME, MMP, ACTION] and metrics["references"] == [ACTION_COSTS, ORACLE]
    assert BEATS_CALLS == [[TIME, MMP, ACTION], [ACTION_COSTS]]  # the check itself, then the reference row
    for metric in ("matching", "match90", "log_prob"):  # recomputed from Table 1 itself
        assert checks["maxent_beats_every_baseline"][metric] == all(
            t1[MAXENT][metric] > t1[b][metric] for b in (TIME, MMP, ACTION) if t1[b][metric] is not None)
    assert checks["maxent_beats_action_costs"] == {
        m: t1[MAXENT][m] > t1[ACTION_COSTS][m] for m in ("matching", "match90")}
    assert set(metrics["paired_differences_maxent_minus"]) == {TIME, MMP, ACTION, ACTION_COSTS}
    table = text[text.index("## Table 1"):text.index("MaxEnt minus each model")]
    order = [table.index(f"| {name} |") for name in (TIME, MMP, ACTION)]
    order += [table.index(f"| **{MAXENT}** |"), table.index("*References, not baselines:*"),
              table.index(f"| {ACTION_COSTS} |"), table.index(f"| {ORACLE} |")]
    assert order == sorted(order)
    assert f"| {ACTION_COSTS} (reference) |" in text
    assert f"MaxEnt beats every baseline ({TIME}, {MMP}, {ACTION}) on: matching " in text
    assert f"Against the reference {ACTION_COSTS} (not a baseline): matching " in text
    # why it is a reference, true to this run: the true θ does or does not beat it here
    tied = [k for k, names in checks["baselines_at_true_theta_ceiling"].items() if ACTION_COSTS in names]
    assert "On simulated trips it is a reference, not a baseline" in text
    assert ("in this run the true θ does not beat it on " + " and ".join(tied) in text) == bool(tied)
    assert ("in this run the true θ's point estimates are ahead of it on both matching metrics" in text) == (not tied)


def test_table_roles() -> None:
    """Action (costs) is a baseline on stored trips and a reference on simulated ones; a new row needs a role."""
    names = [TIME, MMP, ACTION, ACTION_COSTS, MAXENT, ORACLE]
    assert run.table_roles(names, simulated=True) == ([TIME, MMP, ACTION], [ACTION_COSTS, ORACLE])
    assert run.table_roles(names[:-1], simulated=False) == ([TIME, MMP, ACTION, ACTION_COSTS], [])
    assert run.table_roles([TIME, ACTION, MAXENT], simulated=True) == ([TIME, ACTION], [])
    with pytest.raises(ValueError, match="without a role"):
        run.table_roles([TIME, "Something new", MAXENT], simulated=False)


def test_maxent_beats() -> None:
    """Point estimates per metric; a rival without the number does not count for it."""
    t1 = {MAXENT: {"matching": 0.8, "match90": 0.5, "log_prob": -3.0},
          TIME: {"matching": 0.7, "match90": 0.5, "log_prob": None},
          ACTION: {"matching": 0.79, "match90": 0.4, "log_prob": -3.5},
          ACTION_COSTS: {"matching": 0.81, "match90": 0.4, "log_prob": None}}
    assert maxent_beats(t1, [TIME, ACTION]) == {"matching": True, "match90": False, "log_prob": True}
    assert maxent_beats(t1, [ACTION]) == {"matching": True, "match90": True, "log_prob": True}
    assert maxent_beats(t1, [ACTION_COSTS]) == {"matching": False, "match90": True, "log_prob": True}
    assert maxent_beats(t1, []) == {"matching": True, "match90": True, "log_prob": True}


def test_true_theta_ceiling(report: tuple[Path, dict, str]) -> None:
    """The report says which baselines the true model itself does not significantly beat."""
    _, metrics, text = report
    diffs = metrics["paired_differences_true_theta_minus"]
    assert set(diffs) == {TIME, MMP, ACTION, ACTION_COSTS}
    t1 = metrics["table1"]
    for b, d in diffs.items():
        assert d["match"]["diff"] == pytest.approx(t1[ORACLE]["matching"] - t1[b]["matching"])
        assert d["match90"]["diff"] == pytest.approx(t1[ORACLE]["match90"] - t1[b]["match90"])
    at = metrics["checks"]["baselines_at_true_theta_ceiling"]
    for metric in ("matching", "match90"):  # the baselines the true model does not beat, from Table 1 itself
        assert at[metric] == [b for b in diffs if t1[b][metric] >= t1[ORACLE][metric] - 1e-12]
    assert TIME not in at["matching"]  # the true theta is not travel time
    assert f"{ORACLE} minus each fitted model" in text
    assert ("The true θ's own most likely path does not beat" in text) == any(at.values())


def test_theta_recovery_numbers(report: tuple[Path, dict, str]) -> None:
    _, metrics, _ = report
    rec = metrics["theta"]
    rows = {r["feature"]: r for r in rec["features"]}
    assert list(rows) == metrics["feature_names"]
    assert not rows["km_motorway"]["present_in_network"] and rows["km_motorway"]["se"] is None  # inf -> null
    assert rows["segment"]["present_in_network"] and rows["segment"]["train_trips_using"] == 130
    z = [abs(r["z"]) for r in rec["features"] if r.get("z") is not None and r["train_trips_using"] >= 20]
    assert len(z) >= 8
    assert max(z) < 4.5, "an estimate is far outside its standard error: biased fit or wrong Hessian"
    assert rec["exercised"] == [r["feature"] for r in rec["features"] if r["rel_se"] is not None
                                and r["rel_se"] <= rec["rel_se_max"]]
    # Fig. 3 data: the anchor road costs exactly 72 s (1 km at 50 km/h), true and learned
    assert metrics["seconds"]["learned"]["km_residential"] == pytest.approx(72.0)
    assert metrics["seconds"]["true"]["km_residential"] == pytest.approx(72.0)
    assert metrics["seconds"]["learned_se"]["km_residential"] == pytest.approx(0.0, abs=1e-6)


def test_destination_numbers(report: tuple[Path, dict, str]) -> None:
    _, metrics, _ = report
    dest = metrics["destinations"]
    top1, top3 = np.array(dest["accuracy"]["1"]), np.array(dest["accuracy"]["3"])
    assert dest["n_regions"] == 4 and dest["n_trips"] == 80 and len(top1) == len(FRACTIONS)
    assert np.all((top1 >= 0) & (top1 <= top3) & (top3 <= 1))
    assert top1[-1] >= top1[0] and top1[-1] > dest["prior_accuracy"]["1"]
    assert dest["rises"] is True


