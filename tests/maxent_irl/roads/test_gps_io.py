"""GPX / GeoJSON / CSV readers: happy paths, times, ids, and every malformed input raising GPSFormatError."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maxent_irl.roads import GPSFormatError, Trace, read_csv, read_geojson, read_gpx, traces_to_geojson

GPX_FILE = Path(__file__).resolve().parents[3] / "data" / "andorra_for_map_matching.gpx"

GPX_TIMED = """<?xml version="1.0"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
  <trk><name>commute</name>
    <trkseg>
      <trkpt lat="42.5000" lon="1.5000"><time>2024-05-01T08:00:00Z</time></trkpt>
      <trkpt lat="42.5010" lon="1.5010"><time>2024-05-01T08:00:10Z</time></trkpt>
    </trkseg>
    <trkseg>
      <trkpt lat="42.5100" lon="1.5100"><time>2024-05-01T09:00:00+02:00</time></trkpt>
      <trkpt lat="42.5110" lon="1.5110"><time>2024-05-01T09:00:05+02:00</time></trkpt>
    </trkseg>
  </trk>
  <rte><rtept lat="42.6" lon="1.6"/><rtept lat="42.61" lon="1.61"/></rte>
</gpx>
"""


def test_read_the_shipped_gpx() -> None:
    traces = read_gpx(GPX_FILE.read_bytes())
    assert len(traces) == 1
    tr = traces[0]
    assert tr.n_points == 21 and tr.times is None  # drawn on a map: no timestamps
    assert tr.points[0].tolist() == pytest.approx([1.532909, 42.623636])  # [lon, lat]
    assert 600 < tr.length_m < 750  # data/README.md: 0.675 km
    assert read_gpx(GPX_FILE)[0].points.tolist() == tr.points.tolist()  # a Path works too


def test_gpx_segments_times_and_routes() -> None:
    traces = read_gpx(GPX_TIMED)
    assert [t.trace_id for t in traces] == ["commute/0", "commute/1", "route0"]
    t0, t1, rte = traces
    assert t0.times is not None and t0.times[0] == 1714550400.0  # 2024-05-01T08:00:00Z
    assert np.diff(t0.times).tolist() == [10.0]
    assert t1.times is not None and t1.times[0] == 1714550400.0 - 3600  # 09:00+02:00 is 07:00Z
    assert rte.times is None and rte.n_points == 2


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("<gpx><trk><trkseg><trkpt lat=", "not a valid GPX"),
        ('<?xml version="1.0"?><gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"></gpx>', "no track"),
        (GPX_TIMED.replace('lat="42.5010"', 'lat="95.0"'), "invalid"),
        (GPX_TIMED.replace("<time>2024-05-01T08:00:10Z</time>", ""), "no time"),
    ],
)
def test_gpx_errors(text: str, match: str) -> None:
    with pytest.raises(GPSFormatError, match=match):
        read_gpx(text)


def test_geojson_linestring_with_coord_times_and_ids() -> None:
    obj = {
        "type": "Feature",
        "properties": {"trip_id": "t1", "coordTimes": ["2024-05-01T08:00:00Z", "2024-05-01T08:00:10Z", 1714550420]},
        "geometry": {"type": "LineString", "coordinates": [[1.5, 42.5], [1.501, 42.5], [1.502, 42.5]]},
    }
    (tr,) = read_geojson(obj)
    assert tr.trace_id == "t1" and tr.points.shape == (3, 2)
    assert tr.times is not None and tr.times.tolist() == [1714550400.0, 1714550410.0, 1714550420.0]
    (same,) = read_geojson(json.dumps(obj))  # text works too
    assert same.times is not None and same.times.tolist() == tr.times.tolist()


def test_geojson_variants() -> None:
    multipoint = {"type": "MultiPoint", "coordinates": [[1.5, 42.5, 1000.0, 10.0], [1.51, 42.51, 1001.0, 20.0]]}
    (tr,) = read_geojson(multipoint)
    assert tr.times is not None and tr.times.tolist() == [10.0, 20.0]  # 4th coordinate = time
    (no_t,) = read_geojson({"type": "LineString", "coordinates": [[1.5, 42.5, 1000.0], [1.51, 42.51, 1001.0]]})
    assert no_t.times is None  # 3rd coordinate is elevation, not time
    def point(trip: str, t: float, lon: float, lat: float) -> dict:
        geometry = {"type": "Point", "coordinates": [lon, lat]}
        return {"type": "Feature", "properties": {"trip_id": trip, "time": t}, "geometry": geometry}

    points = {
        "type": "FeatureCollection",
        "features": [point("a", 1.0, 1.5, 42.5), point("b", 5.0, 1.6, 42.6), point("a", 2.0, 1.51, 42.5)],
    }
    a, b = read_geojson(points)
    assert (a.trace_id, a.n_points, b.n_points) == ("a", 2, 1)
    assert a.times is not None and a.times.tolist() == [1.0, 2.0]
    mls = {
        "type": "Feature",
        "properties": {"name": "two", "times": [[1, 2], [3, 4]]},
        "geometry": {
            "type": "MultiLineString",
            "coordinates": [[[1.5, 42.5], [1.6, 42.6]], [[1.7, 42.7], [1.8, 42.8]]],
        },
    }
    parts = read_geojson(mls)
    assert [p.trace_id for p in parts] == ["two/0", "two/1"]
    assert parts[1].times is not None and parts[1].times.tolist() == [3.0, 4.0]


def test_geojson_round_trip() -> None:
    traces = [Trace([[1.5, 42.5], [1.51, 42.51]], [0.0, 10.0], "x"), Trace([[1.6, 42.6], [1.61, 42.61]], None, "y")]
    back = read_geojson(traces_to_geojson(traces))
    assert [t.trace_id for t in back] == ["x", "y"]
    assert back[0].times is not None and back[0].times.tolist() == [0.0, 10.0]
    assert back[1].times is None
    assert np.array_equal(back[1].points, traces[1].points)


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ("{not json", "not valid JSON"),
        ([1, 2], "object with a 'type'"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 1], [0, 0]]]}, "unsupported"),
        ({"type": "LineString", "coordinates": []}, "non-empty"),
        ({"type": "LineString", "coordinates": [[1.5, "x"], [1.6, 42.6]]}, "numbers"),
        ({"type": "LineString", "coordinates": [[1.5, 42.5], [200.0, 42.6]]}, "invalid"),
        ({"type": "LineString", "coordinates": [[1.5, 42.5], [float("nan"), 42.6]]}, "invalid"),
        ({"type": "LineString", "coordinates": [[1.5], [1.6, 42.6]]}, "not \\[lon, lat"),
        ({"type": "Feature", "properties": {"times": [1]}, "geometry": {"type": "LineString",
          "coordinates": [[1.5, 42.5], [1.6, 42.6]]}}, "1 times for 2"),
        ({"type": "Feature", "properties": {"times": ["yesterday", 2]}, "geometry": {"type": "LineString",
          "coordinates": [[1.5, 42.5], [1.6, 42.6]]}}, "unreadable time"),
        ({"type": "FeatureCollection", "features": []}, "no trace"),
        ({"type": "FeatureCollection", "features": [{"type": "Feature"}]}, "no geometry"),
    ],
)
def test_geojson_errors(obj: object, match: str) -> None:
    with pytest.raises(GPSFormatError, match=match):
        read_geojson(obj)  # type: ignore[arg-type]


def test_csv() -> None:
    text = (
        "trip_id,lon,lat,timestamp\n"
        "a,1.50,42.50,2024-05-01T08:00:00Z\n"
        "b,1.60,42.60,100\n"
        "a,1.51,42.51,2024-05-01T08:00:10Z\n"
        "b,1.61,42.61,90\n"  # backwards: kept in file order, reported later by clean_trips / match
    )
    a, b = read_csv(text)
    assert (a.trace_id, b.trace_id) == ("a", "b")
    assert a.points.tolist() == [[1.5, 42.5], [1.51, 42.51]]
    assert a.times is not None and a.times.tolist() == [1714550400.0, 1714550410.0]
    assert b.times is not None and b.times.tolist() == [100.0, 90.0]
    (one,) = read_csv(b"Latitude,Longitude\n42.5,1.5\n42.6,1.6\n")  # aliases, any order, no id, no time
    assert one.trace_id == "trace" and one.times is None and one.points[1].tolist() == [1.6, 42.6]
    (partial,) = read_csv("trip_id,lon,lat,time\nz,1.5,42.5,1\nz,1.6,42.6,\n")
    assert partial.times is None  # a trip has times only if all its points do


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("trip_id,lon,lat\n", "no rows"),
        ("trip_id,x1,y1\na,1,2\n", "'lon' and 'lat'"),
        ("lon,lat\n1.5,42.5\n1.6,NaN\n", "line 3"),
        ("lon,lat\n1.5,42.5\nabc,42.6\n", "line 3"),
        ("lon,lat\n1.5,142.5\n", "line 2"),
        ("lon,lat,timestamp\n1.5,42.5,1\n1.6,42.6,noon\n", "unreadable time"),
        ('lon,lat\n"1.5,42.5\n', "."),
    ],
)
def test_csv_errors(text: str, match: str) -> None:
    with pytest.raises(GPSFormatError, match=match):
        read_csv(text)


def test_large_csv_is_fast() -> None:
    n = 100_000
    lon = 1.5 + np.arange(n) * 1e-6
    body = "\n".join(f"t,{x:.7f},42.5,{i}" for i, x in enumerate(lon))
    (tr,) = read_csv("trip_id,lon,lat,timestamp\n" + body)
    assert tr.n_points == n and tr.times is not None and tr.times[-1] == n - 1


def test_csv_trailing_comma_keeps_the_columns() -> None:
    # one field more than the header on every row: pandas used to take trip_id as the index and shift the rest
    (tr,) = read_csv("trip_id,lon,lat,timestamp\na,7.42,43.73,0,\na,7.43,43.74,10,\n")
    assert tr.trace_id == "a" and tr.points.tolist() == [[7.42, 43.73], [7.43, 43.74]]
    assert tr.times is not None and tr.times.tolist() == [0.0, 10.0]
    # truly ragged rows: an error naming the line, never data silently dropped or shifted
    with pytest.raises(GPSFormatError, match="line 2: 5 fields but the header has 4"):
        read_csv("trip_id,lon,lat,timestamp\na,7.42,43.73,0,5\na,7.43,43.74,10,6\n")
    with pytest.raises(GPSFormatError, match="line 3"):
        read_csv("trip_id,lon,lat,timestamp\na,7.42,43.73,0\na,7.43,43.74,10,99\n")


def test_deeply_nested_json_is_a_format_error() -> None:
    with pytest.raises(GPSFormatError, match="nested too deeply"):
        read_geojson("[" * 100_000 + "]" * 100_000)


def _multiline(times: object) -> dict:
    lines = [[[1.5, 42.5], [1.6, 42.6]], [[1.7, 42.7], [1.8, 42.8], [1.9, 42.9]]]
    return {"type": "Feature", "properties": {"times": times}, "geometry": {"type": "MultiLineString",
                                                                            "coordinates": lines}}


def test_multilinestring_flat_times_are_split_over_the_lines() -> None:
    a, b = read_geojson(_multiline([1, 2, 3, 4, 5]))
    assert a.times is not None and a.times.tolist() == [1.0, 2.0]
    assert b.times is not None and b.times.tolist() == [3.0, 4.0, 5.0]
    with pytest.raises(GPSFormatError, match="4 times for 5 positions in 2 lines"):
        read_geojson(_multiline([1, 2, 3, 4]))
    with pytest.raises(GPSFormatError, match="not a mix"):
        read_geojson(_multiline([[1, 2], 3]))
    for bad in ({"0": [1, 2]}, "1,2,3,4,5"):  # not a list: an error, not a trace silently without times
        with pytest.raises(GPSFormatError, match="must be a list of times"):
            read_geojson(_multiline(bad))
    line = {"type": "Feature", "properties": {"coordTimes": {"a": 1}},
            "geometry": {"type": "LineString", "coordinates": [[1.5, 42.5], [1.6, 42.6]]}}
    with pytest.raises(GPSFormatError, match="'coordTimes' must be a list"):
        read_geojson(line)


def test_gpx_is_decoded_as_its_xml_declaration_says() -> None:
    doc = GPX_TIMED.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="ISO-8859-1"?>')
    doc = doc.replace("<name>commute</name>", "<name>Café</name>")
    traces = read_gpx(doc.encode("latin-1"))
    assert [t.trace_id for t in traces] == ["Café/0", "Café/1", "route0"]
    assert traces[0].times is not None and traces[0].times[0] == 1714550400.0
    utf16 = doc.replace("ISO-8859-1", "UTF-16").encode("utf-16")  # with its byte order mark
    assert [t.trace_id for t in read_gpx(utf16)] == ["Café/0", "Café/1", "route0"]
    assert read_gpx(doc.replace("ISO-8859-1", "UTF-8").encode())[0].trace_id == "Café/0"
    with pytest.raises(GPSFormatError, match="unknown encoding"):
        read_gpx(doc.replace("ISO-8859-1", "klingon").encode("latin-1"))
    with pytest.raises(GPSFormatError, match="not UTF-8 text"):
        read_gpx(doc.replace('encoding="ISO-8859-1"', "").encode("latin-1"))  # no declaration: UTF-8


def test_gpx_entities_stay_unexpanded(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    decl = '<?xml version="1.0" encoding="ISO-8859-1"?>'
    xxe = GPX_TIMED.replace('<?xml version="1.0"?>', f'{decl}<!DOCTYPE gpx [<!ENTITY x SYSTEM "{secret.as_uri()}">]>')
    xxe = xxe.replace("<name>commute</name>", "<name>&x;</name>")
    for doc in (xxe, xxe.encode("latin-1")):
        try:
            traces = read_gpx(doc)
        except GPSFormatError:
            continue
        assert all("TOP-SECRET" not in t.trace_id for t in traces)
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    bomb = GPX_TIMED.replace('<?xml version="1.0"?>', f'{decl}<!DOCTYPE gpx [<!ENTITY l0 "lol">{lol}]>')
    bomb = bomb.replace("<name>commute</name>", "<name>&l9;</name>")
    for doc in (bomb, bomb.encode("latin-1")):
        with pytest.raises(GPSFormatError):
            read_gpx(doc)


def test_gpx_str_that_looks_like_a_path_gets_a_hint() -> None:
    with pytest.raises(GPSFormatError, match=r"pass a file path as pathlib\.Path"):
        read_gpx("some/path.gpx")
    with pytest.raises(GPSFormatError, match=r"pass a file path as pathlib\.Path"):
        read_geojson("tracks/today.geojson")
    with pytest.raises(GPSFormatError, match="not a valid GPX") as e:
        read_gpx("<gpx><trk><trkseg><trkpt lat=")
    assert "pathlib" not in str(e.value)  # a broken document is not mistaken for a path


def test_gpx_unreadable_time_is_reported_as_such() -> None:
    bad = GPX_TIMED.replace("<time>2024-05-01T08:00:10Z</time>", "<time>yesterday</time>")
    with pytest.raises(GPSFormatError, match="'commute/0', point 1: unreadable time 'yesterday'"):
        read_gpx(bad)
    every = GPX_TIMED.replace("2024-05-01T08:00:00Z", "noon").replace("2024-05-01T08:00:10Z", "noon")
    with pytest.raises(GPSFormatError, match="point 0: unreadable time 'noon'"):
        read_gpx(every)  # all unreadable: not silently a trace without times
    waypoints = ('<?xml version="1.0"?><gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">'
                 '<wpt lat="42.5" lon="1.5"><time>2024-05-01T08:00:00Z</time></wpt>'
                 '<wpt lat="42.6" lon="1.6"><time>later</time></wpt></gpx>')
    with pytest.raises(GPSFormatError, match="'waypoints', point 1: unreadable time 'later'"):
        read_gpx(waypoints)
