"""Table 1 / Fig. 5 metrics on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from maxent_irl.metrics import destination_accuracy, partial_path, route_match_fraction, table1_row


def test_route_match_and_table1_row() -> None:
    length = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    assert route_match_fraction([0, 1, 2], [0, 1, 2], length) == 1.0
    assert route_match_fraction([0, 4, 2], [0, 1, 2], length) == pytest.approx(4 / 6)
    paths = [np.array([0, 1, 2]), np.array([0, 3, 2])]
    row = table1_row(lambda o, d: np.array([0, 1, 2]), paths, length, lambda ps: np.array([-1.0, -3.0]))
    assert row["matching"] == pytest.approx((1 + 4 / 8) / 2)
    assert row["match90"] == 0.5 and row["log_prob"] == -2.0
    assert table1_row(lambda o, d: np.array([o, d]), paths, length)["log_prob"] is None


def test_partial_path_and_destination_accuracy() -> None:
    length = np.ones(10)
    path = np.arange(10)
    assert partial_path(path, 0.5, length).tolist() == [0, 1, 2, 3, 4]
    assert partial_path(path, 0.0, length).tolist() == [0]

    def oracle(partial, candidates, prior):
        p = np.ones(len(candidates))
        if len(partial) >= 5:
            p[candidates == 9] = 10.0
        return p / p.sum()

    acc = destination_accuracy(oracle, [path], np.array([3, 9, 7]), None, length, fractions=(0.2, 0.8), top_k=(1, 3))
    assert acc[1].tolist() == [0.0, 1.0]  # ties count against the truth
    assert acc[3].tolist() == [1.0, 1.0]
