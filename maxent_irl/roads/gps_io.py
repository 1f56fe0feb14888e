"""Reading GPS traces from GPX, GeoJSON and CSV. Coordinates are ``[lon, lat]`` (WGS84).

Readers are strict about the document: anything that is not a usable WGS84 position
(unparsable, NaN, out of range) or a readable time raises :class:`GPSFormatError`
naming the first offending point, rather than silently dropping it. Times become
float seconds since the Unix epoch (timestamps without a zone are taken as UTC);
a trace has times only if *every* point has one.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import re
import warnings
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gpxpy
import gpxpy.gpx
import numpy as np
import pandas as pd

from maxent_irl.roads.exceptions import GPSFormatError
from maxent_irl.roads.geo import valid_lonlat
from maxent_irl.roads.trace import Trace

__all__ = ["read_csv", "read_geojson", "read_gpx", "traces_to_geojson"]

_TIME_KEYS = ("times", "timestamps", "coordTimes", "time", "timestamp")
_ID_KEYS = ("trip_id", "trace_id", "id", "name")
_XML_DECL = re.compile(r"""^(\s*<\?xml\b[^>]*?)\s+encoding\s*=\s*(["'])([^"']*)\2""")
_PATH_HINT = "; a str is read as the document itself: pass a file path as pathlib.Path"


# ---------------------------------------------------------------------- GPX
def read_gpx(source: str | bytes | Path) -> list[Trace]:
    """One :class:`Trace` per GPX track segment (and per route); waypoints only if there is nothing else.

    Ids: the track / route name (or ``track<i>`` / ``route<i>``), with ``/<j>`` for
    the j-th segment of a multi-segment track; made unique with ``#<k>`` if needed.
    """
    text = _read_xml_text(source)
    try:
        gpx = gpxpy.parse(text)
    except Exception as exc:  # gpxpy raises GPXXMLSyntaxException, GPXException, ValueError...
        raise GPSFormatError(f"not a valid GPX document: {exc}{_path_hint(source)}") from exc
    # (id, points, where the points sit in the document: see _gpx_time_texts)
    groups: list[tuple[str, tuple[list[Any], tuple[Any, ...]]]] = []
    for i, trk in enumerate(gpx.tracks):
        base = (trk.name or "").strip() or f"track{i}"
        segs = [(j, s) for j, s in enumerate(trk.segments) if s.points]
        for k, (j, seg) in enumerate(segs):
            groups.append((base if len(segs) == 1 else f"{base}/{k}", (seg.points, ("trk", i, j))))
    for i, rte in enumerate(gpx.routes):
        if rte.points:
            groups.append(((rte.name or "").strip() or f"route{i}", (rte.points, ("rte", i))))
    if not groups and gpx.waypoints:
        groups.append(("waypoints", (gpx.waypoints, ("wpt",))))
    if not groups:
        raise GPSFormatError("the GPX document has no track, route or waypoint points")
    # gpxpy turns a time it cannot read into None: look at the text of those (rare) points
    untimed = any(p.time is None for _, (pts, _) in groups for p in pts)
    raw_times = _gpx_time_texts(text) if untimed and "time>" in text else {}
    traces = []
    for tid, (pts, where) in _unique_ids(groups):
        lonlat = np.array([[p.longitude, p.latitude] for p in pts], dtype=float)
        _check_lonlat(lonlat, f"GPX trace {tid!r} point")
        stamps = [p.time for p in pts]
        raw = raw_times.get(where)
        if raw is not None and len(raw) == len(stamps):
            bad = next((k for k, (t, r) in enumerate(zip(stamps, raw, strict=True)) if t is None and r), None)
            if bad is not None:
                raise GPSFormatError(f"GPX trace {tid!r}, point {bad}: unreadable time {raw[bad]!r} (not ISO 8601)")
        times = None
        if all(t is not None for t in stamps):
            times = np.array([_dt_seconds(t) for t in stamps])
        elif any(t is not None for t in stamps):
            missing = next(i for i, t in enumerate(stamps) if t is None)
            raise GPSFormatError(f"GPX trace {tid!r}: point {missing} has no time while others do")
        traces.append(Trace(lonlat, times, tid))
    return traces


# ---------------------------------------------------------------------- GeoJSON
def read_geojson(source: dict | str | bytes | Path) -> list[Trace]:
    """Traces from a GeoJSON object or text.

    Accepted: a FeatureCollection, a Feature or a bare geometry. ``LineString`` and
    ``MultiPoint`` give one trace, ``MultiLineString`` one per line; ``Point``
    features are gathered, in order, into one trace per ``trip_id`` / ``trace_id``
    property. Times, in the first place found: a 4th coordinate ``[lon, lat, ele,
    time]``; a Feature property ``times`` / ``timestamps`` / ``coordTimes`` (a list,
    one per point; for MultiLineString one list per line, or one flat list over all
    the points, line after line) or ``coordinateProperties.times``; for Point features
    a ``time`` / ``timestamp`` property. A time is epoch seconds or an ISO 8601 string.
    """
    obj = source
    if isinstance(source, str | bytes | Path):
        text = _read_text(source, "GeoJSON")
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GPSFormatError(f"not valid JSON: {exc}{_path_hint(source)}") from exc
        except RecursionError as exc:  # the C decoder recurses per nesting level
            raise GPSFormatError("not valid GeoJSON: JSON nested too deeply") from exc
    if not isinstance(obj, dict) or "type" not in obj:
        raise GPSFormatError("GeoJSON must be an object with a 'type'")
    kind = obj["type"]
    if kind == "FeatureCollection":
        feats = obj.get("features")
        if not isinstance(feats, list):
            raise GPSFormatError("FeatureCollection without a 'features' list")
    elif kind == "Feature":
        feats = [obj]
    else:
        feats = [{"type": "Feature", "geometry": obj, "properties": {}}]
    groups: list[tuple[str, np.ndarray, np.ndarray | None]] = []
    point_groups: dict[str, tuple[list[list[float]], list[Any]]] = {}
    for i, f in enumerate(feats):
        if not isinstance(f, dict) or not isinstance(f.get("geometry"), dict):
            raise GPSFormatError(f"feature {i} has no geometry object")
        props = f.get("properties") or {}
        if not isinstance(props, dict):
            raise GPSFormatError(f"feature {i}: properties must be an object")
        geom = f["geometry"]
        gtype, coords = geom.get("type"), geom.get("coordinates")
        fid = _feature_id(f, props, i)
        if gtype == "Point":
            key = str(props.get("trip_id", props.get("trace_id", "points")))
            pts, ts = point_groups.setdefault(key, ([], []))
            pts.append(coords)
            ts.append(next((props[k] for k in ("time", "timestamp", "times") if k in props), None))
        elif gtype in ("LineString", "MultiPoint"):
            groups.append(_positions_to_trace(coords, _prop_times(props, f"feature {i}"), fid, f"feature {i}"))
        elif gtype == "MultiLineString":
            if not isinstance(coords, list):
                raise GPSFormatError(f"feature {i}: MultiLineString coordinates must be a list")
            per_line = _split_line_times(_prop_times(props, f"feature {i}"), coords, f"feature {i}")
            for j, (line, t) in enumerate(zip(coords, per_line, strict=True)):
                groups.append(_positions_to_trace(line, t, f"{fid}/{j}", f"feature {i} line {j}"))
        else:
            raise GPSFormatError(f"feature {i}: unsupported geometry {gtype!r} (use LineString, MultiPoint or Point)")
    for key, (pts, ts) in point_groups.items():
        times = None if all(t is None for t in ts) else ts
        groups.append(_positions_to_trace(pts, times, key, f"Point features of {key!r}"))
    if not groups:
        raise GPSFormatError("the GeoJSON holds no trace")
    return [Trace(p, t, tid) for tid, (_, p, t) in _unique_ids([(g[0], g) for g in groups])]


def traces_to_geojson(traces: Sequence[Trace]) -> dict[str, Any]:
    """A FeatureCollection that :func:`read_geojson` reads back into the same traces."""
    return {"type": "FeatureCollection", "features": [t.to_geojson() for t in traces]}


def _feature_id(f: dict[str, Any], props: dict[str, Any], i: int) -> str:
    for k in _ID_KEYS:
        if props.get(k) not in (None, ""):
            return str(props[k])
    return str(f["id"]) if f.get("id") not in (None, "") else f"feature{i}"


def _prop_times(props: dict[str, Any], where: str) -> list[Any] | None:
    """The first time list in the properties; anything else there is an error, never silently no times."""
    cp = props.get("coordinateProperties")
    sources = [(k, props.get(k)) for k in _TIME_KEYS[:3]]
    if isinstance(cp, dict):
        sources.append(("coordinateProperties.times", cp.get("times")))
    for key, t in sources:
        if isinstance(t, list):
            return t
        if t is not None:
            raise GPSFormatError(f"{where}: property {key!r} must be a list of times, got {type(t).__name__}")
    return None


def _split_line_times(times: list[Any] | None, lines: list[Any], where: str) -> list[list[Any] | None]:
    """Per-line times of a MultiLineString: a list per line, or one flat list cut at the line lengths."""
    if times is None:
        return [None] * len(lines)
    nested = [isinstance(t, list) for t in times]
    if all(nested) and times:
        if len(times) != len(lines):
            raise GPSFormatError(f"{where}: {len(times)} lists of times for {len(lines)} lines")
        return times
    if any(nested):
        raise GPSFormatError(f"{where}: times must be one list per line or one flat list, not a mix")
    sizes = [len(line) if isinstance(line, list) else 0 for line in lines]
    if len(times) != sum(sizes):
        raise GPSFormatError(
            f"{where}: {len(times)} times for {sum(sizes)} positions in {len(lines)} lines "
            "(give one list per line, or one time per position)"
        )
    cuts = np.cumsum([0, *sizes]).tolist()
    return [times[a:b] for a, b in itertools.pairwise(cuts)]


def _positions_to_trace(
    coords: Any, times: list[Any] | None, tid: str, where: str
) -> tuple[str, np.ndarray, np.ndarray | None]:
    if not isinstance(coords, list) or not coords:
        raise GPSFormatError(f"{where}: coordinates must be a non-empty list of [lon, lat] positions")
    bad = next((k for k, c in enumerate(coords) if not (isinstance(c, list | tuple) and 2 <= len(c) <= 4)), None)
    if bad is not None:
        raise GPSFormatError(f"{where}: position {bad} is not [lon, lat(, ele(, time))]: {coords[bad]!r}")
    try:
        lonlat = np.array([[c[0], c[1]] for c in coords], dtype=float)
    except (TypeError, ValueError) as exc:
        raise GPSFormatError(f"{where}: coordinates must be numbers ({exc})") from exc
    _check_lonlat(lonlat, f"{where} position")
    if times is None and all(len(c) == 4 for c in coords):
        times = [c[3] for c in coords]
    t = None
    if times is not None:
        if len(times) != len(coords):
            raise GPSFormatError(f"{where}: {len(times)} times for {len(coords)} positions")
        t = _parse_times(times, where)
    return tid, lonlat, t


# ---------------------------------------------------------------------- CSV
_CSV_COLUMNS = {
    "trip_id": ("trip_id", "trace_id", "trip", "id"),
    "lon": ("lon", "lng", "longitude", "x"),
    "lat": ("lat", "latitude", "y"),
    "timestamp": ("timestamp", "time", "datetime", "t"),
}


def read_csv(source: str | bytes | Path) -> list[Trace]:
    """Traces from CSV with a header: ``trip_id, lon, lat, timestamp`` (any order).

    ``trip_id`` and ``timestamp`` are optional (one trace ``"trace"``; no times);
    aliases such as ``lng`` / ``longitude`` / ``latitude`` / ``time`` are accepted.
    Rows are grouped by trip in order of first appearance and kept in file order
    (a backwards timestamp is reported later, not sorted away). Timestamps are epoch
    seconds or ISO 8601; a trip has times only if none of its timestamps is empty.
    """
    text = _read_text(source, "CSV")
    try:
        # index_col=False: with a trailing comma on the data rows (one field more than the
        # header) pandas would otherwise take the first column as the index and shift the rest
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True,
                             index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise GPSFormatError(f"not a valid CSV document: {exc}") from exc
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        _check_csv_row_lengths(text)  # pandas dropped fields beyond the header's: only empty ones are fine
    cols = {c.strip().lower(): c for c in df.columns}
    found = {k: next((cols[a] for a in aliases if a in cols), None) for k, aliases in _CSV_COLUMNS.items()}
    if found["lon"] is None or found["lat"] is None:
        raise GPSFormatError(f"CSV needs 'lon' and 'lat' columns (header: {list(df.columns)}){_path_hint(source)}")
    if len(df) == 0:
        raise GPSFormatError("the CSV has a header but no rows")
    lon = pd.to_numeric(df[found["lon"]].str.strip(), errors="coerce").to_numpy(float)
    lat = pd.to_numeric(df[found["lat"]].str.strip(), errors="coerce").to_numpy(float)
    lonlat = np.column_stack([lon, lat])
    ok = valid_lonlat(lonlat)
    if not ok.all():
        r = int(np.flatnonzero(~ok)[0])
        raise GPSFormatError(
            f"CSV line {r + 2}: invalid position lon={df[found['lon']].iloc[r]!r} lat={df[found['lat']].iloc[r]!r} "
            f"({int((~ok).sum())} bad row(s))"
        )
    ids = df[found["trip_id"]].str.strip().to_numpy(str) if found["trip_id"] else np.full(len(df), "trace")
    raw_t = df[found["timestamp"]].str.strip() if found["timestamp"] else None
    traces = []
    for tid, idx in pd.Series(np.arange(len(df))).groupby(ids, sort=False):
        rows = idx.to_numpy()
        times = None
        if raw_t is not None:
            vals = raw_t.iloc[rows]
            if (vals != "").all():
                times = _parse_times(list(vals), f"CSV trip {tid!r}", first_line=int(rows[0]) + 2)
        traces.append(Trace(lonlat[rows], times, str(tid)))
    return traces


def _check_csv_row_lengths(text: str) -> None:
    """GPSFormatError for the first row with a non-empty field beyond the header's columns."""
    rows = csv.reader(io.StringIO(text), skipinitialspace=True)
    width = len(next(rows, []))
    for row in rows:
        if len(row) > width and any(f.strip() for f in row[width:]):
            raise GPSFormatError(
                f"CSV line {rows.line_num}: {len(row)} fields but the header has {width} columns ({row!r})"
            )


# ---------------------------------------------------------------------- shared
def _read_xml_text(source: str | bytes | Path) -> str:
    """GPX text; bytes are decoded as their BOM or XML declaration says (UTF-8 if neither, as XML specifies).

    The declaration is then dropped from the text, so the XML parser (the same as for
    any other document: no external entities, expat's entity-expansion limits) sees
    text that agrees with it.
    """
    source = _read_file(source, "GPX")
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
        m = None
        if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
            encoding = "utf-32"
        elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            encoding = "utf-16"
        elif data.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
        else:
            m = _XML_DECL.match(data[:1024].decode("ascii", errors="replace"))
            encoding = m.group(3).strip() if m else "UTF-8"
        try:
            codec = codecs.lookup(encoding)
        except LookupError as exc:
            raise GPSFormatError(f"GPX declares an unknown encoding {encoding!r}") from exc
        if codec.name == "utf-8":
            codec = codecs.lookup("utf-8-sig")
        try:
            source = data.decode(codec.name)
        except UnicodeDecodeError as exc:
            said = "as its XML declaration says" if m else "the default without an encoding declaration"
            raise GPSFormatError(f"GPX is not {encoding} text ({said}): {exc}") from exc
        source = _XML_DECL.sub(r"\1", source, count=1)
    return _read_text(source, "GPX")


def _gpx_time_texts(text: str) -> dict[tuple[Any, ...], list[str | None]]:
    """The ``<time>`` text of every point, keyed like the groups of :func:`read_gpx` (``("trk", i, j)``...)."""
    try:
        root = ElementTree.fromstring(text)  # what gpxpy parsed a moment ago, with the same parser
    except ElementTree.ParseError:
        return {}

    def local(tag: Any) -> str:
        return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""

    def times(points: list[ElementTree.Element]) -> list[str | None]:
        return [next(((c.text or "").strip() for c in p if local(c.tag) == "time"), None) for p in points]

    def children(el: ElementTree.Element, name: str) -> list[ElementTree.Element]:
        return [c for c in el if local(c.tag) == name]

    out: dict[tuple[Any, ...], list[str | None]] = {}
    for i, trk in enumerate(children(root, "trk")):
        for j, seg in enumerate(children(trk, "trkseg")):
            out["trk", i, j] = times(children(seg, "trkpt"))
    for i, rte in enumerate(children(root, "rte")):
        out["rte", i] = times(children(rte, "rtept"))
    out["wpt",] = times(children(root, "wpt"))
    return out


def _path_hint(source: object) -> str:
    """A hint for a str that looks like a file name rather than a document."""
    if not isinstance(source, str) or len(source) >= 4096:
        return ""
    text = source.strip()
    return _PATH_HINT if "\n" not in text and not text.startswith(("<", "{", "[")) else ""


def _read_file(source: str | bytes | Path, what: str) -> str | bytes:
    """A ``Path``'s bytes (``GPSFormatError`` if it cannot be read); text and bytes as given."""
    if not isinstance(source, Path):
        return source
    try:
        return source.read_bytes()
    except OSError as exc:
        raise GPSFormatError(f"cannot read {what} file {source}: {exc}") from exc


def _read_text(source: str | bytes | Path, what: str) -> str:
    source = _read_file(source, what)
    if isinstance(source, bytes | bytearray):
        try:
            return bytes(source).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise GPSFormatError(f"{what} is not UTF-8 text: {exc}") from exc
    if not isinstance(source, str):
        raise GPSFormatError(f"{what} input must be text, bytes or a Path, got {type(source).__name__}")
    if not source.strip():
        raise GPSFormatError(f"empty {what} document")
    return source


def _check_lonlat(lonlat: np.ndarray, where: str) -> None:
    ok = valid_lonlat(lonlat)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise GPSFormatError(f"{where} {i}: invalid [lon, lat] {lonlat[i].tolist()} (NaN or out of range)")


def _dt_seconds(t: datetime) -> float:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.timestamp()


def _parse_times(values: Sequence[Any], where: str, first_line: int | None = None) -> np.ndarray:
    """Epoch seconds from numbers or ISO 8601 strings; GPSFormatError naming the first bad one."""
    out = np.empty(len(values))
    for i, v in enumerate(values):
        try:
            if isinstance(v, bool):
                raise ValueError("a boolean is not a time")
            if isinstance(v, int | float):
                out[i] = float(v)
            else:
                s = str(v).strip()
                try:
                    out[i] = float(s)
                except ValueError:
                    out[i] = _dt_seconds(datetime.fromisoformat(s.replace("Z", "+00:00")))
            if not np.isfinite(out[i]):
                raise ValueError("not finite")
        except (TypeError, ValueError) as exc:
            loc = f"line {first_line + i}" if first_line is not None else f"point {i}"
            raise GPSFormatError(f"{where}, {loc}: unreadable time {v!r} ({exc})") from exc
    return out


def _unique_ids(groups: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    seen: dict[str, int] = {}
    out = []
    for tid, payload in groups:
        n = seen.get(tid, 0)
        seen[tid] = n + 1
        out.append((tid if n == 0 else f"{tid}#{n}", payload))
    return out
