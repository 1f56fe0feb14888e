"""What the stores read and write: plain, immutable records (no SQL rows leave :mod:`app.storage`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["FINAL_STATUSES", "JOB_STATUSES", "JobRecord", "ModelRecord", "NewTrip", "TripRecord", "TripSelection",
           "utcnow"]

#: Job statuses; all but the first two are final.
QUEUED, RUNNING, SUCCEEDED, FAILED, INTERRUPTED, CANCELLED = (
    "queued", "running", "succeeded", "failed", "interrupted", "cancelled")
JOB_STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, INTERRUPTED, CANCELLED)
FINAL_STATUSES = frozenset({SUCCEEDED, FAILED, INTERRUPTED, CANCELLED})


def utcnow() -> str:
    """Now, as ISO 8601 UTC with milliseconds (``2026-12-02T11:39:18.123Z``): sortable as text."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class NewTrip:
    """A map-matched trip ready to be stored."""

    points: list[list[float]]
    path: list[int]
    times: list[float] | None = None
    trace_id: str | None = None
    source: str = "upload"
    tag: str | None = None


@dataclass(frozen=True)
class TripSelection:
    """Which stored trips a training job uses: all criteria given must hold (``None`` = any).

    ``ids``: these trips; ``tags``: trips uploaded with one of these tags; ``since`` / ``until``:
    trips that started in ``[since, until)`` (UNIX seconds of the first GPS fix, or of the
    upload for trips without times).
    """

    ids: tuple[int, ...] | None = None
    tags: tuple[str, ...] | None = None
    since: float | None = None
    until: float | None = None


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
    tag: str | None = None
    start_time: float | None = None
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
