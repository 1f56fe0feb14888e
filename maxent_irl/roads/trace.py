"""A GPS trace: ``(n, 2)`` lon/lat points (WGS84), optional per-point times, an id.

A :class:`Trace` may hold bad data (NaN or out-of-range coordinates, time running
backwards) so that :func:`~maxent_irl.roads.trips.clean_trips` can *report* it as a
:class:`TripRejection`; :meth:`Trace.validate` turns the first problem into an
:class:`~maxent_irl.roads.exceptions.InvalidTraceError` with the same ``reason``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from maxent_irl.roads.exceptions import InvalidTraceError
from maxent_irl.roads.geo import haversine_m, valid_lonlat

__all__ = ["REJECTION_REASONS", "Trace", "TripRejection"]

#: Machine-readable reasons, shared by TripRejection, InvalidTraceError and MapMatchingError.
REJECTION_REASONS: tuple[str, ...] = (
    "too_short",  # fewer points / metres than the minimum (an empty trace included)
    "too_cyclic",  # driven length far above the start-end distance (round trip, loops)
    "too_noisy",  # too many impossible speeds or out-and-back spikes
    "off_network",  # (most) points far from every routable segment
    "too_many_points",  # above the per-trace limit: split it first (split_trips(max_points=...))
    "invalid_coordinates",  # NaN / inf / |lon| > 180 / |lat| > 90
    "invalid_times",  # NaN times or times of the wrong length
    "non_monotonic_time",  # a timestamp earlier than the one before it
)


@dataclass(frozen=True)
class TripRejection:
    """Why a trace was not used: ``reason`` is one of :data:`REJECTION_REASONS`, ``message`` says it for humans."""

    trace_id: str
    reason: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Trace:
    """GPS points of one vehicle: ``points[i] = (lon, lat)``, ``times[i]`` in seconds (epoch or relative) or None."""

    points: np.ndarray
    times: np.ndarray | None = None
    trace_id: str = "trace"

    def __post_init__(self) -> None:
        try:
            pts = np.array(self.points, dtype=float)
        except (TypeError, ValueError) as exc:
            msg = f"points must be numbers: {exc}"
            raise InvalidTraceError(msg, "invalid_coordinates", str(self.trace_id)) from exc
        if pts.size == 0:
            pts = pts.reshape(0, 2)
        if pts.ndim != 2 or pts.shape[1] != 2:
            msg = f"points must have shape (n, 2) = [lon, lat], got {pts.shape}"
            raise InvalidTraceError(msg, "invalid_coordinates", str(self.trace_id))
        pts.setflags(write=False)
        object.__setattr__(self, "points", pts)
        object.__setattr__(self, "trace_id", str(self.trace_id))
        if self.times is not None:
            try:
                t = np.array(self.times, dtype=float).reshape(-1)
            except (TypeError, ValueError) as exc:
                msg = f"times must be seconds (numbers): {exc}"
                raise InvalidTraceError(msg, "invalid_times", self.trace_id) from exc
            if t.shape[0] != pts.shape[0]:
                raise InvalidTraceError(
                    f"{t.shape[0]} times for {pts.shape[0]} points", "invalid_times", self.trace_id
                )
            t.setflags(write=False)
            object.__setattr__(self, "times", t)

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def n_points(self) -> int:
        return len(self)

    @property
    def has_times(self) -> bool:
        return self.times is not None

    def step_distances_m(self) -> np.ndarray:
        """``(n-1,)`` great-circle distances between consecutive points."""
        return haversine_m(self.points[:-1], self.points[1:])

    @property
    def length_m(self) -> float:
        return float(self.step_distances_m().sum()) if len(self) > 1 else 0.0

    def problem(self, max_points: int | None = None, min_points: int = 1) -> tuple[str, str] | None:
        """The first ``(reason, message)`` that makes the trace unusable, or None."""
        n = len(self)
        if n < min_points:
            return "too_short", f"{n} point(s), at least {min_points} needed"
        ok = valid_lonlat(self.points)
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            return "invalid_coordinates", (
                f"{int((~ok).sum())} invalid point(s) (NaN or outside lon [-180, 180] / lat [-90, 90]); "
                f"first: index {i} = {self.points[i].tolist()}"
            )
        if max_points is not None and n > max_points:
            return "too_many_points", f"{n} points, more than the limit of {max_points}: split the trace first"
        if self.times is not None:
            if not np.isfinite(self.times).all():
                return "invalid_times", f"NaN/inf time at index {int(np.flatnonzero(~np.isfinite(self.times))[0])}"
            back = np.flatnonzero(np.diff(self.times) < 0)
            if back.size:
                i = int(back[0])
                return "non_monotonic_time", (
                    f"time goes backwards at index {i + 1} ({self.times[i + 1]:g} < {self.times[i]:g}); "
                    f"{back.size} such step(s)"
                )
        return None

    def validate(self, max_points: int | None = None, min_points: int = 1) -> Trace:
        """Return ``self`` or raise :class:`InvalidTraceError` for the first problem found."""
        p = self.problem(max_points=max_points, min_points=min_points)
        if p is not None:
            raise InvalidTraceError(f"trace {self.trace_id!r}: {p[1]}", p[0], self.trace_id)
        return self

    def select(self, index: np.ndarray | slice, trace_id: str | None = None) -> Trace:
        """A new trace with the selected points (and times)."""
        return Trace(
            self.points[index],
            None if self.times is None else self.times[index],
            self.trace_id if trace_id is None else trace_id,
        )

    def to_geojson(self) -> dict[str, Any]:
        """GeoJSON Feature (LineString, or Point for one point) with ``times`` and ``trace_id`` properties."""
        coords = self.points.tolist()
        if len(coords) == 1:
            geom: dict[str, Any] = {"type": "Point", "coordinates": coords[0]}
        else:
            geom = {"type": "LineString", "coordinates": coords}
        props: dict[str, Any] = {"trace_id": self.trace_id}
        if self.times is not None:
            props["times"] = self.times.tolist()
        return {"type": "Feature", "geometry": geom, "properties": props}
