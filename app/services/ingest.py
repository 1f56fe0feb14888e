"""Upload -> trips: split at stops, clean, map-match, store; every trip accepted with an id or rejected with a reason.

As Ziebart et al. discard unusable trips, an upload's traces are split into trips at
stops (time gaps, dwells), trips that are too short, too noisy, too cyclic or off the
network are rejected with a reason, and the rest are map-matched. The accepted trips are
stored in one durable transaction before the answer is sent.

An upload none of whose trips is usable stores nothing and answers 422
``no_trips_accepted`` (not 201: nothing was created, and a client that only looks at
the status must not take its trips as stored). With an ``Idempotency-Key`` the answer is
stored with the trips, in the same transaction, and a retry gets it back instead of
storing the trips again.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from app.services.errors import InvalidInputError
from app.services.uploads import Document, request_hash, traces_from_documents
from app.storage import NewTrip, Receipt, ReceiptKey
from maxent_irl import DistributedError
from maxent_irl.roads import Trace, clean_trips, split_trips
from maxent_irl.roads.batch_matching import MatchFailure, match_all, match_on_worker
from maxent_irl.roads.matching import MatchResult

if TYPE_CHECKING:
    from app.runtime import Runtime

__all__ = ["UPLOAD_SCOPE", "UploadAnswer", "ingest", "upload"]

#: The endpoint whose answers are kept under an Idempotency-Key.
UPLOAD_SCOPE = "POST /v1/trajectories"
#: Rejections listed in a no_trips_accepted error (all of them are counted by reason).
_MAX_LISTED = 19
#: Traces per task when an upload is matched on a Dask cluster (seconds of work per task).
_CLUSTER_BATCH = 25


@dataclass(frozen=True)
class UploadAnswer:
    """The HTTP status and JSON body of an upload's answer; ``replayed`` for a stored answer sent again."""

    status: int
    body: dict[str, Any]
    replayed: bool = False

log = logging.getLogger(__name__)


@dataclass
class _Piece:
    """A trip cut from the upload, with the position of the trace it came from."""

    index: int
    trace: Trace


def _rejection(piece: _Piece, reason: str, message: str) -> dict[str, Any]:
    return {"trace_id": piece.trace.trace_id, "index": piece.index, "reason": reason, "message": message}


def upload(rt: Runtime, documents: list[Document], *, split: bool = True, clean: bool = True, tag: str | None = None,
           idempotency_key: str | None = None) -> UploadAnswer:
    """Read, check, split, clean, match and store an upload's documents. CPU-bound: call it off the event loop.

    With ``idempotency_key``, a request already answered under that key gets its first answer
    back (``replayed``) without anything stored again; the same key with other documents or
    options is a 422 ``idempotency_key_reused``.
    """
    key = None
    if idempotency_key is not None:
        key = ReceiptKey(UPLOAD_SCOPE, idempotency_key,
                         request_hash(documents, {"split": split, "clean": clean, "tag": tag}))
        stored = rt.storage.idempotency.get(key.scope, key.key)
        if stored is not None:
            return replay(stored, key)
    traces = traces_from_documents(rt.settings, documents)
    return ingest(rt, traces, split, clean, tag, key)


def replay(stored: Receipt, key: ReceiptKey) -> UploadAnswer:
    """The stored answer for a retry; 422 if the key was first used for another request."""
    if stored.request_hash != key.request_hash:
        raise InvalidInputError(
            f"the Idempotency-Key {key.key!r} was used for another request (other documents or options): "
            "use a new key for a new request", {"header": "Idempotency-Key"}, "idempotency_key_reused")
    return UploadAnswer(stored.status, stored.body, replayed=True)


