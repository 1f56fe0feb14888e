"""``routeirl evaluate``: a small report end to end through the CLI, and its numerical parts.

The end-to-end run simulates trips on the small Monaco network (a few seconds per fit) and
checks the files and the numbers that could come out wrong: fractions in [0, 1], MaxEnt's
held-out log-probability above the action-based model's, destination accuracy rising with
the fraction observed, weights consistent with the truth within their standard errors.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app import evaluate as ev  # noqa: E402
from app.cli import main  # noqa: E402

MONACO = ROOT / "data" / "monaco_drive.osm.bz2"
FAST = ["--no-progress", "--test-fraction", "0.5", "--action-trips", "60", "--action-warm-trips", "30",
        "--action-max-iter", "30",
        "--mmp-iter", "40", "--mmp-batch", "40", "--destination-trips", "80", "--destinations", "4"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    out = tmp_path_factory.mktemp("report") / "run"
    argv = ["evaluate", "--network", str(MONACO), "--simulate", "260", "--seed", "3", "--out", str(out), *FAST]
    code = main(argv)
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    return out, metrics, (out / "report.md").read_text()


def test_report_files(report: tuple[Path, dict, str]) -> None:
    out, metrics, text = report
    for name in ("costs.png", "destinations.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000, name
    assert "## Table 1" in text and "![learned costs in seconds](costs.png)" in text
    assert "![destination accuracy](destinations.png)" in text
    # the table in the report shows the numbers of metrics.json
    me = metrics["table1"][ev.MAXENT]
    row = f"| **{ev.MAXENT}** | {100 * me['matching']:.2f}% | {100 * me['match90']:.2f}% | {me['log_prob']:.3f} |"
    assert row in text
    assert metrics["data"]["n_train"] + metrics["data"]["n_test"] == metrics["data"]["n_trips"] == 260
    assert metrics["data"]["n_test"] == 130
    action = metrics["models"][ev.ACTION]
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
    assert "capped below the temperature where Z diverges" in ev.render_report(capped, out)


def test_table1_numbers(report: tuple[Path, dict, str]) -> None:
    _, metrics, _ = report
    t1 = metrics["table1"]
    assert set(t1) == {ev.TIME, ev.MMP, ev.ACTION, ev.ACTION_COSTS, ev.MAXENT, ev.ORACLE}
    for name, row in t1.items():
        assert 0.0 <= row["matching"] <= 1.0 and 0.0 <= row["match90"] <= 1.0, name
        assert row["n_trips"] == 130
    for name in (ev.TIME, ev.MMP, ev.ACTION_COSTS):
        assert t1[name]["log_prob"] is None
    for name in (ev.ACTION, ev.MAXENT, ev.ORACLE):
        assert t1[name]["log_prob"] < 0
    # routes drawn from a MaxEnt model: MaxEnt must explain held-out routes better than the action model
    assert t1[ev.MAXENT]["log_prob"] > t1[ev.ACTION]["log_prob"]
    diff = metrics["paired_differences_maxent_minus"][ev.ACTION]["log_prob"]
    assert diff["diff"] == pytest.approx(t1[ev.MAXENT]["log_prob"] - t1[ev.ACTION]["log_prob"])
    assert diff["ci95_low"] < diff["diff"] < diff["ci95_high"]
    # the true theta is not travel time: the time-based shortest path is clearly worse
    assert t1[ev.MAXENT]["matching"] > t1[ev.TIME]["matching"] + 0.05
    assert metrics["checks"]["maxent_beats_every_baseline"]["log_prob"] is True


def test_true_theta_ceiling(report: tuple[Path, dict, str]) -> None:
    """The report says which baselines the true model itself does not significantly beat."""
    _, metrics, text = report
    diffs = metrics["paired_differences_true_theta_minus"]
    assert set(diffs) == {ev.TIME, ev.MMP, ev.ACTION, ev.ACTION_COSTS}
    t1 = metrics["table1"]
    for b, d in diffs.items():
        assert d["match"]["diff"] == pytest.approx(t1[ev.ORACLE]["matching"] - t1[b]["matching"])
        assert d["match90"]["diff"] == pytest.approx(t1[ev.ORACLE]["match90"] - t1[b]["match90"])
    at = metrics["checks"]["baselines_at_true_theta_ceiling"]
    for metric in ("matching", "match90"):  # the baselines the true model does not beat, from Table 1 itself
        assert at[metric] == [b for b in diffs if t1[b][metric] >= t1[ev.ORACLE][metric] - 1e-12]
    assert ev.TIME not in at["matching"]  # the true theta is not travel time
    assert f"{ev.ORACLE} minus each baseline" in text
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
    assert dest["n_regions"] == 4 and dest["n_trips"] == 80 and len(top1) == len(ev.FRACTIONS)
    assert np.all((top1 >= 0) & (top1 <= top3) & (top3 <= 1))
    assert top1[-1] >= top1[0] and top1[-1] > dest["prior_accuracy"]["1"]
    assert dest["rises"] is True


def test_database_source_is_read_only(tmp_path: Path) -> None:
    """Stored trips are read without touching the database; no truth, so no true-θ row."""
    from app.storage import NewTrip, Storage
    from maxent_irl.roads import RoadNetwork, simulate_trips

    net = RoadNetwork.load(MONACO)
    db = tmp_path / "routeirl.sqlite3"
    store = Storage(db)
    sims = simulate_trips(net, n_trips=120, seed=5)
    store.insert_trips(net.fingerprint, [NewTrip(points=s.trace.points.tolist(), path=s.path.tolist()) for s in sims])
    store.insert_trips("another-network", [NewTrip(points=[[0.0, 0.0]], path=[1, 2])])
    store.close()
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    out = tmp_path / "report"
    code = main(["evaluate", "--database", str(db), "--network", str(MONACO), "--out", str(out), "--no-mmp", *FAST])
    assert code == 0
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["source"] == "database" and metrics["data"]["n_trips"] == 120
    assert ev.ORACLE not in metrics["table1"] and ev.MMP not in metrics["table1"]
    assert all("true" not in r for r in metrics["theta"]["features"])
    assert metrics["paired_differences_true_theta_minus"] is None
    assert metrics["checks"]["baselines_at_true_theta_ceiling"] is None
    assert (out / "costs.png").is_file() and "Max margin planning: not run" in (out / "report.md").read_text()

    with pytest.raises(ValueError, match="no trips for network"):
        ev.read_database_paths(db, "0123456789abcdef")


def test_usable_paths_and_split() -> None:
    from maxent_irl import RouteMDP

    mdp = RouteMDP(3, np.array([0, 1, 1, 2]), np.array([1, 2, 0, 1]), np.ones((4, 1)))
    kept, dropped = ev.usable_paths(mdp, [[0, 1, 2], [0], [0, 2], [1, 0, 1, 0], [0, 1]])
    assert [p.tolist() for p in kept] == [[0, 1, 2], [0, 1]]
    assert dropped == {"too_short": 1, "invalid": 1, "passes_destination": 1}
    train, test = ev.split_train_test(10, 0.3, seed=0)
    assert len(test) == 3 and sorted(np.concatenate([train, test]).tolist()) == list(range(10))
    with pytest.raises(ValueError):
        ev.split_train_test(10, 1.0, seed=0)


def test_paired_difference_and_projection() -> None:
    d = ev.paired_difference(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 1.0, 2.0, 3.0]))
    assert d == {"diff": 1.0, "ci95_low": 1.0, "ci95_high": 1.0}
    A = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    interior = np.array([1.0, 1.0])
    x = ev._project_feasible(np.array([-1.0, 0.5]), A, 0.1, interior)
    assert np.all(A @ x >= 0.1 - 1e-9)
    np.testing.assert_allclose(x, [0.1, 0.5], atol=1e-4)  # the nearest feasible point
    w = np.array([2.0, 3.0])
    assert ev._project_feasible(w, A, 0.1, interior) is w


def test_information_matrix_is_the_path_feature_covariance() -> None:
    """For MaxEnt, -Hessian of log P(path | o, d) = Cov[f(path) | o, d] whatever the observed path: the finite
    differences must agree with the covariance of sampled paths."""
    from maxent_irl import RouteModel
    from maxent_irl.roads import RoadNetwork, default_true_theta

    net = RoadNetwork.load(MONACO)
    mdp, theta = net.mdp, default_true_theta(net.feature_names)
    model = RouteModel(mdp, theta)
    o, d = 10, 400
    observed = model.most_likely_path(o, d)
    info = ev.information_matrix(mdp, [observed], theta, ordering=model.ordering)
    samples = model.sample_paths(o, d, 20_000, seed=0)
    feats = np.array([mdp.features[mdp.transition_indices(p)].sum(axis=0) for p in samples])
    cov = np.cov(feats, rowvar=False)
    used = np.diag(cov) > 1e-3
    assert used.sum() >= 5
    np.testing.assert_allclose(np.diag(info)[used], np.diag(cov)[used], rtol=0.1)
    np.testing.assert_allclose(info[np.ix_(used, used)], cov[np.ix_(used, used)], atol=0.1 * np.diag(cov).max())


def test_evaluate_command_is_registered_whichever_way_the_cli_runs() -> None:
    """``python -m app.cli evaluate`` loads the command as the installed ``routeirl`` script does."""
    import subprocess

    for argv in (["-m", "app.cli", "evaluate", "--help"], ["-m", "app.evaluate", "--help"]):
        out = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "--simulate" in out.stdout and "--action-warm-trips" in out.stdout


@pytest.mark.parametrize("argv, message", [
    (["--network", "/no/such/file.osm"], "no network file"),
    (["--network", str(ROOT / "README.md")], "cannot read a road network"),
    (["--temperature", "0"], "temperature must be positive"),
    (["--target-match90", "1.5"], "--target-match90 must be in (0, 1)"),
    (["--simulate", "1"], "at least 2 trips"),
    (["--test-fraction", "1.5"], "test fraction"),
    (["--destinations", "1"], "at least 2 regions"),
    (["--network", str(MONACO), "--temperature", "6", "--simulate", "20"], "do not converge"),
    (["--database", "/no/such/db.sqlite3", "--network", str(MONACO)], "no database"),
    (["--database", str(ROOT / "README.md"), "--network", str(MONACO)], "not a routeirl database"),
])
def test_bad_input_is_a_clear_error(argv: list[str], message: str, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Bad flags end with status 2 and one line on stderr saying what is wrong, and write no report folder."""
    out = tmp_path / "run"
    assert main(["evaluate", *argv, "--no-progress", "--out", str(out)]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("routeirl evaluate: error:") and message in last
    assert not out.exists()


def test_out_must_be_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "a_file"
    out.write_text("keep me")
    assert main(["evaluate", "--no-progress", "--out", str(out)]) == 2
    assert "is not a folder" in capsys.readouterr().err and out.read_text() == "keep me"


def test_temperature_flag_is_a_number_or_auto(capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["evaluate"]).temperature is None  # auto by default
    assert parser.parse_args(["evaluate", "--temperature", "AUTO"]).temperature is None
    assert parser.parse_args(["evaluate", "--temperature", "2.5"]).temperature == 2.5
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["evaluate", "--temperature", "hot"])
    assert exc.value.code == 2 and "expected a number or 'auto', got 'hot'" in capsys.readouterr().err
