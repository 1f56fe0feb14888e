"""Stored trips as the API shows them: a summary per trip, and one trip's points and matched path as GeoJSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from app.services.errors import NotFoundError
from app.storage import TripRecord

if TYPE_CHECKING:
    from app.runtime import Runtime

__all__ = ["trip_geojson", "trip_summary"]


def trip_summary(rt: Runtime, trip: TripRecord) -> dict[str, Any]:
    """``TripSummary``: ids, sizes, and the end segments when the trip is on the service's network."""
    same = trip.network == rt.fingerprint
    return {
        "id": trip.id, "trace_id": trip.trace_id, "source": trip.source, "created_at": trip.created_at,
        "n_points": trip.n_points, "n_segments": trip.path_length,
        "origin_segment": rt.net.geojson.segment_id(trip.origin) if same else None,
        "destination_segment": rt.net.geojson.segment_id(trip.destination) if same else None,
    }


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
        "source": trip.source, "created_at": trip.created_at,
        "network": {"fingerprint": trip.network, "name": rt.net.name if same else None},
        "model_version": rt.model_version,
    }