def ingest(rt: Runtime, traces: list[Trace], split: bool, clean: bool, tag: str | None = None,
           key: ReceiptKey | None = None) -> UploadAnswer:
    """Split, clean, match and store ``traces``: 201 with the ``IngestOut`` answer, or 422 if no trip is usable.
    CPU-bound: call it off the event loop."""
    pieces = [_Piece(i, t) for i, t in enumerate(traces)]
    if split:
        pieces = [_Piece(p.index, part) for p in pieces for part in split_trips(p.trace)]
    accepted: list[tuple[_Piece, Any]] = []
    rejected: list[dict[str, Any]] = []
    margin = max(rt.settings.snap_distance_m, 250.0)
    to_match: list[_Piece] = []
    for p in pieces:
        pts = np.asarray(p.trace.points, dtype=float)
        finite = pts[np.isfinite(pts).all(axis=1)] if len(pts) else pts
        if len(pts) and not any(rt.near_network(x, y, margin) for x, y in finite):
            rejected.append(_rejection(p, "off_network",
                                       f"no point lies within {margin:g} m of network {rt.net.name}'s area"))
            continue
        if clean:
            _, rejections = clean_trips([p.trace], rt.net, min_points=rt.settings.min_trip_points,
                                        min_length_m=rt.settings.min_trip_length_m)
            if rejections:
                rejected.append(_rejection(p, rejections[0].reason, rejections[0].message))
                continue
        to_match.append(p)
    for p, result in zip(to_match, match_traces(rt, [p.trace for p in to_match]), strict=True):
        if isinstance(result, MatchFailure):
            rejected.append(_rejection(p, result.reason, result.message))
        elif len(result.states) < 2:
            rejected.append(_rejection(p, "too_short", "the matched path has a single road segment"))
        else:
            accepted.append((p, result))
    rejected.sort(key=lambda r: r["index"])  # in upload order, as the traces came
    new = [
        NewTrip(points=np.round(p.trace.points, 7).tolist(),
                times=None if p.trace.times is None else [float(t) for t in p.trace.times],
                path=[int(s) for s in result.states], trace_id=p.trace.trace_id, tag=tag)
        for p, result in accepted
    ]

    def answer(ids: list[int]) -> tuple[int, dict[str, Any]]:
        if not ids:
            return 422, _nothing_accepted(rt, rejected)
        return 201, {
            "accepted": [
                {"id": trip_id, "trace_id": p.trace.trace_id, "n_points": len(p.trace),
                 "n_segments": len(result.states), "unmatched_points": len(result.unmatched_points)}
                for trip_id, (p, result) in zip(ids, accepted, strict=True)
            ],
            "rejected": rejected,
            "network": rt.network_out(),
            "model_version": rt.model_version,
        }

    if key is None:
        ids = rt.storage.trips.insert(rt.fingerprint, new) if new else []
        status, body = answer(ids)
        out = UploadAnswer(status, body)
    else:
        receipt, fresh = rt.storage.trips.insert_once(rt.fingerprint, new, key, answer, rt.settings.idempotency_ttl_s)
        out = replay(receipt, key) if not fresh else UploadAnswer(receipt.status, receipt.body)
    log.info("ingested %d trips, rejected %d", len(accepted) if out.status == 201 else 0, len(rejected))
    return out


def match_traces(rt: Runtime, traces: list[Trace]) -> list[MatchResult | MatchFailure]:
    """Each trace's match or failure: on the Dask cluster for a large upload when there is one, else here.

    A cluster that cannot be reached or is lost costs time, not data: the traces are then
    matched here, and the upload is answered as usual.
    """
    settings = rt.settings
    if settings.dask_scheduler is not None and len(traces) >= settings.dask_min_traces:
        from maxent_irl.distributed import connect, map_batches  # Dask only when a cluster is configured

        try:
            client, _ = connect(settings.dask_scheduler, settings.dask_timeout_s)
            try:
                results = map_batches(client, match_on_worker, rt.net, traces, _CLUSTER_BATCH)
            finally:
                client.close()
            log.info("matched %d traces on the Dask cluster at %s", len(traces), settings.dask_scheduler)
            return results
        except DistributedError as exc:
            log.warning("matching %d traces here: the Dask cluster failed: %s", len(traces), exc)
    return match_all(rt.matcher, traces)


def _nothing_accepted(rt: Runtime, rejected: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``no_trips_accepted`` error body: the first rejections and a count of all of them by reason."""
    by_reason = Counter(r["reason"] for r in rejected)
    summary = ", ".join(f"{n} {reason}" for reason, n in by_reason.most_common())
    listed: list[dict[str, Any]] = rejected[:_MAX_LISTED]
    if len(rejected) > len(listed):
        listed = [*listed, {"truncated": True, "shown": len(listed), "total": len(rejected),
                            "message": f"{len(rejected) - len(listed)} more not shown"}]
    return {
        "code": "no_trips_accepted",
        "message": f"none of the {len(rejected)} trips of the upload is usable ({summary}): nothing was stored",
        "details": {"rejected": listed, "rejected_by_reason": dict(by_reason), "network": rt.network_out(),
                    "model_version": rt.model_version},
    }
