"""The verdicts of the report, on hand-made numbers: which weights are exercised, how far off they are, Fig. 5."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.destinations import accuracy_rises
from evaluation.recovery import theta_recovery

NAMES = ["a", "b", "c", "d"]


def _recovery(fitted: list[float], se: list[float], true: list[float] | None, present=(True, True, True, False)):
    cov = np.diag(np.asarray(se, dtype=float) ** 2)
    return theta_recovery(NAMES, np.asarray(fitted, dtype=float), cov, None if true is None else np.asarray(true),
                          np.array([100, 50, 3, 0]), np.asarray(present), rel_se_max=0.015, tolerance=0.05)


def test_exercised_is_decided_by_the_standard_error_alone() -> None:
    rec = _recovery([-2.0, -1.0, -0.5, -1.0], [0.02, 0.02, 0.2, np.inf], [-2.03, -1.10, -0.4, -3.0])
    rows = {r["feature"]: r for r in rec["features"]}
    assert rec["exercised"] == ["a"]  # rel SE 1 %; b has 2 %, c 40 %, d is absent
    assert rows["a"]["rel_se"] == pytest.approx(0.01) and rows["b"]["rel_se"] == pytest.approx(0.02)
    assert rows["a"]["rel_error"] == pytest.approx(0.03 / 2.03) and rows["a"]["within_tolerance"]
    assert rows["b"]["rel_error"] == pytest.approx(0.1 / 1.1) and not rows["b"]["within_tolerance"]
    assert rows["a"]["z"] == pytest.approx(1.5) and rows["b"]["z"] == pytest.approx(5.0)
    assert rec["all_exercised_within_tolerance"] is True  # b is off by 9 %, but its data cannot pin it to 5 %
    assert rec["n_identified"] == 3 and rec["n_abs_z_gt_2"] == 1 and rec["n_abs_z_gt_3"] == 1
    assert not rows["d"]["exercised"] and rows["d"]["se"] == np.inf


def test_an_exercised_weight_off_by_more_than_the_tolerance_fails_the_verdict() -> None:
    rec = _recovery([-2.0, -1.0, -0.5, -1.0], [0.02, 0.01, 0.2, np.inf], [-2.03, -1.10, -0.4, -3.0])
    assert rec["exercised"] == ["a", "b"] and rec["all_exercised_within_tolerance"] is False


def test_no_exercised_weight_means_no_verdict() -> None:
    rec = _recovery([-2.0, -1.0, -0.5, -1.0], [0.5, 0.5, 0.5, np.inf], [-2.0, -1.0, -0.5, -1.0])
    assert rec["exercised"] == [] and rec["all_exercised_within_tolerance"] is None
    assert "all_exercised_within_tolerance" not in _recovery([-2.0, -1, -0.5, -1], [0.01] * 3 + [np.inf], None)


@pytest.mark.parametrize(("top1", "top3", "rises"), [
    ([0.4, 0.6, 0.8], [0.8, 0.9, 0.95], True),
    ([0.4, 0.6, 0.4], [0.8, 0.9, 0.95], False),  # top-1 back where it started
    ([0.4, 0.6, 0.8], [0.9, 0.9, 0.85], False),  # top-3 fell
    ([0.4, 0.6, 0.8], [0.9, 0.9, 0.9], True),
])
def test_destination_accuracy_rises(top1: list[float], top3: list[float], rises: bool) -> None:
    assert accuracy_rises({1: np.array(top1), 3: np.array(top3)}) is rises
