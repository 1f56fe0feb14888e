"""Candidate ``.osm.pbf`` readers side by side: time and peak memory to get the drive ways and their nodes.

    .venv/bin/python benchmarks/bench_osm_readers.py ../shared/data/osm/andorra.osm.pbf
    .venv/bin/python benchmarks/bench_osm_readers.py --synthetic 150      # ~1 M nodes, written first

The job is what building a drive network needs from the file: the ways that pass osmnx's
"drive" filter, with their tags and node ids, and the coordinates of those nodes only.
``pyosmium_two_pass`` is the reader maxent_irl.roads ships (``read_drive_extract``: ways
and relations, then only the wanted nodes); ``pyosmium_locations`` the one-pass
alternative with libosmium's location index of every node.
Each reader runs in a fresh subprocess (so peak RSS, ``VmHWM``, is its own) and the
results are checked to be identical. Readers that are not installed are skipped; the
comparison in docs/maps.md installed ``pyrosm==0.25.0 osmiter==1.3.1 esy-osm-pbf==0.1.1``
next to ``osmium`` in a scratch virtualenv. pyrosm is asked for its own "driving"
network (its filter differs from osmnx's, so its counts differ; it also builds the edge
geometries and gives no node lists to compare).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

READERS = ("pyosmium_two_pass", "pyosmium_locations", "pyrosm_driving", "osmiter", "esy_osm_pbf")


def _drive(tags: dict[str, Any]) -> bool:
    from maxent_irl.roads.osm import is_drivable_way

    return is_drivable_way(tags)


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM; ``ru_maxrss`` would include a parent's before exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _digest(ways: list[tuple[int, list[int]]], nodes: dict[int, tuple[float, float]]) -> str:
    h = hashlib.sha256()
    for wid, refs in sorted(ways):
        h.update(f"{wid}:{','.join(map(str, refs))};".encode())
    for nid in sorted(nodes):
        lon, lat = nodes[nid]
        h.update(f"{nid}:{lon:.7f},{lat:.7f};".encode())
    return h.hexdigest()[:12]


def run(reader: str, path: str) -> dict[str, Any]:
    import importlib

    _drive({"highway": "primary"})  # imports the filter (and osmnx) before the clock starts
    module = {"pyosmium_two_pass": "osmium", "pyosmium_locations": "osmium", "pyrosm_driving": "pyrosm"}
    importlib.import_module(module.get(reader, reader.replace("esy_osm_pbf", "esy.osm.pbf")))
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    ways: list[tuple[int, list[int]]] = []
    nodes: dict[int, tuple[float, float]] = {}
    if reader == "pyosmium_two_pass":  # what maxent_irl.roads ships (extract.py): ways, then their nodes
        from maxent_irl.roads.extract import read_drive_extract
        from maxent_irl.roads.osm import is_drivable_way

        ext = read_drive_extract(path, is_drivable_way)
        dt, rss = time.perf_counter() - t0, peak_rss_mb()  # before the copies made for the digest
        ways = [(w["osmid"], w["nodes"]) for w in ext.ways]
        nodes = {i: (d["x"], d["y"]) for i, d in ext.nodes}
    elif reader == "pyosmium_locations":
        import osmium

        fp = osmium.FileProcessor(path, osmium.osm.NODE | osmium.osm.WAY).with_locations()
        for o in fp.with_filter(osmium.filter.EntityFilter(osmium.osm.WAY)).with_filter(
            osmium.filter.KeyFilter("highway")
        ):
            if _drive(dict(o.tags)):
                ways.append((o.id, [n.ref for n in o.nodes]))
                for n in o.nodes:
                    nodes[n.ref] = (n.lon, n.lat)
    elif reader == "pyrosm_driving":
        from pyrosm import OSM

        nd, ed = OSM(path).get_network(network_type="driving", nodes=True)
        nodes = {int(i): (float(x), float(y)) for i, x, y in zip(nd["id"], nd["lon"], nd["lat"], strict=True)}
        ways = [(int(i), []) for i in ed["id"].unique()]
    elif reader == "osmiter":
        import osmiter

        need: set[int] = set()
        for f in osmiter.iter_from_osm(path, file_format="pbf"):
            if f["type"] == "way" and _drive(f["tag"]):
                ways.append((f["id"], list(f["nd"])))
                need.update(f["nd"])
        for f in osmiter.iter_from_osm(path, file_format="pbf"):
            if f["type"] == "node" and f["id"] in need:
                nodes[f["id"]] = (f["lon"], f["lat"])
    elif reader == "esy_osm_pbf":
        import esy.osm.pbf

        need = set()
        with esy.osm.pbf.File(path) as f:
            for e in f:
                if isinstance(e, esy.osm.pbf.Way) and _drive(e.tags):
                    ways.append((e.id, list(e.refs)))
                    need.update(e.refs)
        with esy.osm.pbf.File(path) as f:
            for e in f:
                if isinstance(e, esy.osm.pbf.Node) and e.id in need:
                    nodes[e.id] = tuple(e.lonlat)
    else:
        raise ValueError(reader)
    if reader != "pyosmium_two_pass":
        dt, rss = time.perf_counter() - t0, peak_rss_mb()
    digest = _digest(ways, nodes) if ways and ways[0][1] else "n/a (no node ids)"
    return {
        "reader": reader, "s": dt, "peak_rss_mb": rss, "import_rss_mb": rss0, "ways": len(ways), "nodes": len(nodes),
        "digest": digest,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pbf", nargs="?")
    p.add_argument("--synthetic", type=int, help="write a synthetic city of N x N intersections and read it")
    p.add_argument("--readers", default=",".join(READERS))
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        try:
            print(json.dumps(run(*a.child)))
        except ImportError as exc:
            print(json.dumps({"reader": a.child[0], "skipped": f"not installed ({exc.name})"}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = a.pbf
        if a.synthetic:
            from synthetic_osm import write_synthetic_city

            path = str(Path(tmp) / "city.osm.pbf")
            counts = write_synthetic_city(path, n=a.synthetic)
            print(f"synthetic city {a.synthetic}x{a.synthetic}: {counts}")
        print(f"{Path(path).name} ({Path(path).stat().st_size / 1e6:.1f} MB)")
        print(f"{'reader':22s} {'time s':>8s} {'peak RSS MB':>12s} {'(after import)':>14s} {'ways':>8s} "
              f"{'nodes':>8s}  digest")
        for reader in a.readers.split(","):
            out = subprocess.run(
                [sys.executable, __file__, "--child", reader, path], capture_output=True, text=True, check=False
            )
            if out.returncode:
                print(f"{reader:22s} failed: {out.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            if "skipped" in r:
                print(f"{reader:22s} skipped: {r['skipped']}")
                continue
            print(f"{reader:22s} {r['s']:8.2f} {r['peak_rss_mb']:12.0f} {r['import_rss_mb']:14.0f} {r['ways']:8d} "
                  f"{r['nodes']:8d}  {r['digest']}")


if __name__ == "__main__":
    main()
