"""The GPS readers under hostile input: limits that stop reading early, safe XML, only text encodings, valid ids."""

from __future__ import annotations

import json
import time

import pytest

from maxent_irl.roads import GPSFormatError, GPSLimitError, read_csv, read_geojson, read_gpx


def _gpx(n: int, decl: str = '<?xml version="1.0"?>', name: str = "t", extra: str = "") -> str:
    pts = "".join(f'<trkpt lat="{43.7 + i * 1e-5}" lon="{7.4 + i * 1e-5}"><time>2024-05-01T08:00:{i % 60:02d}Z</time>'
                  "</trkpt>" for i in range(n))
    return (f'{decl}{extra}<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">'
            f"<trk><name>{name}</name><trkseg>{pts}</trkseg></trk></gpx>")


def test_gpx_stops_at_the_point_limit():
    doc = _gpx(2000)
    assert len(read_gpx(doc, max_points=2000)[0]) == 2000
    with pytest.raises(GPSLimitError, match="more than 1999 points") as e:
        read_gpx(doc, max_points=1999)
    assert (e.value.limit, e.value.value) == ("max_points", 1999)


def test_gpx_with_a_dtd_is_refused_before_any_entity_is_read():
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    for extra in (f'<!DOCTYPE gpx [<!ENTITY l0 "lol">{lol}]>', '<!DOCTYPE gpx [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
                  '<!DOCTYPE gpx SYSTEM "http://example.invalid/gpx.dtd">'):
        with pytest.raises(GPSFormatError, match="DTD"):
            read_gpx(_gpx(3, extra=extra, name="&l9;" if "l0" in extra else "n"))


@pytest.mark.parametrize("encoding", ["rot13", "base64", "zlib", "hex", "uu", "undefined", "unicode_escape", "idna"])
def test_gpx_declaring_a_codec_that_is_no_text_encoding(encoding: str):
    with pytest.raises(GPSFormatError, match="not a text encoding"):
        read_gpx(_gpx(3, decl=f'<?xml version="1.0" encoding="{encoding}"?>').encode())


def test_gpx_is_faster_than_a_second_per_hundred_thousand_points():
    doc = _gpx(100_000).encode()
    t0 = time.perf_counter()
    (trace,) = read_gpx(doc)
    assert len(trace) == 100_000 and trace.times is not None
    assert time.perf_counter() - t0 < 10  # gpxpy took about 6 s here; this reader about 1 s (a loose bound)


def test_gpx_structure_is_read_as_before():
    doc = ('<?xml version="1.0"?><gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">'
           '<wpt lat="43.7" lon="7.4"><name>not a track name</name></wpt>'
           '<trk><trkseg><trkpt lat="43.70" lon="7.40"><name>point name</name></trkpt>'
           '<trkpt lat="43.71" lon="7.41"/></trkseg><trkseg/></trk>'
           '<rte><name>r</name><rtept lat="43.72" lon="7.42"/><rtept lat="43.73" lon="7.43"/></rte></gpx>')
    traces = read_gpx(doc)
    assert [t.trace_id for t in traces] == ["track0", "r"]  # waypoints only when there is nothing else
    assert traces[0].points.tolist() == [[7.40, 43.70], [7.41, 43.71]]
    with pytest.raises(GPSFormatError, match="root element"):
        read_gpx("<kml><trk/></kml>")
    with pytest.raises(GPSFormatError, match="is not a position"):
        read_gpx(doc.replace('lat="43.71"', 'lat="north"'))


def test_trip_ids_must_be_text_and_not_too_long():
    line = {"type": "LineString", "coordinates": [[7.4, 43.7], [7.41, 43.71]]}
    for trip_id, match in (("\ud83d", "lone surrogate"), ("x" * 201, "201 characters")):
        feature = {"type": "Feature", "properties": {"id": trip_id}, "geometry": line}
        with pytest.raises(GPSFormatError, match=match):
            read_geojson(json.dumps(feature), max_id_length=200)
        with pytest.raises(GPSFormatError, match=match):
            read_geojson(feature, max_id_length=200)
    assert read_geojson({"type": "Feature", "properties": {"id": "x" * 201}, "geometry": line})  # no limit given
    with pytest.raises(GPSFormatError, match="201 characters"):
        read_gpx(_gpx(3, name="n" * 201), max_id_length=200)
    with pytest.raises(GPSFormatError, match="201 characters"):
        read_csv("trip_id,lon,lat\n" + f"{'c' * 201},7.4,43.7\n" * 2, max_id_length=200)


def test_geojson_counts_positions_before_converting_them():
    coords = [[7.4 + i * 1e-5, 43.7] for i in range(1000)]
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": coords}},
        {"type": "Feature", "properties": {}, "geometry": {"type": "MultiLineString", "coordinates": [coords, coords]}},
    ]}
    assert len(read_geojson(fc, max_points=3000)) == 3
    with pytest.raises(GPSLimitError):
        read_geojson(fc, max_points=2999)


def test_csv_limits_stop_before_the_fields_are_split():
    header = "trip_id,lon,lat\n"
    wide = header + "a,7.4,43.7" + ",x" * 1_000_000 + "\n"
    t0 = time.perf_counter()
    with pytest.raises(GPSLimitError, match="line 2 has 2000011 characters"):
        read_csv(wide)
    assert time.perf_counter() - t0 < 2
    with pytest.raises(GPSLimitError, match="more than 3 rows"):
        read_csv(header + "a,7.4,43.7\n" * 4, max_points=3)
    assert len(read_csv(header + "a,7.4,43.7\n" * 3, max_points=3)[0]) == 3
    extra = header + "a,7.4,43.7" + ",x" * 30 + "\n"
    with pytest.raises(GPSFormatError, match="33 fields but the header has 3") as e:
        read_csv(extra)
    assert len(str(e.value)) < 300  # the row is not echoed whole
    assert len(read_csv(header + "a,7.4,43.7,,\n" * 2)[0]) == 2  # trailing empty fields are fine
