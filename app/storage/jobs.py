"""Training jobs: queued, running (with live progress), then final; a model is written with its job's end."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from app.storage.database import Database, dumps
from app.storage.idempotency import Receipt, ReceiptKey, get_in, put_in
from app.storage.models import activate_in, insert_model_in
from app.storage.records import (
    FINAL_STATUSES,
    INTERRUPTED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    JobRecord,
    utcnow,
)

__all__ = ["JobStore"]


class JobStore:
    """Jobs of every network, oldest first in the queue."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, kind: str, network: str, options: dict[str, Any]) -> JobRecord:
        """Queue a job (no limit: for the service's own jobs, such as the demo)."""
        job = self.create_limited(kind, network, options, None)
        assert job is not None
        return job

    def create_limited(self, kind: str, network: str, options: dict[str, Any], max_unfinished: int | None
                       ) -> JobRecord | None:
        """Queue a job unless ``max_unfinished`` jobs (queued or running, any network) exist: then ``None``.

        The count and the insert share one write transaction, so concurrent requests of several
        API processes cannot overshoot the limit.
        """
        with self.db.transaction() as con:
            job_id = _create_in(con, kind, network, options, max_unfinished)
        return None if job_id is None else self.get(job_id)

    def create_once(
        self, kind: str, network: str, options: dict[str, Any], max_unfinished: int | None, key: ReceiptKey,
        answer: Callable[[JobRecord | None], tuple[int, dict[str, Any]]], ttl_s: float,
    ) -> tuple[Receipt, bool]:
        """:meth:`create_limited` and the answer to the request (``answer(job or None)``) in one transaction;
        an answer already stored under ``key`` is returned instead: ``(receipt, whether it is this call's)``.

        ``answer(None)`` (the queue is full) may raise to refuse the request; an answer it returns
        then is not stored (a retry may find room later)."""
        with self.db.transaction() as con:
            existing = get_in(con, key.scope, key.key, ttl_s)
            if existing is not None:
                return existing, False
            job_id = _create_in(con, kind, network, options, max_unfinished)
            row = None if job_id is None else con.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            status, body = answer(None if row is None else _job(row))
            if job_id is None:  # nothing was queued: not stored, a retry may succeed later
                return Receipt(status, body, key.request_hash), True
            return put_in(con, key, status, body, ttl_s), True

    def count_kind(self, kind: str, network: str, statuses: Sequence[str]) -> int:
        """How many jobs of ``kind`` on ``network`` are in one of ``statuses``."""
        marks = ", ".join("?" * len(statuses))
        return int(self.db.con.execute(
            f"SELECT COUNT(*) FROM jobs WHERE kind = ? AND network = ? AND status IN ({marks})",
            [kind, network, *statuses]).fetchone()[0])

    def count_unfinished(self) -> int:
        return int(self.db.con.execute("SELECT COUNT(*) FROM jobs WHERE status IN (?, ?)",
                                        (QUEUED, RUNNING)).fetchone()[0])

    def get(self, job_id: int) -> JobRecord | None:
        row = self.db.con.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def page(self, limit: int, offset: int, status: str | None = None) -> tuple[list[JobRecord], int]:
        where, args = ("WHERE status = ?", [status]) if status else ("", [])
        total = int(self.db.con.execute(f"SELECT COUNT(*) FROM jobs {where}", args).fetchone()[0])
        rows = self.db.con.execute(
            f"SELECT * FROM jobs {where} ORDER BY id DESC LIMIT ? OFFSET ?", [*args, limit, offset]
        ).fetchall()
        return [_job(r) for r in rows], total

    def next_queued(self) -> JobRecord | None:
        row = self.db.con.execute("SELECT * FROM jobs WHERE status = ? ORDER BY id LIMIT 1", (QUEUED,)).fetchone()
        return None if row is None else _job(row)

    def unfinished(self, network: str | None = None) -> list[JobRecord]:
        sql = "SELECT * FROM jobs WHERE status IN (?, ?)"
        args: list[Any] = [QUEUED, RUNNING]
        if network is not None:
            sql += " AND network = ?"
            args.append(network)
        return [_job(r) for r in self.db.con.execute(sql + " ORDER BY id", args).fetchall()]

    def start(self, job_id: int, pid: int | None) -> bool:
        """queued -> running; ``False`` if someone else already took it."""
        with self.db.transaction() as con:
            cur = con.execute(
                "UPDATE jobs SET status = ?, pid = ?, started_at = ? WHERE id = ? AND status = ?",
                (RUNNING, pid, utcnow(), job_id, QUEUED),
            )
        return cur.rowcount == 1

    def set_pid(self, job_id: int, pid: int) -> None:
        with self.db.transaction() as con:
            con.execute("UPDATE jobs SET pid = ? WHERE id = ?", (pid, job_id))

    def update_progress(self, job_id: int, progress: dict[str, Any]) -> None:
        with self.db.transaction() as con:
            con.execute("UPDATE jobs SET progress = ? WHERE id = ?", (dumps(progress), job_id))

    def finish(self, job_id: int, status: str, *, error: str | None = None, model_id: int | None = None) -> bool:
        """Mark a job final unless it already is (first writer wins); ``True`` if this call did."""
        assert status in FINAL_STATUSES
        with self.db.transaction() as con:
            cur = con.execute(
                "UPDATE jobs SET status = ?, error = ?, model_id = COALESCE(?, model_id), finished_at = ?"
                " WHERE id = ? AND status IN (?, ?)",
                (status, error, model_id, utcnow(), job_id, QUEUED, RUNNING),
            )
        return cur.rowcount == 1

    def interrupt_running(self, reason: str) -> list[int]:
        """At start: a job still 'running' lost its worker with the previous process."""
        with self.db.transaction() as con:
            ids = [int(r[0]) for r in con.execute("SELECT id FROM jobs WHERE status = ?", (RUNNING,))]
            con.execute(
                "UPDATE jobs SET status = ?, error = ?, finished_at = ? WHERE status = ?",
                (INTERRUPTED, reason, utcnow(), RUNNING),
            )
        return ids

    def complete_training(
        self, job_id: int, *, network_name: str, feature_names: Sequence[str], theta: Sequence[float],
        options: dict[str, Any], metrics: dict[str, Any], activate: bool,
    ) -> int | None:
        """Store the model, activate it and mark the job succeeded, atomically.

        Does nothing (returns ``None``) if the job is no longer running, e.g. because a
        restarted API marked it interrupted while an orphaned worker kept going.
        """
        now = utcnow()
        with self.db.transaction() as con:
            row = con.execute("SELECT network, status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row["status"] != RUNNING:
                return None
            model_id = insert_model_in(con, row["network"], network_name, now, job_id, feature_names, theta,
                                       options, metrics)
            if activate:
                activate_in(con, row["network"], model_id, now)
            con.execute("UPDATE jobs SET status = ?, model_id = ?, finished_at = ? WHERE id = ?",
                        (SUCCEEDED, model_id, now, job_id))
        return model_id


def _create_in(con: sqlite3.Connection, kind: str, network: str, options: dict[str, Any],
               max_unfinished: int | None) -> int | None:
    if max_unfinished is not None:
        busy = int(con.execute("SELECT COUNT(*) FROM jobs WHERE status IN (?, ?)", (QUEUED, RUNNING)).fetchone()[0])
        if busy >= max_unfinished:
            return None
    cur = con.execute(
        "INSERT INTO jobs (kind, network, status, options, created_at) VALUES (?, ?, ?, ?, ?)",
        (kind, network, QUEUED, dumps(options), utcnow()),
    )
    return int(cur.lastrowid or 0)


def _job(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        id=int(row["id"]), kind=row["kind"], network=row["network"], status=row["status"],
        options=json.loads(row["options"]),
        progress=None if row["progress"] is None else json.loads(row["progress"]),
        error=row["error"], model_id=row["model_id"], pid=row["pid"], created_at=row["created_at"],
        started_at=row["started_at"], finished_at=row["finished_at"],
    )
