"""Where an evaluation's trips come from: stored trips read-only, usable paths, the split."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from evaluation.config import ACTION, ACTION_COSTS, MMP, ORACLE, TIME
from evaluation.data import read_database_paths, split_train_test, usable_paths
from tests.evaluation.helpers import FAST, MONACO


def test_database_source_is_read_only(tmp_path: Path) -> None:
    """Stored trips are read without touching the database; no truth, so no true-θ row."""
    from app.storage import NewTrip, Storage
    from maxent_irl.roads import RoadNetwork, simulate_trips

    net = RoadNetwork.load(MONACO)
    db = tmp_path / "routeirl.sqlite3"
    store = Storage(db)
    sims = simulate_trips(net, n_trips=120, seed=5)
    store.trips.insert(net.fingerprint, [NewTrip(points=s.trace.points.tolist(), path=s.path.tolist()) for s in sims])
    store.trips.insert("another-network", [NewTrip(points=[[0.0, 0.0]], path=[1, 2])])
    store.close()
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    out = tmp_path / "report"
    code = main(["evaluate", "--database", str(db), "--network", str(MONACO), "--out", str(out), "--no-mmp", *FAST])
    assert code == 0
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["source"] == "database" and metrics["data"]["n_trips"] == 120
    assert ORACLE not in metrics["table1"] and MMP not in metrics["table1"]
    assert all("true" not in r for r in metrics["theta"]["features"])
    assert metrics["paired_differences_true_theta_minus"] is None
    assert metrics["checks"]["baselines_at_true_theta_ceiling"] is None
    text = (out / "report.md").read_text()
    assert (out / "costs.png").is_file() and "Max margin planning: not run" in text
    # real drivers: no ceiling argument, so the paper's Action (costs) row is a baseline like the others
    assert metrics["baselines"] == [TIME, ACTION, ACTION_COSTS] and metrics["references"] == []
    assert "References, not baselines" not in text and f"| {ACTION_COSTS} (reference) |" not in text
    assert f"MaxEnt beats every baseline ({TIME}, {ACTION}, {ACTION_COSTS}) on:" in text

    with pytest.raises(ValueError, match="no trips for network"):
        read_database_paths(db, "0123456789abcdef")


def test_usable_paths_and_split() -> None:
    from maxent_irl import RouteMDP

    mdp = RouteMDP(3, np.array([0, 1, 1, 2]), np.array([1, 2, 0, 1]), np.ones((4, 1)))
    kept, dropped = usable_paths(mdp, [[0, 1, 2], [0], [0, 2], [1, 0, 1, 0], [0, 1]])
    assert [p.tolist() for p in kept] == [[0, 1, 2], [1, 0, 1, 0], [0, 1]]  # passing the destination is fine
    assert dropped == {"too_short": 1, "invalid": 1}
    train, test = split_train_test(10, 0.3, seed=0)
    assert len(test) == 3 and sorted(np.concatenate([train, test]).tolist()) == list(range(10))
    with pytest.raises(ValueError):
        split_train_test(10, 1.0, seed=0)


