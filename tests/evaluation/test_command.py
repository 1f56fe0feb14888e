"""The ``routeirl evaluate`` command: registration, flags, and bad input as one line with status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from tests.evaluation.helpers import MONACO, ROOT


def test_evaluate_command_is_registered_whichever_way_the_cli_runs() -> None:
    """``python -m app.cli evaluate`` loads the command as the installed ``routeirl`` script does."""
    for argv in (["-m", "app.cli", "evaluate", "--help"], ["-m", "evaluation", "--help"]):
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
    (["--network", str(MONACO), "--simulate", "3", "--test-fraction", "0.5", "--temperature", "1"],
     "at least 2 training trips"),
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


def _metrics(beats: dict[str, bool], theta_ok: bool | None, rises: bool = True) -> dict:
    """What ``run_evaluation`` returns, reduced to what the command reads."""
    row = {"matching": 0.8, "match90": 0.5, "log_prob": -3.0}
    return {
        "out": "reports/x", "data": {"source": "simulated"}, "baselines": ["Time-based", "Action"],
        "table1": {"Time-based": {**row, "log_prob": None}, "Action": row, "Action (costs)": {**row, "log_prob": None},
                   "MaxEnt": row},
        "checks": {"maxent_beats_every_baseline": beats, "maxent_beats_action_costs": {"matching": False,
                   "match90": False}, "destination_accuracy_rises": rises,
                   "theta_within_tolerance_on_exercised": theta_ok},
        "destinations": {"accuracy": {1: [0.4, 0.8]}},
        "theta": {"all_exercised_within_tolerance": theta_ok, "exercised": ["segment"] if theta_ok is not None else []},
        "timings_s": {"total": 1.0},
    }


@pytest.mark.parametrize("beats, theta_ok, rises, status", [
    ({"matching": True, "match90": True, "log_prob": True}, True, True, 0),  # a reference row may win: still 0
    ({"matching": False, "match90": True, "log_prob": True}, True, True, 1),
    ({"matching": True, "match90": True, "log_prob": True}, False, True, 1),
    ({"matching": True, "match90": True, "log_prob": True}, None, True, 1),  # nothing exercised: not shown
    ({"matching": True, "match90": True, "log_prob": True}, True, False, 1),
])
def test_check_exit_status(beats: dict[str, bool], theta_ok: bool | None, rises: bool, status: int,
                           monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``--check`` fails on the must-show checks only; without it the command succeeds whatever they say."""
    from evaluation import run

    monkeypatch.setattr(run, "run_evaluation", lambda cfg: _metrics(beats, theta_ok, rises))
    assert main(["evaluate", "--no-progress", "--check"]) == status
    assert main(["evaluate", "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("report in reports/x: MaxEnt matching 80.00%")
