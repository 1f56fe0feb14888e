"""Parsing query-string parameters the framework cannot type on its own (``lon,lat`` pairs)."""

from __future__ import annotations

import math
import re

from app.services.errors import TooLargeError, field_error

__all__ = ["BBOX_PATTERN", "LONLAT_LIST_PATTERN", "LONLAT_PATTERN", "parse_bbox", "parse_lonlat", "parse_lonlat_list"]

_NUMBER = r"-?\d+(?:\.\d+)?"
_LON = r"-?(?:180(?:\.0+)?|(?:1[0-7]\d|\d{1,2})(?:\.\d+)?)"
_LAT = r"-?(?:90(?:\.0+)?|[0-8]?\d(?:\.\d+)?)"
_PAIR = rf"{_LON},{_LAT}(?:,{_NUMBER})?"
#: A ``lon,lat`` (or ``lon,lat,alt``) query value, as the OpenAPI document states it: plain decimals in range.
LONLAT_PATTERN = rf"^{_PAIR}$"
#: ``lon,lat;lon,lat;...`` (a trailing ``;`` allowed).
LONLAT_LIST_PATTERN = rf"^{_PAIR}(?:;{_PAIR})*;?$"
#: A box ``lon,lat,lon,lat``: two opposite corners, in either order.
BBOX_PATTERN = rf"^{_LON},{_LAT},{_LON},{_LAT}$"
_PAIR_RE = re.compile(_PAIR)


def parse_lonlat(text: str, field: str) -> tuple[float, float]:
    """``"lon,lat"`` (or ``"lon,lat,alt"``) -> ``(lon, lat)``; a 422 ``validation_error`` naming ``field`` otherwise."""
    parts = text.strip().split(",")
    if len(parts) not in (2, 3):
        raise field_error(field, f"expected 'lon,lat', got {text[:100]!r}")
    if not _PAIR_RE.fullmatch(text):  # what the OpenAPI document promises: no '1e3', '+1', 'inf'
        raise field_error(field, f"expected plain decimal numbers 'lon,lat' (or 'lon,lat,alt') within range, "
                                 f"got {text[:100]!r}")
    try:
        lon, lat, *_alt = (float(p) for p in parts)  # an altitude may follow; it is checked, then ignored
    except ValueError:
        raise field_error(field, f"expected numbers 'lon,lat' (or 'lon,lat,alt'), got {text[:100]!r}") from None
    if not (math.isfinite(lon) and math.isfinite(lat)) or not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise field_error(field, f"longitude must be in [-180, 180] and latitude in [-90, 90], got {text[:100]!r}")
    return lon, lat


def parse_lonlat_list(text: str, field: str, max_points: int) -> list[tuple[float, float]]:
    """``"lon,lat;lon,lat;..."`` -> list (413 over ``max_points``)."""
    items = [t for t in text.split(";") if t.strip()]
    if not items:
        raise field_error(field, "at least one 'lon,lat' pair is required")
    if len(items) > max_points:
        raise TooLargeError(f"{len(items)} points in the query; the limit is {max_points}",
                            {"max_query_points": max_points})
    return [parse_lonlat(t, f"{field}[{i}]") for i, t in enumerate(items)]


def parse_bbox(raw: str | None, field: str = "query.bbox") -> tuple[float, float, float, float] | None:
    """``'lon,lat,lon,lat'`` (two opposite corners) -> ``(min_lon, min_lat, max_lon, max_lat)``; None if absent."""
    if raw is None or not raw.strip():
        return None
    if not re.fullmatch(BBOX_PATTERN, raw.strip()):
        raise field_error(field, f"expected 'lon,lat,lon,lat' (two corners, degrees in range), got {raw[:80]!r}")
    x0, y0, x1, y1 = (float(x) for x in raw.split(","))
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)
