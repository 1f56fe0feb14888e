"""Persistence of the service: one SQLite database, one store per resource.

``Storage(path)`` opens (and creates) the database; ``storage.trips``, ``storage.jobs`` and
``storage.models`` are the stores (:class:`TripStore`, :class:`JobStore`, :class:`ModelStore`).
SQL lives in this package only. Every record is tagged with the network fingerprint its
state numbers refer to, so pointing the service at another network ignores (but keeps) the
old trips and models.
"""

from __future__ import annotations

from pathlib import Path

from app.storage.database import SCHEMA_VERSION, Database, NotADatabaseError
from app.storage.idempotency import IdempotencyStore, Receipt, ReceiptKey
from app.storage.jobs import JobStore
from app.storage.models import ModelStore
from app.storage.records import (
    CANCELLED,
    FAILED,
    FINAL_STATUSES,
    INTERRUPTED,
    JOB_STATUSES,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    JobRecord,
    ModelRecord,
    NewTrip,
    TripRecord,
    TripSelection,
    utcnow,
)
from app.storage.trips import TripStore

__all__ = [
    "CANCELLED", "FAILED", "FINAL_STATUSES", "INTERRUPTED", "JOB_STATUSES", "QUEUED", "RUNNING", "SCHEMA_VERSION",
    "SUCCEEDED", "Database", "IdempotencyStore", "JobRecord", "JobStore", "ModelRecord", "ModelStore", "NewTrip",
    "NotADatabaseError", "Receipt", "ReceiptKey", "Storage", "TripRecord", "TripSelection", "TripStore", "utcnow",
]


class Storage:
    """The database and its stores. ``read_only`` opens an existing file for readers that must not write."""

    def __init__(self, path: str | Path, *, timeout_s: float = 30.0, read_only: bool = False,
                 idempotency_ttl_s: float = 86_400.0) -> None:
        self.db = Database(path, timeout_s=timeout_s, read_only=read_only)
        self.trips = TripStore(self.db)
        self.jobs = JobStore(self.db)
        self.models = ModelStore(self.db)
        self.idempotency = IdempotencyStore(self.db, idempotency_ttl_s)

    @property
    def path(self) -> Path:
        return self.db.path

    def ping(self) -> bool:
        """Whether the database answers."""
        return self.db.ping()

    def close(self) -> None:
        self.db.close()
