"""Stored trips as the API shows them: a summary per trip, and one trip's points and matched path as GeoJSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from app.services.errors import NotFoundError
from app.storage import TripRecord
from maxent_irl.roads import UnknownSegmentError

if TYPE_CHECKING:
    from app.runtime import Runtime

__all__ = ["delete_tagged", "delete_trip", "trip_geojson", "trip_summary"]


def trip_summary(rt: Runtime, trip: TripRecord) -> dict[str, Any]:
    """``TripSummary``: ids, sizes, and the end segments when the trip is on the service's network."""
    same = trip.network == rt.fingerprint
    return {
        "id": trip.id, "trace_id": trip.trace_id, "source": trip.source, "created_at": trip.created_at,
        "n_points": trip.n_points, "n_segments": trip.path_length, "tag": trip.tag,
        "start_time": trip.start_time,
        "origin_segment": _segment(rt, trip.origin) if same else None,
        "destination_segment": _segment(rt, trip.destination) if same else None,
    }


def _segment(rt: Runtime, state: int) -> list[int] | None:
    """A stored state's segment id, or None if the network does not have it (a damaged or foreign record)."""
    try:
        return rt.net.geojson.segment_id(state)
    except UnknownSegmentError:
        return None


def trip_geojson(rt: Runtime, trip_id: int) -> dict[str, Any]:
    """Two features: ``kind: gps`` (the raw points, with ``times``) and ``kind: matched`` (the path)."""
    trip = rt.storage.trips.get(trip_id)
    if trip is None:
        raise NotFoundError.of("trajectory", trip_id)
    features: list[dict[str, Any]] = [{
        "type": "Feature", "geometry": {"type": "LineString", "coordinates": trip.points},
        "properties": {"kind": "gps", "times": trip.times, "n_points": trip.n_points},
    }]
    same = trip.network == rt.fingerprint
    if same:
        features.append(rt.net.geojson.path_feature(np.asarray(trip.path, dtype=np.int64), {"kind": "matched"}))
    return {
        "type": "FeatureCollection", "features": features, "id": trip.id, "trace_id": trip.trace_id,
        "source": trip.source, "created_at": trip.created_at, "tag": trip.tag,
        "network": {"fingerprint": trip.network, "name": rt.net.name if same else None},
        "model_version": rt.model_version,
    }


def delete_trip(rt: Runtime, trip_id: int) -> None:
    """Delete a stored trip: the next training job does without it (models already trained keep their weights)."""
    if not rt.storage.trips.delete(trip_id):
        raise NotFoundError.of("trajectory", trip_id)


def delete_tagged(rt: Runtime, tag: str) -> int:
    """Delete every trip of the service's network uploaded with ``tag``; how many."""
    return rt.storage.trips.delete_tagged(rt.fingerprint, tag)
