"""SQLite persistence: trips, training jobs, models and which model is active.

Why these choices:

* WAL journal + ``synchronous=FULL``: a trip is acknowledged (201) only after its
  transaction is committed *and* fsynced, so it survives a ``kill -9`` or a power cut;
  WAL lets the training worker write progress while the API reads.
* One connection per thread: ``sqlite3`` connections must not be shared across threads
  while a statement runs, and FastAPI runs sync endpoints on a thread pool.
* Models are plain JSON (feature names, ``theta``, metrics): never pickle, so a database
  can be inspected with the ``sqlite3`` shell and is safe to load.
* Everything that depends on state numbering is tagged with the network fingerprint, so
  pointing the service at another network ignores (but keeps) the old trips and models.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["JobRecord", "ModelRecord", "NewTrip", "Storage", "TripRecord", "utcnow"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trips (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    network     TEXT    NOT NULL,            -- network fingerprint the path's states refer to
    trace_id    TEXT,                        -- the client's name for the trip, if any
    source      TEXT    NOT NULL,            -- 'upload' or 'demo'
    created_at  TEXT    NOT NULL,
    n_points    INTEGER NOT NULL,
    points      TEXT    NOT NULL,            -- JSON [[lon, lat], ...] as received
    times       TEXT,                        -- JSON [seconds, ...] or NULL
    path        TEXT    NOT NULL,            -- JSON [state, ...] map-matched path
    origin      INTEGER NOT NULL,
    destination INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS trips_by_network ON trips (network, id);
CREATE INDEX IF NOT EXISTS trips_by_destination ON trips (network, destination);

CREATE TABLE IF NOT EXISTS jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL,            -- 'train' or 'demo'
    network     TEXT    NOT NULL,
    status      TEXT    NOT NULL,            -- queued, running, succeeded, failed, interrupted
    options     TEXT    NOT NULL,            -- JSON
    progress    TEXT,                        -- JSON, written by the worker while it runs
    error       TEXT,
    model_id    INTEGER,
    pid         INTEGER,
    created_at  TEXT    NOT NULL,
    started_at  TEXT,
    finished_at TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, id);

CREATE TABLE IF NOT EXISTS models (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    network       TEXT    NOT NULL,
    network_name  TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    job_id        INTEGER,
    feature_names TEXT    NOT NULL,          -- JSON [name, ...]
    theta         TEXT    NOT NULL,          -- JSON [float, ...], same order
    options       TEXT    NOT NULL,          -- JSON training options
    metrics       TEXT    NOT NULL           -- JSON training / held-out metrics
);

CREATE TABLE IF NOT EXISTS active_model (
    network      TEXT PRIMARY KEY,
    model_id     INTEGER NOT NULL REFERENCES models (id),
    activated_at TEXT    NOT NULL
);
"""

#: Job statuses; the last three are final.
QUEUED, RUNNING, SUCCEEDED, FAILED, INTERRUPTED = "queued", "running", "succeeded", "failed", "interrupted"
FINAL_STATUSES = frozenset({SUCCEEDED, FAILED, INTERRUPTED})


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True)
class NewTrip:
    """A map-matched trip ready to be stored."""

    points: list[list[float]]
    path: list[int]
    times: list[float] | None = None
    trace_id: str | None = None
    source: str = "upload"


@dataclass(frozen=True)
class TripRecord:
    id: int
    network: str
    trace_id: str | None
    source: str
    created_at: str
    n_points: int
    origin: int
    destination: int
    path_length: int
    points: list[list[float]] | None = None
    times: list[float] | None = None
    path: list[int] | None = None


@dataclass(frozen=True)
class JobRecord:
    id: int
    kind: str
    network: str
    status: str
    options: dict[str, Any]
    progress: dict[str, Any] | None
    error: str | None
    model_id: int | None
    pid: int | None
    created_at: str
    started_at: str | None
    finished_at: str | None


@dataclass(frozen=True)
class ModelRecord:
    id: int
    network: str
    network_name: str
    created_at: str
    job_id: int | None
    feature_names: list[str]
    theta: list[float]
    options: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    active: bool = False


