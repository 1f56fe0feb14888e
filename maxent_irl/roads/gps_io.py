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
import xml.parsers.expat as expat
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from maxent_irl.roads.exceptions import GPSFormatError, GPSLimitError
from maxent_irl.roads.geo import valid_lonlat
from maxent_irl.roads.trace import Trace

__all__ = ["read_csv", "read_geojson", "read_gpx", "traces_to_geojson"]

_TIME_KEYS = ("times", "timestamps", "coordTimes", "time", "timestamp")
_ID_KEYS = ("trip_id", "trace_id", "id", "name")
_XML_DECL = re.compile(r"""^(\s*<\?xml\b[^>]*?)\s+encoding\s*=\s*(["'])([^"']*)\2""")
#: Codecs that codecs.lookup finds but that are no document encoding (escapes, host names, 'undefined').
_NOT_TEXT_CODECS = {"undefined", "unicode-escape", "raw-unicode-escape", "idna", "punycode", "utf-7"}
_PATH_HINT = "; a str is read as the document itself: pass a file path as pathlib.Path"


# ---------------------------------------------------------------------- limits
class _Budget:
    """Counts the points read so far; :class:`GPSLimitError` as soon as they pass ``max_points``."""

    def __init__(self, max_points: int | None, what: str) -> None:
        self.max_points = max_points
        self.what = what
        self.n = 0

    def take(self, n: int = 1) -> None:
        self.n += n
        if self.max_points is not None and self.n > self.max_points:
            raise GPSLimitError(f"the {self.what} holds more than {self.max_points} points (the limit)",
                                "max_points", self.max_points)


def _short(value: object, n: int = 80) -> str:
    """``repr(value)`` cut to about ``n`` characters: error messages never echo a whole document."""
    if isinstance(value, list | tuple | dict) and len(value) > n:
        value = type(value)(list(value)[:n]) if not isinstance(value, dict) else dict(list(value.items())[:n])
    text = repr(value)
    return text if len(text) <= n else f"{text[: n - 15]}... ({len(text)} characters)"


def _check_id(tid: str, where: str, max_length: int | None) -> str:
    """A trip id as stored: valid Unicode text (no lone surrogates), at most ``max_length`` characters."""
    try:
        tid.encode("utf-8")
    except UnicodeEncodeError:
        raise GPSFormatError(f"{where}: trip id {_short(tid)} is not valid Unicode text (a lone surrogate)") from None
    if max_length is not None and len(tid) > max_length:
        raise GPSFormatError(f"{where}: trip id of {len(tid)} characters; the limit is {max_length}")
    return tid


# ---------------------------------------------------------------------- GPX
_GPX_POINTS = {"trkpt", "rtept", "wpt"}


def read_gpx(
    source: str | bytes | Path, *, max_points: int | None = None, max_id_length: int | None = None
) -> list[Trace]:
    """One :class:`Trace` per GPX track segment (and per route); waypoints only if there is nothing else.

    Ids: the track / route name (or ``track<i>`` / ``route<i>``), with ``/<j>`` for
    the j-th segment of a multi-segment track; made unique with ``#<k>`` if needed.

    The document is read as a stream by expat; a DTD, hence any entity, is refused, so
    neither entity expansion nor external entities can happen, and reading stops with
    :class:`GPSLimitError` at the first point beyond ``max_points``. Times are ISO 8601.
    """
    text = _read_xml_text(source)
    groups = _gpx_groups(text, _Budget(max_points, "GPX document"), source)
    if not groups:
        raise GPSFormatError("the GPX document has no track, route or waypoint points")
    traces = []
    for tid, pts in _unique_ids(groups):
        _check_id(tid, f"GPX trace {tid[:40]!r}", max_id_length)
        lonlat = np.array([[x, y] for x, y, _ in pts], dtype=float)
        _check_lonlat(lonlat, f"GPX trace {tid!r} point")
        raw = [t for _, _, t in pts]
        times = None
        if all(raw):
            times = np.empty(len(raw))
            for k, r in enumerate(raw):
                try:
                    times[k] = _dt_seconds(datetime.fromisoformat(str(r).replace("Z", "+00:00")))
                except ValueError:
                    raise GPSFormatError(
                        f"GPX trace {tid!r}, point {k}: unreadable time {_short(r)} (not ISO 8601)") from None
        elif any(raw):
            missing = next(i for i, t in enumerate(raw) if not t)
            raise GPSFormatError(f"GPX trace {tid!r}: point {missing} has no time while others do")
        traces.append(Trace(lonlat, times, tid))
    return traces


