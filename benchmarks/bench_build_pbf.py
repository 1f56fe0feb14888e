"""Building a network from a ~1 million node .osm.pbf: time and peak memory, against the XML routes on the same data.

    .venv/bin/python benchmarks/bench_build_pbf.py                        # synthetic city, 150 x 150 crossings
    .venv/bin/python benchmarks/bench_build_pbf.py --n 60 --andorra ../shared/data/osm/andorra.osm.pbf

The city (``synthetic_osm.py``: streets with realistic tags, plus sidewalks, driveways,
buildings and POIs the drive filter must skip, and turn restrictions) is written once
as ``.osm.pbf`` and as plain OSM XML. Each route then runs in a fresh process, so its
peak resident memory (``VmHWM``) is its own:

* ``pbf``: ``RoadNetwork.load(city.osm.pbf)`` (pyosmium, two passes; restrictions applied);
* ``xml``: the same route on ``city.osm`` (libosmium parses the XML);
* ``osmnx-xml``: the route before .pbf support, the reference: ``ox.graph_from_xml`` (a
  Python SAX parse of every element), the drive filter on edges, ``simplify_graph``.

Times are split into reading + graph (``load_graph``) and ``RoadNetwork.from_graph``; the
fingerprint is also shown for the same graph built without its turn restrictions, which
must equal the osmnx route's (osmnx drops relations).
``--andorra PATH`` also times ``andorra.osm.pbf`` against the embedded ``andorra_drive.osm.bz2``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(route: str, path: str) -> dict[str, Any]:
    import osmnx as ox

    from maxent_irl.roads import RoadNetwork, load_graph
    from maxent_irl.roads.osm import _ensure_speeds, _extra_way_tags, is_drivable_way, normalize_list_attributes

    rss0 = _peak_rss_mb()
    t0 = time.perf_counter()
    if route == "osmnx-xml":
        with _extra_way_tags():
            G = ox.graph_from_xml(path, simplify=False, retain_all=True)
        G.remove_edges_from([(u, v, k) for u, v, k, d in G.edges(keys=True, data=True) if not is_drivable_way(d)])
        G.remove_nodes_from([n for n in list(G.nodes) if G.degree(n) == 0])
        G = _ensure_speeds(normalize_list_attributes(ox.simplify_graph(G)))
    else:
        G = load_graph(path)
    t1 = time.perf_counter()
    net = RoadNetwork.from_graph(G, name=Path(path).name.split(".")[0])
    t2 = time.perf_counter()
    plain = net.fingerprint
    if G.graph.get("turn_restrictions"):  # the same graph without them, to compare with the osmnx route
        G.graph["turn_restrictions"] = []
        plain = RoadNetwork.from_graph(G).fingerprint
    return {
        "route": route, "load_graph_s": t1 - t0, "from_graph_s": t2 - t1, "total_s": t2 - t0,
        "peak_rss_mb": _peak_rss_mb(), "import_rss_mb": rss0, "states": net.n_states,
        "transitions": net.mdp.n_transitions, "restricted": len(net.restricted_turns), "fingerprint": net.fingerprint,
        "fingerprint_unrestricted": plain,
        "restriction_counts": G.graph.get("turn_restriction_counts", {}),
    }


def run_child(route: str, path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", route, str(path)], capture_output=True, text=True, check=False
    )
    if out.returncode:
        raise RuntimeError(f"{route} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(rows: list[dict[str, Any]], reference: str) -> None:
    ref = next(r for r in rows if r["route"] == reference)
    print(f"  {'route':10s} {'load_graph s':>12s} {'from_graph s':>12s} {'total s':>8s} {'vs ref':>7s} "
          f"{'peak RSS MB':>11s} {'states':>7s} {'restricted':>10s}  fingerprint (without restrictions)")
    for r in rows:
        print(f"  {r['route']:10s} {r['load_graph_s']:12.2f} {r['from_graph_s']:12.2f} {r['total_s']:8.2f} "
              f"{r['total_s'] / ref['total_s']:6.2f}x {r['peak_rss_mb']:11.0f} {r['states']:7d} "
              f"{r['restricted']:10d}  {r['fingerprint']} ({r['fingerprint_unrestricted']})")
    print(f"  (peak RSS after imports alone: {rows[0]['import_rss_mb']:.0f} MB; reference: {reference})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=150, help="crossings per side (150: about 1.0 M nodes)")
    p.add_argument("--andorra", type=Path, help="andorra.osm.pbf (../shared/data/osm/andorra.osm.pbf)")
    p.add_argument("--skip-osmnx", action="store_true", help="skip the slow osmnx XML reference")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(*a.child)))
        return
    from synthetic_osm import write_synthetic_city

    with tempfile.TemporaryDirectory() as tmp:
        pbf, xml = Path(tmp) / "city.osm.pbf", Path(tmp) / "city.osm"
        t = time.perf_counter()
        counts = write_synthetic_city(pbf, n=a.n)
        write_synthetic_city(xml, n=a.n)
        print(f"synthetic city {a.n} x {a.n}: {counts['nodes']:,} nodes, {counts['ways']:,} ways, "
              f"{counts['relations']} restriction relations; .osm.pbf {pbf.stat().st_size / 1e6:.1f} MB, "
              f".osm {xml.stat().st_size / 1e6:.0f} MB (written in {time.perf_counter() - t:.0f} s)")
        rows = [run_child("pbf", pbf), run_child("xml", xml)]
        if not a.skip_osmnx:
            rows.append(run_child("osmnx-xml", xml))
        report(rows, "osmnx-xml" if not a.skip_osmnx else "xml")
        print(f"  restrictions (pbf): {rows[0]['restriction_counts']}")
    if a.andorra:
        bz2 = ROOT / "data" / "andorra_drive.osm.bz2"
        print(f"Andorra: {a.andorra.name} ({a.andorra.stat().st_size / 1e6:.2f} MB, the whole extract) "
              f"vs {bz2.name} ({bz2.stat().st_size / 1e6:.2f} MB, drive ways only)")
        rows = [run_child("pbf", a.andorra), run_child("xml", bz2), run_child("osmnx-xml", bz2)]
        rows[1]["route"] = "bz2"
        rows[2]["route"] = "osmnx-bz2"
        report(rows, "osmnx-bz2")


if __name__ == "__main__":
    main()