class Storage:
    """Thread-safe access to the SQLite file; creates the schema on construction."""

    def __init__(self, path: str | Path, *, timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._timeout_s = timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        # executescript commits on its own, so the script carries its own transaction.
        self.con.executescript(f"BEGIN IMMEDIATE;\n{_SCHEMA}\nPRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;")

    # --- connections ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=self._timeout_s, isolation_level=None, check_same_thread=False)
        con.row_factory = sqlite3.Row
        mode = self._enable_wal(con)
        if str(mode).lower() != "wal":  # pragma: no cover - e.g. a network file system
            log.warning("SQLite journal_mode is %s, not WAL", mode)
        con.execute("PRAGMA synchronous=FULL")
        con.execute("PRAGMA foreign_keys=ON")
        con.execute(f"PRAGMA busy_timeout={int(self._timeout_s * 1000)}")
        with self._all_lock:
            self._all.append(con)
        return con

    def _enable_wal(self, con: sqlite3.Connection) -> str:
        """``PRAGMA journal_mode=WAL``, retried while another process holds the file.

        Switching a new file to WAL needs an exclusive lock, and SQLite answers "database is
        locked" at once instead of waiting in the busy handler: two API processes starting on
        a fresh database (``./scripts/serve`` starts two) would otherwise fail one of them.
        """
        deadline = time.monotonic() + self._timeout_s
        delay = 0.005
        while True:
            try:
                return str(con.execute("PRAGMA journal_mode=WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(2 * delay, 0.2)

    @property
    def con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = self._connect()
        return con

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on error): takes the write lock up front
        so two writers wait for each other instead of failing with 'database is locked'."""
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def close(self) -> None:
        with self._all_lock:
            for con in self._all:
                with contextlib.suppress(sqlite3.Error):
                    con.close()
            self._all.clear()
        self._local = threading.local()

    def ping(self) -> bool:
        try:
            self.con.execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    # --- trips -----------------------------------------------------------------------------------
    def insert_trips(self, network: str, trips: Sequence[NewTrip]) -> list[int]:
        """Store trips in one durable transaction; returns their ids in order."""
        now = utcnow()
        ids = []
        with self.transaction() as con:
            for t in trips:
                cur = con.execute(
                    "INSERT INTO trips (network, trace_id, source, created_at, n_points, points, times, path,"
                    " origin, destination) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        network,
                        t.trace_id,
                        t.source,
                        now,
                        len(t.points),
                        _dumps(t.points),
                        None if t.times is None else _dumps(t.times),
                        _dumps([int(s) for s in t.path]),
                        int(t.path[0]),
                        int(t.path[-1]),
                    ),
                )
                ids.append(int(cur.lastrowid))
        return ids

    def count_trips(self, network: str | None = None, source: str | None = None) -> int:
        sql, args = "SELECT COUNT(*) FROM trips WHERE 1 = 1", []
        if network is not None:
            sql += " AND network = ?"
            args.append(network)
        if source is not None:
            sql += " AND source = ?"
            args.append(source)
        return int(self.con.execute(sql, args).fetchone()[0])

    def trips_version(self, network: str) -> int:
        """Largest trip id of ``network``: changes whenever one is added (trips are never deleted).
        An index lookup, so the API can poll it every second whatever the table size."""
        row = self.con.execute("SELECT COALESCE(MAX(id), 0) FROM trips WHERE network = ?", (network,))
        return int(row.fetchone()[0])

    def list_trips(self, network: str | None, limit: int, offset: int) -> tuple[list[TripRecord], int]:
        where, args = ("WHERE network = ?", [network]) if network is not None else ("", [])
        total = int(self.con.execute(f"SELECT COUNT(*) FROM trips {where}", args).fetchone()[0])
        rows = self.con.execute(
            "SELECT id, network, trace_id, source, created_at, n_points, origin, destination,"
            f" json_array_length(path) AS path_length FROM trips {where} ORDER BY id LIMIT ? OFFSET ?",
            [*args, limit, offset],
        ).fetchall()
        return [_trip(r) for r in rows], total

    def get_trip(self, trip_id: int) -> TripRecord | None:
        row = self.con.execute(
            "SELECT *, json_array_length(path) AS path_length FROM trips WHERE id = ?", (trip_id,)
        ).fetchone()
        return None if row is None else _trip(row, full=True)

    def training_paths(self, network: str) -> tuple[list[int], list[list[int]]]:
        """Ids and matched paths of every trip on ``network``, oldest first."""
        rows = self.con.execute("SELECT id, path FROM trips WHERE network = ? ORDER BY id", (network,)).fetchall()
        return [int(r[0]) for r in rows], [json.loads(r[1]) for r in rows]

    def destination_counts(self, network: str, limit: int) -> list[tuple[int, int]]:
        """``(state, count)`` of the ``limit`` most frequent trip destinations (ties: lower state)."""
        rows = self.con.execute(
            "SELECT destination, COUNT(*) AS n FROM trips WHERE network = ? GROUP BY destination"
            " ORDER BY n DESC, destination LIMIT ?",
            (network, limit),
        ).fetchall()
        return [(int(r[0]), int(r[1])) for r in rows]

    # --- jobs ------------------------------------------------------------------------------------
    def create_job(self, kind: str, network: str, options: dict[str, Any]) -> JobRecord:
        with self.transaction() as con:
            cur = con.execute(
                "INSERT INTO jobs (kind, network, status, options, created_at) VALUES (?, ?, ?, ?, ?)",
                (kind, network, QUEUED, _dumps(options), utcnow()),
            )
            job_id = int(cur.lastrowid)
        job = self.get_job(job_id)
        assert job is not None
        return job

    def get_job(self, job_id: int) -> JobRecord | None:
        row = self.con.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def list_jobs(self, limit: int, offset: int, status: str | None = None) -> tuple[list[JobRecord], int]:
        where, args = ("WHERE status = ?", [status]) if status else ("", [])
        total = int(self.con.execute(f"SELECT COUNT(*) FROM jobs {where}", args).fetchone()[0])
        rows = self.con.execute(
            f"SELECT * FROM jobs {where} ORDER BY id DESC LIMIT ? OFFSET ?", [*args, limit, offset]
        ).fetchall()
        return [_job(r) for r in rows], total

    def next_queued_job(self) -> JobRecord | None:
        row = self.con.execute("SELECT * FROM jobs WHERE status = ? ORDER BY id LIMIT 1", (QUEUED,)).fetchone()
        return None if row is None else _job(row)

    def unfinished_jobs(self, network: str | None = None) -> list[JobRecord]:
        sql = "SELECT * FROM jobs WHERE status IN (?, ?)"
        args: list[Any] = [QUEUED, RUNNING]
        if network is not None:
            sql += " AND network = ?"
            args.append(network)
        return [_job(r) for r in self.con.execute(sql + " ORDER BY id", args).fetchall()]

    def start_job(self, job_id: int, pid: int | None) -> bool:
        """queued -> running; ``False`` if someone else already took it."""
        with self.transaction() as con:
            cur = con.execute(
                "UPDATE jobs SET status = ?, pid = ?, started_at = ? WHERE id = ? AND status = ?",
                (RUNNING, pid, utcnow(), job_id, QUEUED),
            )
        return cur.rowcount == 1

    def set_job_pid(self, job_id: int, pid: int) -> None:
        with self.transaction() as con:
            con.execute("UPDATE jobs SET pid = ? WHERE id = ?", (pid, job_id))

    def update_progress(self, job_id: int, progress: dict[str, Any]) -> None:
        with self.transaction() as con:
            con.execute("UPDATE jobs SET progress = ? WHERE id = ?", (_dumps(progress), job_id))

    def finish_job(
        self, job_id: int, status: str, *, error: str | None = None, model_id: int | None = None
    ) -> bool:
        """Mark a job final unless it already is (first writer wins); ``True`` if this call did."""
        assert status in FINAL_STATUSES
        with self.transaction() as con:
            cur = con.execute(
                "UPDATE jobs SET status = ?, error = ?, model_id = COALESCE(?, model_id), finished_at = ?"
                " WHERE id = ? AND status IN (?, ?)",
                (status, error, model_id, utcnow(), job_id, QUEUED, RUNNING),
            )
        return cur.rowcount == 1

    def interrupt_running_jobs(self, reason: str) -> list[int]:
        """At start: a job still 'running' lost its worker with the previous process."""
        with self.transaction() as con:
            ids = [int(r[0]) for r in con.execute("SELECT id FROM jobs WHERE status = ?", (RUNNING,))]
            con.execute(
                "UPDATE jobs SET status = ?, error = ?, finished_at = ? WHERE status = ?",
                (INTERRUPTED, reason, utcnow(), RUNNING),
            )
        return ids

    # --- models ----------------------------------------------------------------------------------
    def insert_model(
        self,
        *,
        network: str,
        network_name: str,
        feature_names: Sequence[str],
        theta: Sequence[float],
        options: dict[str, Any],
        metrics: dict[str, Any],
        job_id: int | None = None,
        activate: bool = True,
    ) -> int:
        """Store a model (and make it active) in one transaction: a crash leaves either the old
        active model or the new one, never a half-written model."""
        now = utcnow()
        with self.transaction() as con:
            model_id = _insert_model(
                con, network, network_name, now, job_id, feature_names, theta, options, metrics
            )
            if activate:
                _activate(con, network, model_id, now)
        return model_id

    def complete_training(
        self,
        job_id: int,
        *,
        network_name: str,
        feature_names: Sequence[str],
        theta: Sequence[float],
        options: dict[str, Any],
        metrics: dict[str, Any],
        activate: bool,
    ) -> int | None:
        """Store the model, activate it and mark the job succeeded, atomically.

        Does nothing (returns ``None``) if the job is no longer running, e.g. because a
        restarted API marked it interrupted while an orphaned worker kept going.
        """
        now = utcnow()
        with self.transaction() as con:
            row = con.execute("SELECT network, status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row["status"] != RUNNING:
                return None
            model_id = _insert_model(
                con, row["network"], network_name, now, job_id, feature_names, theta, options, metrics
            )
            if activate:
                _activate(con, row["network"], model_id, now)
            con.execute(
                "UPDATE jobs SET status = ?, model_id = ?, finished_at = ? WHERE id = ?",
                (SUCCEEDED, model_id, now, job_id),
            )
        return model_id

    def activate_model(self, model_id: int) -> None:
        with self.transaction() as con:
            row = con.execute("SELECT network FROM models WHERE id = ?", (model_id,)).fetchone()
            if row is None:
                raise KeyError(model_id)
            _activate(con, row[0], model_id, utcnow())

    def active_model_id(self, network: str) -> int | None:
        row = self.con.execute("SELECT model_id FROM active_model WHERE network = ?", (network,)).fetchone()
        return None if row is None else int(row[0])

    def get_model(self, model_id: int) -> ModelRecord | None:
        row = self.con.execute(
            "SELECT m.*, (a.model_id IS NOT NULL) AS active FROM models m"
            " LEFT JOIN active_model a ON a.model_id = m.id WHERE m.id = ?",
            (model_id,),
        ).fetchone()
        return None if row is None else _model(row)

    def list_models(self, network: str | None, limit: int, offset: int) -> tuple[list[ModelRecord], int]:
        where, args = ("WHERE m.network = ?", [network]) if network is not None else ("", [])
        total = int(self.con.execute(f"SELECT COUNT(*) FROM models m {where}", args).fetchone()[0])
        rows = self.con.execute(
            "SELECT m.*, (a.model_id IS NOT NULL) AS active FROM models m"
            f" LEFT JOIN active_model a ON a.model_id = m.id {where} ORDER BY m.id DESC LIMIT ? OFFSET ?",
            [*args, limit, offset],
        ).fetchall()
        return [_model(r) for r in rows], total



def _insert_model(
    con: sqlite3.Connection,
    network: str,
    network_name: str,
    now: str,
    job_id: int | None,
    feature_names: Sequence[str],
    theta: Sequence[float],
    options: dict[str, Any],
    metrics: dict[str, Any],
) -> int:
    """Insert one model row (plain JSON, never pickle) inside the caller's transaction; its id."""
    cur = con.execute(
        "INSERT INTO models (network, network_name, created_at, job_id, feature_names, theta, options,"
        " metrics) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            network,
            network_name,
            now,
            job_id,
            _dumps(list(feature_names)),
            _dumps([float(x) for x in theta]),
            _dumps(options),
            _dumps(metrics),
        ),
    )
    return int(cur.lastrowid)

def _activate(con: sqlite3.Connection, network: str, model_id: int, now: str) -> None:
    con.execute(
        "INSERT INTO active_model (network, model_id, activated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (network) DO UPDATE SET model_id = excluded.model_id, activated_at = excluded.activated_at",
        (network, model_id, now),
    )


def _trip(row: sqlite3.Row, full: bool = False) -> TripRecord:
    extra: dict[str, Any] = {}
    if full:
        extra = {
            "points": json.loads(row["points"]),
            "times": None if row["times"] is None else json.loads(row["times"]),
            "path": json.loads(row["path"]),
        }
    return TripRecord(
        id=int(row["id"]),
        network=row["network"],
        trace_id=row["trace_id"],
        source=row["source"],
        created_at=row["created_at"],
        n_points=int(row["n_points"]),
        origin=int(row["origin"]),
        destination=int(row["destination"]),
        path_length=int(row["path_length"]),
        **extra,
    )


def _job(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        id=int(row["id"]),
        kind=row["kind"],
        network=row["network"],
        status=row["status"],
        options=json.loads(row["options"]),
        progress=None if row["progress"] is None else json.loads(row["progress"]),
        error=row["error"],
        model_id=row["model_id"],
        pid=row["pid"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def _model(row: sqlite3.Row) -> ModelRecord:
    return ModelRecord(
        id=int(row["id"]),
        network=row["network"],
        network_name=row["network_name"],
        created_at=row["created_at"],
        job_id=row["job_id"],
        feature_names=json.loads(row["feature_names"]),
        theta=json.loads(row["theta"]),
        options=json.loads(row["options"]),
        metrics=json.loads(row["metrics"]),
        active=bool(row["active"]),
    )

