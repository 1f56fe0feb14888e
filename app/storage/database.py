"""The SQLite file: connections, transactions and the schema.

Why these choices:

* WAL journal + ``synchronous=FULL``: data is acknowledged only after its transaction is
  committed *and* fsynced, so it survives a ``kill -9`` or a power cut; WAL lets the
  training worker write progress while the API reads.
* One connection per thread: ``sqlite3`` connections must not be shared across threads
  while a statement runs, and FastAPI runs sync endpoints on a thread pool.
* Plain JSON in TEXT columns, never pickle: a database can be inspected with the
  ``sqlite3`` shell and is safe to load.
* The file is created readable by its owner only (0600): it holds raw GPS traces.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_VERSION", "Database", "NotADatabaseError", "dumps"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3

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
    destination INTEGER NOT NULL,
    tag         TEXT,                        -- a label given at upload, to select trips for training
    start_time  REAL                         -- UNIX seconds of the first GPS fix, NULL without times
);
CREATE INDEX IF NOT EXISTS trips_by_network ON trips (network, id);
CREATE INDEX IF NOT EXISTS trips_by_destination ON trips (network, destination);
CREATE INDEX IF NOT EXISTS trips_by_tag ON trips (network, tag);

CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,                  -- 'trips': bumped by every insert or delete of trips
    value INTEGER NOT NULL
);

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

CREATE TABLE IF NOT EXISTS idempotency (
    scope        TEXT    NOT NULL,           -- the endpoint, e.g. 'POST /v1/trajectories'
    key          TEXT    NOT NULL,           -- the client's Idempotency-Key
    request_hash TEXT    NOT NULL,           -- sha256 of what was sent (the same key with another body is refused)
    status       INTEGER NOT NULL,           -- the first answer's HTTP status ...
    body         TEXT    NOT NULL,           -- ... and JSON body
    created_at   REAL    NOT NULL,           -- UNIX seconds (answers expire)
    PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS idempotency_by_age ON idempotency (created_at);

CREATE TABLE IF NOT EXISTS active_model (
    network      TEXT PRIMARY KEY,
    model_id     INTEGER NOT NULL REFERENCES models (id),
    activated_at TEXT    NOT NULL
);
"""

#: Steps from one schema version to the next, run in the same transaction as the version bump.
_MIGRATIONS: dict[int, str] = {
    1: """
ALTER TABLE trips ADD COLUMN tag TEXT;
ALTER TABLE trips ADD COLUMN start_time REAL;
UPDATE trips SET start_time = json_extract(times, '$[0]') WHERE times IS NOT NULL;
CREATE INDEX IF NOT EXISTS trips_by_tag ON trips (network, tag);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
""",
    # 2 -> 3: the idempotency table is new (created by _SCHEMA below); nothing to change in existing tables
    2: "",
}


class NotADatabaseError(ValueError):
    """The file is not SQLite, or not a routeirl database (a reader opened it read-only)."""


def dumps(obj: Any) -> str:
    """Compact JSON for a TEXT column; NaN and infinities are refused (they are not JSON)."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


class Database:
    """Thread-safe access to one SQLite file; creates the schema on construction.

    ``read_only`` opens an existing file without creating or changing anything (for
    readers such as ``routeirl evaluate``, which must never modify a service's database).
    """

    def __init__(self, path: str | Path, *, timeout_s: float = 30.0, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._timeout_s = timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        if read_only:
            if not self.path.is_file():
                raise FileNotFoundError(f"no database at {self.path}")
            try:
                tables = {r[0] for r in self.con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            except sqlite3.DatabaseError as exc:
                raise NotADatabaseError(f"{self.path} is not a routeirl database ({exc})") from exc
            if "trips" not in tables:
                raise NotADatabaseError(f"{self.path} is not a routeirl database (no trips table)")
            return
        _create_private(self.path)
        self._create_or_migrate()

    def _create_or_migrate(self) -> None:
        """Create the schema on a new file, or bring an older one up to :data:`SCHEMA_VERSION`.

        Under one write lock, so two processes starting on the same file do it once. A file
        from a newer version is refused rather than misread.
        """
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            version = int(con.execute("PRAGMA user_version").fetchone()[0])
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if version > SCHEMA_VERSION:
                raise NotADatabaseError(f"{self.path} has schema version {version}; this routeirl reads up to "
                                        f"{SCHEMA_VERSION} (a newer routeirl wrote it)")
            if "trips" in tables:
                for step in range(max(version, 1), SCHEMA_VERSION):
                    log.info("migrating %s from schema version %d to %d", self.path, step, step + 1)
                    for statement in filter(str.strip, _MIGRATIONS[step].split(";")):
                        con.execute(statement)
            for statement in filter(str.strip, _SCHEMA.split(";")):
                if not statement.strip().startswith("--"):
                    con.execute(statement)
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    # --- connections ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            con = sqlite3.connect(uri, uri=True, timeout=self._timeout_s, isolation_level=None,
                                  check_same_thread=False)
        else:
            con = sqlite3.connect(self.path, timeout=self._timeout_s, isolation_level=None, check_same_thread=False)
            mode = self._enable_wal(con)
            if str(mode).lower() != "wal":  # pragma: no cover - e.g. a network file system
                log.warning("SQLite journal_mode is %s, not WAL", mode)
            con.execute("PRAGMA synchronous=FULL")
        con.row_factory = sqlite3.Row
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
        """This thread's connection (opened on first use)."""
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
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


def _create_private(path: Path) -> None:
    """Create the folder (0700) and an empty database file (0600) unless they exist."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            path.parent.chmod(0o700)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