class _GPXReader:
    """pyexpat handlers that collect the points of a GPX document as it streams past.

    A DTD is refused as soon as it starts: without one there is no entity to expand
    (billion laughs, quadratic blow-up) and no external entity to fetch (XXE); this is
    what ``defusedxml`` does, without its pure-Python tree builder (3-4x slower here).
    """

    def __init__(self, budget: _Budget) -> None:
        self.budget = budget
        self.stack: list[str] = []
        self.tracks: list[tuple[str, list[list[tuple[float, float, str]]]]] = []
        self.routes: list[tuple[str, list[tuple[float, float, str]]]] = []
        self.waypoints: list[tuple[float, float, str]] = []
        self.current: list[tuple[float, float, str]] | None = None
        self.point: tuple[str, float, float] | None = None  # tag and position of the open point element
        self.time = ""
        self.name: str | None = None
        self.text: list[str] = []

    def parse(self, text: str) -> None:
        parser = expat.ParserCreate(namespace_separator="}")
        parser.buffer_text = True
        parser.StartDoctypeDeclHandler = self._forbid_dtd
        parser.EntityDeclHandler = self._forbid_dtd
        parser.ExternalEntityRefHandler = self._forbid_dtd  # type: ignore[assignment]
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._chars
        parser.Parse(text, True)

    @staticmethod
    def _forbid_dtd(*_: Any) -> None:
        raise GPSFormatError("not a valid GPX document: a DTD (<!DOCTYPE ...>) is not allowed in GPX uploads")

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        tag = name.rsplit("}", 1)[-1]
        if not self.stack and tag != "gpx":
            raise GPSFormatError(f"not a GPX document: the root element is <{_short(tag, 40)}>")
        parent = self.stack[-1] if self.stack else ""
        self.stack.append(tag)
        self.text = []
        if tag in _GPX_POINTS:
            self.budget.take()
            try:
                lat, lon = float(attrs["lat"]), float(attrs["lon"])
            except (KeyError, ValueError):
                raise GPSFormatError(
                    f"GPX <{tag}> number {self.budget.n - 1}: lat={_short(attrs.get('lat'))} "
                    f"lon={_short(attrs.get('lon'))} is not a position") from None
            self.point = (tag if parent in _GPX_PARENT.get(tag, ()) else "", lon, lat)
            self.time = ""
        elif tag == "trk" and parent == "gpx":
            self.name = None
            self.tracks.append(("", []))
        elif tag == "rte" and parent == "gpx":
            self.name = None
            self.current = []
        elif tag == "trkseg" and parent == "trk":
            self.current = []

    def _chars(self, data: str) -> None:
        if self.stack and self.stack[-1] in ("time", "name"):
            self.text.append(data)

    def _end(self, _: str) -> None:
        tag = self.stack.pop()
        parent = self.stack[-1] if self.stack else ""
        if tag == "time" and parent in _GPX_POINTS:
            self.time = "".join(self.text).strip()
        elif tag in _GPX_POINTS and self.point is not None:
            kind, lon, lat = self.point
            if kind == "wpt":
                self.waypoints.append((lon, lat, self.time))
            elif kind and self.current is not None:
                self.current.append((lon, lat, self.time))
            self.point = None
        elif tag == "name" and parent in ("trk", "rte"):
            self.name = "".join(self.text).strip()
        elif tag == "trkseg" and parent == "trk" and self.tracks and self.current is not None:
            self.tracks[-1][1].append(self.current)
            self.current = None
        elif tag == "trk" and parent == "gpx" and self.tracks:
            self.tracks[-1] = (self.name or "", self.tracks[-1][1])
        elif tag == "rte" and parent == "gpx" and self.current is not None:
            self.routes.append((self.name or "", self.current))
            self.current = None


