"""Stored answers of requests sent with an ``Idempotency-Key``: a retry gets the first answer, nothing is done twice.

An answer is written in the same transaction as what the request stored (trips, a job),
so after a crash either both exist or neither does: a retry after a lost answer finds
the first one instead of storing again. Answers older than the store's time to live are
dropped as new ones are written.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from app.storage.database import Database, dumps

__all__ = ["IdempotencyStore", "Receipt", "ReceiptKey"]


@dataclass(frozen=True)
class ReceiptKey:
    """Which request: the endpoint (``scope``), the client's key, and a digest of what was sent."""

    scope: str
    key: str
    request_hash: str


@dataclass(frozen=True)
class Receipt:
    """The answer given to the first request with a key: status and JSON body."""

    status: int
    body: dict[str, Any]
    request_hash: str


class IdempotencyStore:
    def __init__(self, db: Database, ttl_s: float = 86_400.0) -> None:
        self.db = db
        self.ttl_s = ttl_s

    def get(self, scope: str, key: str) -> Receipt | None:
        return get_in(self.db.con, scope, key, self.ttl_s)

    def count(self) -> int:
        return int(self.db.con.execute("SELECT COUNT(*) FROM idempotency").fetchone()[0])


def get_in(con: sqlite3.Connection, scope: str, key: str, ttl_s: float) -> Receipt | None:
    row = con.execute(
        "SELECT status, body, request_hash FROM idempotency WHERE scope = ? AND key = ? AND created_at >= ?",
        (scope, key, time.time() - ttl_s),
    ).fetchone()
    return None if row is None else Receipt(int(row["status"]), json.loads(row["body"]), row["request_hash"])


def put_in(con: sqlite3.Connection, key: ReceiptKey, status: int, body: dict[str, Any], ttl_s: float) -> Receipt:
    """Store an answer (inside the caller's transaction); expired answers are dropped first."""
    now = time.time()
    con.execute("DELETE FROM idempotency WHERE created_at < ?", (now - ttl_s,))
    con.execute(
        "INSERT OR REPLACE INTO idempotency (scope, key, request_hash, status, body, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (key.scope, key.key, key.request_hash, status, dumps(body), now),
    )
    return Receipt(status, body, key.request_hash)
