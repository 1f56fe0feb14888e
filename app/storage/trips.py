"""Stored trips: the raw GPS points as received and the map-matched path, tagged by network."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from app.storage.database import Database, dumps
from app.storage.records import NewTrip, TripRecord, utcnow

__all__ = ["TripStore"]


class TripStore:
    """Trips of every network; states in a path refer to the network whose fingerprint tags it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, network: str, trips: Sequence[NewTrip]) -> list[int]:
        """Store trips in one durable transaction; returns their ids in order."""
        now = utcnow()
        ids = []
        with self.db.transaction() as con:
            for t in trips:
                cur = con.execute(
                    "INSERT INTO trips (network, trace_id, source, created_at, n_points, points, times, path,"
                    " origin, destination) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (network, t.trace_id, t.source, now, len(t.points), dumps(t.points),
                     None if t.times is None else dumps(t.times), dumps([int(s) for s in t.path]),
                     int(t.path[0]), int(t.path[-1])),
                )
                ids.append(int(cur.lastrowid or 0))
        return ids

    def count(self, network: str | None = None, source: str | None = None) -> int:
        sql, args = "SELECT COUNT(*) FROM trips WHERE 1 = 1", []
        if network is not None:
            sql += " AND network = ?"
            args.append(network)
        if source is not None:
            sql += " AND source = ?"
            args.append(source)
        return int(self.db.con.execute(sql, args).fetchone()[0])

    def version(self, network: str) -> int:
        """Largest trip id of ``network``: changes whenever one is added (trips are never deleted).
        An index lookup, so the API can poll it every second whatever the table size."""
        row = self.db.con.execute("SELECT COALESCE(MAX(id), 0) FROM trips WHERE network = ?", (network,))
        return int(row.fetchone()[0])

    def page(self, network: str | None, limit: int, offset: int) -> tuple[list[TripRecord], int]:
        where, args = ("WHERE network = ?", [network]) if network is not None else ("", [])
        total = int(self.db.con.execute(f"SELECT COUNT(*) FROM trips {where}", args).fetchone()[0])
        rows = self.db.con.execute(
            "SELECT id, network, trace_id, source, created_at, n_points, origin, destination,"
            f" json_array_length(path) AS path_length FROM trips {where} ORDER BY id LIMIT ? OFFSET ?",
            [*args, limit, offset],
        ).fetchall()
        return [_trip(r) for r in rows], total

    def get(self, trip_id: int) -> TripRecord | None:
        row = self.db.con.execute(
            "SELECT *, json_array_length(path) AS path_length FROM trips WHERE id = ?", (trip_id,)
        ).fetchone()
        return None if row is None else _trip(row, full=True)

    def paths(self, network: str) -> tuple[list[int], list[list[int]]]:
        """Ids and matched paths of every trip on ``network``, oldest first."""
        rows = self.db.con.execute("SELECT id, path FROM trips WHERE network = ? ORDER BY id", (network,)).fetchall()
        return [int(r[0]) for r in rows], [json.loads(r[1]) for r in rows]

    def networks(self) -> list[tuple[str, int]]:
        """``(network fingerprint, number of trips)`` of every network with trips."""
        rows = self.db.con.execute("SELECT network, COUNT(*) FROM trips GROUP BY network ORDER BY network")
        return [(str(r[0]), int(r[1])) for r in rows.fetchall()]

    def destination_counts(self, network: str, limit: int) -> list[tuple[int, int]]:
        """``(state, count)`` of the ``limit`` most frequent trip destinations (ties: lower state)."""
        rows = self.db.con.execute(
            "SELECT destination, COUNT(*) AS n FROM trips WHERE network = ? GROUP BY destination"
            " ORDER BY n DESC, destination LIMIT ?",
            (network, limit),
        ).fetchall()
        return [(int(r[0]), int(r[1])) for r in rows]


def _trip(row: sqlite3.Row, full: bool = False) -> TripRecord:
    extra: dict[str, Any] = {}
    if full:
        extra = {
            "points": json.loads(row["points"]),
            "times": None if row["times"] is None else json.loads(row["times"]),
            "path": json.loads(row["path"]),
        }
    return TripRecord(
        id=int(row["id"]), network=row["network"], trace_id=row["trace_id"], source=row["source"],
        created_at=row["created_at"], n_points=int(row["n_points"]), origin=int(row["origin"]),
        destination=int(row["destination"]), path_length=int(row["path_length"]), **extra,
    )