#: Where each kind of point counts: track points in a segment, route points in a route, waypoints at the top.
_GPX_PARENT = {"trkpt": ("trkseg",), "rtept": ("rte",), "wpt": ("gpx",)}


def _gpx_groups(text: str, budget: _Budget, source: object) -> list[tuple[str, list[tuple[float, float, str]]]]:
    """``(id, [(lon, lat, time text), ...])`` of every track segment and route (or the waypoints)."""
    reader = _GPXReader(budget)
    try:
        reader.parse(text)
    except expat.ExpatError as exc:
        raise GPSFormatError(f"not a valid GPX document: {_short(str(exc), 200)}{_path_hint(source)}") from None
    except UnicodeEncodeError:  # lone surrogates in a str document
        raise GPSFormatError("not a valid GPX document: the text holds lone surrogates") from None
    groups: list[tuple[str, list[tuple[float, float, str]]]] = []
    for i, (trk_name, segments) in enumerate(reader.tracks):
        base = trk_name or f"track{i}"
        segs = [seg for seg in segments if seg]
        groups += [(base if len(segs) == 1 else f"{base}/{k}", seg) for k, seg in enumerate(segs)]
    groups += [(rte_name or f"route{i}", pts) for i, (rte_name, pts) in enumerate(reader.routes) if pts]
    if not groups and reader.waypoints:
        groups.append(("waypoints", reader.waypoints))
    return groups


# ---------------------------------------------------------------------- GeoJSON
def read_geojson(
    source: dict | str | bytes | Path, *, max_points: int | None = None, max_id_length: int | None = None
) -> list[Trace]:
    """Traces from a GeoJSON object or text.

    Accepted: a FeatureCollection, a Feature or a bare geometry. ``LineString`` and
    ``MultiPoint`` give one trace, ``MultiLineString`` one per line; ``Point``
    features are gathered, in order, into one trace per ``trip_id`` / ``trace_id``
    property. Times, in the first place found: a 4th coordinate ``[lon, lat, ele,
    time]``; a Feature property ``times`` / ``timestamps`` / ``coordTimes`` (a list,
    one per point; for MultiLineString one list per line, or one flat list over all
    the points, line after line) or ``coordinateProperties.times``; for Point features
    a ``time`` / ``timestamp`` property. A time is epoch seconds or an ISO 8601 string.

    Positions are counted before they are converted: :class:`GPSLimitError` past
    ``max_points``; ids longer than ``max_id_length`` are a :class:`GPSFormatError`.
    """
    obj = source
    if isinstance(source, str | bytes | Path):
        text = _read_text(source, "GeoJSON")
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GPSFormatError(f"not valid JSON: {_short(str(exc), 200)}{_path_hint(source)}") from None
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
    budget = _Budget(max_points, "GeoJSON document")
    for i, f in enumerate(feats):
        if not isinstance(f, dict) or not isinstance(f.get("geometry"), dict):
            raise GPSFormatError(f"feature {i} has no geometry object")
        props = f.get("properties") or {}
        if not isinstance(props, dict):
            raise GPSFormatError(f"feature {i}: properties must be an object")
        geom = f["geometry"]
        gtype, coords = geom.get("type"), geom.get("coordinates")
        fid = _check_id(_feature_id(f, props, i), f"feature {i}", max_id_length)
        if gtype == "Point":
            budget.take()
            key = _check_id(str(props.get("trip_id", props.get("trace_id", "points"))), f"feature {i}", max_id_length)
            pts, ts = point_groups.setdefault(key, ([], []))
            pts.append(coords)
            ts.append(next((props[k] for k in ("time", "timestamp", "times") if k in props), None))
        elif gtype in ("LineString", "MultiPoint"):
            budget.take(len(coords) if isinstance(coords, list) else 0)
            groups.append(_positions_to_trace(coords, _prop_times(props, f"feature {i}"), fid, f"feature {i}"))
        elif gtype == "MultiLineString":
            if not isinstance(coords, list):
                raise GPSFormatError(f"feature {i}: MultiLineString coordinates must be a list")
            budget.take(sum(len(line) for line in coords if isinstance(line, list)))
            per_line = _split_line_times(_prop_times(props, f"feature {i}"), coords, f"feature {i}")
            for j, (line, t) in enumerate(zip(coords, per_line, strict=True)):
                groups.append(_positions_to_trace(line, t, f"{fid}/{j}", f"feature {i} line {j}"))
        else:
            raise GPSFormatError(
                f"feature {i}: unsupported geometry {_short(gtype, 40)} (use LineString, MultiPoint or Point)")
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
        raise GPSFormatError(f"{where}: position {bad} is not [lon, lat(, ele(, time))]: {_short(coords[bad])}")
    try:
        lonlat = np.array([[c[0], c[1]] for c in coords], dtype=float)
    except (TypeError, ValueError) as exc:
        raise GPSFormatError(f"{where}: coordinates must be numbers ({_short(str(exc), 120)})") from None
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


