"""GeoJSON of a network's segments and paths, built in one place for the library and the service.

Coordinates are ``[lon, lat]`` rounded to 7 decimals (about 1 cm), GeoJSON's order. A
path's LineString joins its segments' polylines, sharing each joint point once.
Segment coordinates are cached per network: answers listing hundreds of segments (a
visitation map, a heat map) reuse them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from maxent_irl.roads.network import RoadNetwork

__all__ = ["NetworkGeoJSON"]

Coordinates = list[list[float]]


class NetworkGeoJSON:
    """GeoJSON pieces for one :class:`~maxent_irl.roads.RoadNetwork` (thread-safe; see ``RoadNetwork.geojson``)."""

    def __init__(self, net: RoadNetwork, precision: int = 7) -> None:
        self.net = net
        self.precision = precision
        self._coords: dict[int, Coordinates] = {}
        self._lock = threading.Lock()

    def segment_coordinates(self, state: int) -> Coordinates:
        """``[[lon, lat], ...]`` of a segment from ``u`` to ``v``."""
        s = int(state)
        coords = self._coords.get(s)
        if coords is None:
            coords = np.round(np.asarray(self.net.segment_geometry(s), dtype=float), self.precision).tolist()
            with self._lock:
                self._coords[s] = coords
        return coords

    def segment_id(self, state: int) -> list[int]:
        """``[u, v, key]`` of a segment (JSON has no tuples); ``UnknownSegmentError`` for a bad state."""
        s = int(state)
        if not 0 <= s < self.net.n_states:
            self.net.segment_id(s)  # raises, naming the state
        u, v, k = self.net.segment_ids[s]
        return [int(u), int(v), int(k)]

    def segment_ids(self, states: Sequence[int] | np.ndarray) -> list[list[int]]:
        return [self.segment_id(int(s)) for s in states]

    def point(self, lonlat: Sequence[float] | np.ndarray) -> dict[str, Any]:
        """A Point geometry."""
        return {"type": "Point", "coordinates": [round(float(lonlat[0]), self.precision),
                                                 round(float(lonlat[1]), self.precision)]}

    def segment_midpoint(self, state: int) -> list[float]:
        """``[lon, lat]`` halfway along a segment."""
        x, y = self.net.segment_midpoints[int(state)]
        return [round(float(x), self.precision), round(float(y), self.precision)]

    def path_coordinates(self, states: Sequence[int] | np.ndarray) -> Coordinates:
        """One polyline through consecutive segments (at least two points, as a LineString needs)."""
        coords: Coordinates = []
        for s in states:
            seg = self.segment_coordinates(int(s))
            coords.extend(seg[1:] if coords and seg and coords[-1] == seg[0] else seg)
        if len(coords) == 1:
            coords = coords * 2
        return coords

    def path_geometry(self, states: Sequence[int] | np.ndarray) -> dict[str, Any]:
        """A path as one LineString geometry."""
        return {"type": "LineString", "coordinates": self.path_coordinates(states)}

    def path_feature(self, states: Sequence[int] | np.ndarray, properties: dict[str, Any] | None = None
                     ) -> dict[str, Any]:
        """A path as a Feature with ``n_segments``, ``segments`` ([u, v, key] each) and ``length_m``."""
        path = np.asarray(states, dtype=np.int64)
        props = {"n_segments": int(path.size), "segments": self.segment_ids(path),
                 "length_m": round(float(self.net.segment_length_m[path].sum()), 1)}
        props.update(properties or {})
        return {"type": "Feature", "geometry": self.path_geometry(path), "properties": props}

    def segment_feature(self, state: int, properties: dict[str, Any] | None = None) -> dict[str, Any]:
        """One segment as a Feature with its ``segment`` id and ``state``."""
        props = {"segment": self.segment_id(state), "state": int(state), **(properties or {})}
        return {"type": "Feature", "geometry": {"type": "LineString", "coordinates": self.segment_coordinates(state)},
                "properties": props}
