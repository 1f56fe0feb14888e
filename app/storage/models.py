"""Trained models (plain JSON: feature names, weights, options, metrics) and which one is active."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from app.storage.database import Database, dumps
from app.storage.records import ModelRecord, utcnow

__all__ = ["ModelStore", "activate_in", "insert_model_in"]


class ModelStore:
    """Models of every network; one active model per network."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(
        self, *, network: str, network_name: str, feature_names: Sequence[str], theta: Sequence[float],
        options: dict[str, Any], metrics: dict[str, Any], job_id: int | None = None, activate: bool = True,
    ) -> int:
        """Store a model (and make it active) in one transaction: a crash leaves either the old
        active model or the new one, never a half-written model."""
        now = utcnow()
        with self.db.transaction() as con:
            model_id = insert_model_in(con, network, network_name, now, job_id, feature_names, theta, options,
                                       metrics)
            if activate:
                activate_in(con, network, model_id, now)
        return model_id

    def activate(self, model_id: int) -> None:
        """Make ``model_id`` its network's active model (``KeyError`` for an unknown id)."""
        with self.db.transaction() as con:
            row = con.execute("SELECT network FROM models WHERE id = ?", (model_id,)).fetchone()
            if row is None:
                raise KeyError(model_id)
            activate_in(con, row[0], model_id, utcnow())

    def active_id(self, network: str) -> int | None:
        row = self.db.con.execute("SELECT model_id FROM active_model WHERE network = ?", (network,)).fetchone()
        return None if row is None else int(row[0])

    def get(self, model_id: int) -> ModelRecord | None:
        row = self.db.con.execute(
            "SELECT m.*, (a.model_id IS NOT NULL) AS active FROM models m"
            " LEFT JOIN active_model a ON a.model_id = m.id WHERE m.id = ?",
            (model_id,),
        ).fetchone()
        return None if row is None else _model(row)

    def page(self, network: str | None, limit: int, offset: int) -> tuple[list[ModelRecord], int]:
        where, args = ("WHERE m.network = ?", [network]) if network is not None else ("", [])
        total = int(self.db.con.execute(f"SELECT COUNT(*) FROM models m {where}", args).fetchone()[0])
        rows = self.db.con.execute(
            "SELECT m.*, (a.model_id IS NOT NULL) AS active FROM models m"
            f" LEFT JOIN active_model a ON a.model_id = m.id {where} ORDER BY m.id DESC LIMIT ? OFFSET ?",
            [*args, limit, offset],
        ).fetchall()
        return [_model(r) for r in rows], total


def insert_model_in(
    con: sqlite3.Connection, network: str, network_name: str, now: str, job_id: int | None,
    feature_names: Sequence[str], theta: Sequence[float], options: dict[str, Any], metrics: dict[str, Any],
) -> int:
    """Insert one model row inside the caller's transaction; its id."""
    cur = con.execute(
        "INSERT INTO models (network, network_name, created_at, job_id, feature_names, theta, options,"
        " metrics) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (network, network_name, now, job_id, dumps(list(feature_names)), dumps([float(x) for x in theta]),
         dumps(options), dumps(metrics)),
    )
    return int(cur.lastrowid or 0)


def activate_in(con: sqlite3.Connection, network: str, model_id: int, now: str) -> None:
    """Make ``model_id`` the active model of ``network`` inside the caller's transaction."""
    con.execute(
        "INSERT INTO active_model (network, model_id, activated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (network) DO UPDATE SET model_id = excluded.model_id, activated_at = excluded.activated_at",
        (network, model_id, now),
    )


def _model(row: sqlite3.Row) -> ModelRecord:
    return ModelRecord(
        id=int(row["id"]), network=row["network"], network_name=row["network_name"], created_at=row["created_at"],
        job_id=row["job_id"], feature_names=json.loads(row["feature_names"]), theta=json.loads(row["theta"]),
        options=json.loads(row["options"]), metrics=json.loads(row["metrics"]), active=bool(row["active"]),
    )