def read_csv(
    source: str | bytes | Path,
    *,
    max_points: int | None = None,
    max_id_length: int | None = None,
    max_line_chars: int | None = 65_536,
) -> list[Trace]:
    """Traces from CSV with a header: ``trip_id, lon, lat, timestamp`` (any order).

    ``trip_id`` and ``timestamp`` are optional (one trace ``"trace"``; no times);
    aliases such as ``lng`` / ``longitude`` / ``latitude`` / ``time`` are accepted.
    Rows are grouped by trip in order of first appearance and kept in file order
    (a backwards timestamp is reported later, not sorted away). Timestamps are epoch
    seconds or ISO 8601; a trip has times only if none of its timestamps is empty.

    The rows are first checked one line at a time, stopping at the first that breaks a
    limit: a line longer than ``max_line_chars``, more rows than ``max_points``
    (:class:`GPSLimitError`), or non-empty fields beyond the header's columns.
    """
    text = _read_text(source, "CSV")
    _check_csv_rows(text, max_points, max_line_chars)
    try:
        # index_col=False: with a trailing comma on the data rows (one field more than the
        # header) pandas would otherwise take the first column as the index and shift the rest
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.ParserWarning)  # extra empty fields: checked above
            df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True,
                             index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise GPSFormatError(f"not a valid CSV document: {_short(str(exc), 200)}") from None
    cols = {c.strip().lower(): c for c in df.columns}
    found = {k: next((cols[a] for a in aliases if a in cols), None) for k, aliases in _CSV_COLUMNS.items()}
    if found["lon"] is None or found["lat"] is None:
        raise GPSFormatError(
            f"CSV needs 'lon' and 'lat' columns (header: {_short(list(df.columns), 200)}){_path_hint(source)}")
    if len(df) == 0:
        raise GPSFormatError("the CSV has a header but no rows")
    lon = pd.to_numeric(df[found["lon"]].str.strip(), errors="coerce").to_numpy(float)
    lat = pd.to_numeric(df[found["lat"]].str.strip(), errors="coerce").to_numpy(float)
    lonlat = np.column_stack([lon, lat])
    ok = valid_lonlat(lonlat)
    if not ok.all():
        r = int(np.flatnonzero(~ok)[0])
        raise GPSFormatError(
            f"CSV line {r + 2}: invalid position lon={_short(df[found['lon']].iloc[r])} "
            f"lat={_short(df[found['lat']].iloc[r])} ({int((~ok).sum())} bad row(s))"
        )
    ids = df[found["trip_id"]].str.strip().to_numpy(str) if found["trip_id"] else np.full(len(df), "trace")
    raw_t = df[found["timestamp"]].str.strip() if found["timestamp"] else None
    traces = []
    for tid, idx in pd.Series(np.arange(len(df))).groupby(ids, sort=False):
        rows = idx.to_numpy()
        _check_id(str(tid), f"CSV line {int(rows[0]) + 2}", max_id_length)
        times = None
        if raw_t is not None:
            vals = raw_t.iloc[rows]
            if (vals != "").all():
                times = _parse_times(list(vals), f"CSV trip {tid!r}", first_line=int(rows[0]) + 2)
        traces.append(Trace(lonlat[rows], times, str(tid)))
    return traces


