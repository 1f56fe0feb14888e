"""Exception types of :mod:`maxent_irl.roads`.

Bad input (a malformed GPS file, a trace that cannot be matched, an unknown segment)
raises a ``ValueError`` (or ``KeyError``) subclass so generic handlers keep working,
while the specific type, and the machine-readable ``reason`` where there is one, say
what went wrong. Everything derives from :class:`RoadsError`.
"""

from __future__ import annotations

__all__ = [
    "GPSFormatError",
    "GPSLimitError",
    "InvalidTraceError",
    "MapMatchingError",
    "NetworkSourceError",
    "RoadsError",
    "UnknownSegmentError",
]


class RoadsError(Exception):
    """Base class of every error raised on purpose by :mod:`maxent_irl.roads`."""


class NetworkSourceError(RoadsError, ValueError):
    """A road-network source cannot be loaded (unknown format, no drivable roads, offline...)."""


class GPSFormatError(RoadsError, ValueError):
    """A GPX / GeoJSON / CSV document is malformed or holds invalid coordinates or times."""


class GPSLimitError(GPSFormatError):
    """A GPS document is over a limit its reader was given (points, trip id length, line length...).

    Raised as soon as the limit is passed, before the rest of the document is read;
    ``limit`` names the limit (e.g. ``"max_points"``) and ``value`` its value.
    """

    def __init__(self, message: str, limit: str, value: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.value = value


class _ReasonError(RoadsError, ValueError):
    """An error that carries a machine-readable ``reason`` (same vocabulary as TripRejection)."""

    def __init__(self, message: str, reason: str, trace_id: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.trace_id = trace_id


class InvalidTraceError(_ReasonError):
    """A trace cannot be used as it is: empty, NaN / out-of-range coordinates, time running backwards, too long.

    ``reason`` is one of ``"too_short"``, ``"invalid_coordinates"``,
    ``"non_monotonic_time"``, ``"too_many_points"``.
    """


class MapMatchingError(_ReasonError):
    """A valid trace could not be matched to the network; ``reason`` is e.g. ``"off_network"``."""


class UnknownSegmentError(RoadsError, KeyError):
    """A segment id ``(u, v, key)`` is not a state of the network (absent, or outside the routable part)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
