"""Time to build the route MDP from the OSM file, step by step, and to reload it from caches.

    .venv/bin/python benchmarks/bench_build_network.py                 # default network (Andorra)
    .venv/bin/python benchmarks/bench_build_network.py data/monaco_drive.osm.bz2 --repeat 5

Steps: parse + drive filter + simplify (``load_graph``, mostly osmnx), then
``RoadNetwork.from_graph`` (segments, turns, features, strongly connected part,
spatial index), then the two caches: osmnx GraphML and the network's own ``.npz``.
The median of ``--repeat`` runs is printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maxent_irl.roads import DEFAULT_OSM_PATH, RoadNetwork, load_graph, save_graph


def _time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("osm", nargs="?", type=Path, default=DEFAULT_OSM_PATH)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    r = args.repeat
    t_load, G = _time(lambda: load_graph(args.osm), r)
    t_build, net = _time(lambda: RoadNetwork.from_graph(G, name=args.osm.name.split(".")[0]), r)
    print(f"{args.osm.name}: {G.number_of_nodes()} nodes, {G.number_of_edges()} edges -> {net!r}")
    print(f"  load_graph (parse, drive filter, simplify, speeds)  {t_load:7.3f} s")
    print(f"  RoadNetwork.from_graph (features, SCC, index)       {t_build:7.3f} s")
    print(f"  total OSM file -> MDP                               {t_load + t_build:7.3f} s")
    with tempfile.TemporaryDirectory() as tmp:
        graphml = Path(tmp) / "net.graphml"
        save_graph(G, graphml)
        t_gml, G2 = _time(lambda: load_graph(graphml), r)
        t_gml_build, _ = _time(lambda: RoadNetwork.from_graph(G2), r)
        npz = Path(tmp) / "net.npz"
        net.save(npz)
        t_npz, net2 = _time(lambda: RoadNetwork.load(npz), r)
        assert net2.fingerprint == net.fingerprint
        print(f"  from GraphML cache ({graphml.stat().st_size / 1e6:.2f} MB)                   "
              f"{t_gml + t_gml_build:7.3f} s")
        print(f"  from .npz cache ({npz.stat().st_size / 1e6:.2f} MB, RoadNetwork.default)    {t_npz:7.3f} s")
    every = np.arange(net.n_states)
    t_rows, _ = _time(lambda: net.router().pair_distances(every, np.zeros_like(every)), 1)
    print(f"  all-pairs route distances for map matching (once)   {t_rows:7.3f} s")


if __name__ == "__main__":
    main()
