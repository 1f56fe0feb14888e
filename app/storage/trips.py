"""Stored trips: the raw GPS points as received and the map-matched path, tagged by network."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from app.storage.database import Database, dumps
from app.storage.idempotency import Receipt, ReceiptKey, get_in, put_in
from app.storage.records import NewTrip, TripRecord, TripSelection, utcnow

__all__ = ["TripStore"]


class TripStore:
    """Trips of every network; states in a path refer to the network whose fingerprint tags it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, network: str, trips: Sequence[NewTrip]) -> list[int]:
        """Store trips in one durable transaction; returns their ids in order."""
        with self.db.transaction() as con:
            return _insert_in(con, network, trips)

    def insert_once(
        self, network: str, trips: Sequence[NewTrip], key: ReceiptKey,
        answer: Callable[[list[int]], tuple[int, dict[str, Any]]], ttl_s: float,
    ) -> tuple[Receipt, bool]:
        """Store trips and the answer to the request that sent them (``answer(ids)``), in one transaction.

        If an answer under ``key`` is already stored (a retry that raced the first request), nothing
        is inserted and that answer is returned. ``(receipt, whether this call stored the trips)``.
        """
        with self.db.transaction() as con:
            existing = get_in(con, key.scope, key.key, ttl_s)
            if existing is not None:
                return existing, False
            ids = _insert_in(con, network, trips)
            status, body = answer(ids)
            return put_in(con, key, status, body, ttl_s), True

    def delete(self, trip_id: int) -> bool:
        """Delete one trip; whether it existed. Models trained on it keep their weights."""
        with self.db.transaction() as con:
            deleted = con.execute("DELETE FROM trips WHERE id = ?", (trip_id,)).rowcount
            if deleted:
                _bump(con)
        return bool(deleted)

    def delete_tagged(self, network: str, tag: str) -> int:
        """Delete every trip of ``network`` uploaded with ``tag``; how many."""
        with self.db.transaction() as con:
            deleted = con.execute("DELETE FROM trips WHERE network = ? AND tag = ?", (network, tag)).rowcount
            if deleted:
                _bump(con)
        return int(deleted)

    def count(self, network: str | None = None, source: str | None = None) -> int:
        sql, args = "SELECT COUNT(*) FROM trips WHERE 1 = 1", []
        if network is not None:
            sql += " AND network = ?"
            args.append(network)
        if source is not None:
            sql += " AND source = ?"
            args.append(source)
        return int(self.db.con.execute(sql, args).fetchone()[0])

    def version(self) -> int:
        """A counter bumped by every insert and delete: one row read, so the API can poll it every second."""
        row = self.db.con.execute("SELECT value FROM counters WHERE name = 'trips'").fetchone()
        return 0 if row is None else int(row[0])

    def page(self, network: str | None, limit: int, offset: int, tag: str | None = None
             ) -> tuple[list[TripRecord], int]:
        where, args = _where(network, TripSelection(tags=None if tag is None else (tag,)))
        total = int(self.db.con.execute(f"SELECT COUNT(*) FROM trips {where}", args).fetchone()[0])
        rows = self.db.con.execute(
            "SELECT id, network, trace_id, source, created_at, n_points, origin, destination, tag, start_time,"
            f" json_array_length(path) AS path_length FROM trips {where} ORDER BY id LIMIT ? OFFSET ?",
            [*args, limit, offset],
        ).fetchall()
        return [_trip(r) for r in rows], total

    def get(self, trip_id: int) -> TripRecord | None:
        row = self.db.con.execute(
            "SELECT *, json_array_length(path) AS path_length FROM trips WHERE id = ?", (trip_id,)
        ).fetchone()
        return None if row is None else _trip(row, full=True)

    def paths(self, network: str, selection: TripSelection | None = None) -> tuple[list[int], list[list[int]]]:
        """Ids and matched paths of the trips on ``network`` (those ``selection`` picks), oldest first."""
        where, args = _where(network, selection)
        rows = self.db.con.execute(f"SELECT id, path FROM trips {where} ORDER BY id", args).fetchall()
        return [int(r[0]) for r in rows], [json.loads(r[1]) for r in rows]

    def count_selected(self, network: str, selection: TripSelection | None) -> int:
        where, args = _where(network, selection)
        return int(self.db.con.execute(f"SELECT COUNT(*) FROM trips {where}", args).fetchone()[0])

    def networks(self) -> list[tuple[str, int]]:
        """``(network fingerprint, number of trips)`` of every network with trips."""
        rows = self.db.con.execute("SELECT network, COUNT(*) FROM trips GROUP BY network ORDER BY network")
        return [(str(r[0]), int(r[1])) for r in rows.fetchall()]

    def destinations(self, network: str) -> list[int]:
        """The destination state of every trip of ``network`` (with repeats), oldest first."""
        rows = self.db.con.execute("SELECT destination FROM trips WHERE network = ? ORDER BY id", (network,))
        return [int(r[0]) for r in rows.fetchall()]

    def destination_counts(self, network: str, limit: int) -> list[tuple[int, int]]:
        """``(state, count)`` of the ``limit`` most frequent trip destinations (ties: lower state)."""
        rows = self.db.con.execute(
            "SELECT destination, COUNT(*) AS n FROM trips WHERE network = ? GROUP BY destination"
            " ORDER BY n DESC, destination LIMIT ?",
            (network, limit),
        ).fetchall()
        return [(int(r[0]), int(r[1])) for r in rows]


def _insert_in(con: sqlite3.Connection, network: str, trips: Sequence[NewTrip]) -> list[int]:
    now = utcnow()
    ids = []
    for t in trips:
        cur = con.execute(
            "INSERT INTO trips (network, trace_id, source, created_at, n_points, points, times, path,"
            " origin, destination, tag, start_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (network, t.trace_id, t.source, now, len(t.points), dumps(t.points),
             None if t.times is None else dumps(t.times), dumps([int(s) for s in t.path]),
             int(t.path[0]), int(t.path[-1]), t.tag, None if not t.times else float(t.times[0])),
        )
        ids.append(int(cur.lastrowid or 0))
    if ids:
        _bump(con)
    return ids


def _bump(con: sqlite3.Connection) -> None:
    """Count one more change of the trips (inside the caller's transaction)."""
    con.execute("INSERT INTO counters (name, value) VALUES ('trips', 1)"
                " ON CONFLICT (name) DO UPDATE SET value = value + 1")


def _where(network: str | None, selection: TripSelection | None) -> tuple[str, list[Any]]:
    """``WHERE ...`` and its arguments for trips of ``network`` (None: any) picked by ``selection``."""
    clauses: list[str] = []
    args: list[Any] = []
    if network is not None:
        clauses.append("network = ?")
        args.append(network)
    if selection is not None:
        if selection.ids is not None:
            clauses.append(f"id IN ({', '.join('?' * len(selection.ids))})" if selection.ids else "0")
            args.extend(int(i) for i in selection.ids)
        if selection.tags is not None:
            clauses.append(f"tag IN ({', '.join('?' * len(selection.tags))})" if selection.tags else "0")
            args.extend(selection.tags)
        started = "COALESCE(start_time, CAST(strftime('%s', created_at) AS REAL))"
        if selection.since is not None:
            clauses.append(f"{started} >= ?")
            args.append(float(selection.since))
        if selection.until is not None:
            clauses.append(f"{started} < ?")
            args.append(float(selection.until))
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", args


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
        destination=int(row["destination"]), path_length=int(row["path_length"]), tag=row["tag"],
        start_time=row["start_time"], **extra,
    )