def _check_csv_rows(text: str, max_points: int | None, max_line_chars: int | None) -> None:
    """Stream the rows once, before pandas reads them: long lines, too many rows, fields beyond the header.

    Lines are handed to the csv module one at a time, so a huge line is refused before
    it is split into fields, and a document with too many rows before the rest is read.
    Empty fields beyond the header's (a trailing comma) are fine.
    """

    def lines() -> Iterator[str]:
        for number, line in enumerate(io.StringIO(text), start=1):
            if max_line_chars is not None and len(line) > max_line_chars:
                raise GPSLimitError(f"CSV line {number} has {len(line)} characters; the limit is {max_line_chars}",
                                    "max_line_chars", max_line_chars)
            yield line

    rows = csv.reader(lines(), skipinitialspace=True)
    try:
        width = len(next(rows, []))
        for n, row in enumerate(rows, start=1):
            if max_points is not None and n > max_points:
                raise GPSLimitError(f"the CSV holds more than {max_points} rows (the point limit)", "max_points",
                                    max_points)
            if len(row) > width and any(f.strip() for f in row[width:]):
                raise GPSFormatError(
                    f"CSV line {rows.line_num}: {len(row)} fields but the header has {width} columns "
                    f"({_short(row[: width + 2], 120)})"
                )
    except csv.Error as exc:
        raise GPSFormatError(f"not a valid CSV document: line {rows.line_num}: {_short(str(exc), 200)}") from None


# ---------------------------------------------------------------------- shared
def _read_xml_text(source: str | bytes | Path) -> str:
    """GPX text; bytes are decoded as their BOM or XML declaration says (UTF-8 if neither, as XML specifies).

    The declaration is then dropped from the text, so the XML parser sees text that
    agrees with it. Only text encodings are accepted (not codecs' bytes transforms).
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
        except LookupError:
            raise GPSFormatError(f"GPX declares an unknown encoding {_short(encoding, 60)}") from None
        # codecs also holds bytes-to-bytes transforms (base64, zlib, hex, uu, rot13) and 'undefined'
        if not getattr(codec, "_is_text_encoding", True) or codec.name in _NOT_TEXT_CODECS:
            raise GPSFormatError(f"GPX declares {_short(encoding, 60)}, which is not a text encoding")
        if codec.name == "utf-8":
            codec = codecs.lookup("utf-8-sig")
        try:
            source = data.decode(codec.name)
        except (UnicodeError, LookupError) as exc:  # UnicodeDecodeError, or a codec that refuses to decode
            said = "as its XML declaration says" if m else "the default without an encoding declaration"
            raise GPSFormatError(f"GPX is not {encoding} text ({said}): {_short(str(exc), 200)}") from None
        source = _XML_DECL.sub(r"\1", source, count=1)
    return _read_text(source, "GPX")


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
            raise GPSFormatError(f"{where}, {loc}: unreadable time {_short(v)} ({_short(str(exc), 120)})") from None
    return out


def _unique_ids(groups: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    seen: dict[str, int] = {}
    out = []
    for tid, payload in groups:
        n = seen.get(tid, 0)
        seen[tid] = n + 1
        out.append((tid if n == 0 else f"{tid}#{n}", payload))
    return out
