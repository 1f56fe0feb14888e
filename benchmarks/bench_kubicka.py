"""Map matching on real 1 Hz vehicle GPS: the Kubička et al. (2015) benchmark drives with hand-corrected routes.

Each drive folder ``NNNNNNNN/`` holds the track (lon, lat, t), the road network around it as
nodes and straight directed arcs, and the true route as arc ids (format: the data's README).
Per drive this script builds a :class:`RoadNetwork` from the arcs through the public API
(``RoadNetwork.from_graph`` on a networkx MultiDiGraph: one edge per arc, keyed 0, 1, ... when
two arcs join the same nodes; no road classes or speeds in the data, so every arc is an
``unclassified`` road at 50 km/h), matches the track with the default :class:`MapMatcher`, maps
the matched states back to arc ids and scores them as the benchmark's users do:

    correct fraction = 1 - (length wrongly added + length of the true route missed) / true length

over arcs counted with multiplicity (an arc driven twice must be matched twice), so U-turns and
loops count. The matched arcs are those of the result's pieces (a gap no plausible route bridges
is not filled in). The summary is the mean weighted by true-route length.

Speed: matched points per second of ``match()`` time (network building and scoring excluded),
cold (each drive is a new network: every route search is new), by the wall clock and per second
of the process's CPU time (steadier on a shared machine: other processes' load does not count).
The reference is the matcher of another git revision (``--reference``, default the matcher
before this benchmark existed), loaded from ``git show`` and run in the same process on the same
networks, each with a fresh router cache; the ratio new / reference is what to compare across
machines.

    .venv/bin/python benchmarks/bench_kubicka.py                        # all drives in ../shared/...
    .venv/bin/python benchmarks/bench_kubicka.py --data DIR --drives 00000005 00000010 --json out.json
    .venv/bin/python benchmarks/bench_kubicka.py --reference none       # skip the reference matcher
    .venv/bin/python benchmarks/bench_kubicka.py --no-times             # the tracks without timestamps

Nothing here is tuned to particular drives: the same code runs on any drive of the data set.

Measured on the 20 development drives (2 cores, shared, OPENBLAS_NUM_THREADS=1): 99.31 % length-weighted
correct, 18,300 points/s (18,800 per CPU second); the pre-change matcher in the same run: 97.50 %, 7,200
points/s. Without the timestamps (--no-times) also 99.31 %. With the networks cut to their largest
strongly connected part (``from_graph``'s default) the pre-change matcher scored 84.34 % (16 km of drive 5's
true route were outside it), this one 94.90 %.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import networkx as nx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from maxent_irl.roads import MapMatcher, RoadNetwork, Trace  # noqa: E402
from maxent_irl.roads.geo import haversine_m  # noqa: E402

_DATA_SUBDIR = Path("shared") / "data" / "gps" / "kubicka-dev"
#: ``../shared/...`` from the repository; from a worktree nested deeper, the nearest ancestor that has it.
#: main when the benchmark was written: the Newson & Krumm matcher measured only on simulated traces.
PRE_CHANGE = "e24e2a2"
DEFAULT_DATA = next((p / _DATA_SUBDIR for p in ROOT.parents if (p / _DATA_SUBDIR).is_dir()),
                    ROOT.parent / _DATA_SUBDIR)


@dataclass
class Drive:
    """One benchmark drive: track, network (nodes, arcs) and true route (arc ids)."""

    name: str
    track: np.ndarray  # (n, 3) lon, lat, t
    nodes: np.ndarray  # (N, 2) lon, lat
    arcs: np.ndarray  # (A, 2) from, to node ids
    route: np.ndarray  # (r,) arc ids in driving order

    @property
    def arc_length_m(self) -> np.ndarray:
        return haversine_m(self.nodes[self.arcs[:, 0]], self.nodes[self.arcs[:, 1]])


def load_drive(folder: Path) -> Drive:
    name = folder.name

    def read(ext: str, dtype: type) -> np.ndarray:
        return np.loadtxt(folder / f"{name}.{ext}", dtype=dtype, ndmin=2 if ext != "route" else 1)

    return Drive(name, read("track", float), read("nodes", float), read("arcs", np.int64), read("route", np.int64))


def build_network(drive: Drive) -> tuple[RoadNetwork, np.ndarray]:
    """The drive's arcs as a RoadNetwork, and the arc id of each state."""
    G = nx.MultiDiGraph(crs="epsg:4326")
    for i, (lon, lat) in enumerate(drive.nodes):
        G.add_node(i, x=float(lon), y=float(lat))
    length = drive.arc_length_m
    keys: dict[tuple[int, int], int] = {}
    arc_of_key: dict[tuple[int, int, int], int] = {}
    for a, (u, v) in enumerate(drive.arcs.tolist()):
        if u == v:  # a zero-length self-loop carries no route
            continue
        k = keys.get((u, v), 0)
        keys[(u, v)] = k + 1
        G.add_edge(u, v, k, length=float(length[a]), highway="unclassified", speed_kph=50.0)
        arc_of_key[(u, v, k)] = a
    # every arc: the extract is cut around the drive, so roads crossing its edge are not strongly connected
    net = RoadNetwork.from_graph(G, allow_uturns=True, name=f"kubicka-{drive.name}", strongly_connected=False)
    arc_of_state = np.array([arc_of_key[(int(u), int(v), int(k))] for u, v, k in net.segment_ids], dtype=np.int64)
    return net, arc_of_state


def correct_fraction(true_arcs: np.ndarray, got_arcs: np.ndarray, arc_length: np.ndarray) -> dict[str, float]:
    """1 - (added + missed) / true length, over arcs counted with multiplicity."""
    n = arc_length.size
    t = np.bincount(true_arcs, minlength=n)
    g = np.bincount(got_arcs, minlength=n) if got_arcs.size else np.zeros(n, dtype=np.int64)
    added = float((np.maximum(g - t, 0) * arc_length).sum())
    missed = float((np.maximum(t - g, 0) * arc_length).sum())
    true_len = float(arc_length[true_arcs].sum())
    return {"true_m": true_len, "added_m": added, "missed_m": missed, "correct": 1.0 - (added + missed) / true_len}


def matched_states(result: object) -> np.ndarray:
    """States of the match: its pieces' if it reports them (gaps not filled in), else its one path."""
    pieces = getattr(result, "pieces", None)
    if pieces is None:
        return np.asarray(result.states, dtype=np.int64)  # type: ignore[attr-defined]
    return np.concatenate([np.asarray(p.states, dtype=np.int64) for p in pieces] or [np.zeros(0, np.int64)])


def load_reference(rev: str) -> ModuleType | None:
    """``maxent_irl/roads/matching.py`` of git revision ``rev`` as a module (None if git cannot show it)."""
    try:
        src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:maxent_irl/roads/matching.py"],
                             check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        logging.warning("no reference matcher from %r: %s", rev, exc)
        return None
    path = Path(tempfile.mkdtemp(prefix="bench_kubicka_")) / "matching_reference.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("matching_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def timed_match(matcher_cls: type, net: RoadNetwork, trace: Trace) -> tuple[object, float, float]:
    """The result, its wall-clock and its CPU seconds (the process's, all threads)."""
    net._routers.clear()  # cold: a new network, no cached route searches (as for every drive)
    matcher = matcher_cls(net)
    t0, c0 = time.perf_counter(), time.process_time()
    result = matcher.match(trace)
    return result, time.perf_counter() - t0, time.process_time() - c0


def run(data: Path, drives: list[str] | None, reference: str, times: bool = True) -> dict[str, object]:
    folders = sorted(p for p in data.iterdir() if p.is_dir() and (drives is None or p.name in drives))
    if not folders:
        raise SystemExit(f"no drive folders in {data}")
    ref = None if reference == "none" else load_reference(reference)
    rows = []
    head = f"{'drive':>8} {'points':>6} {'states':>7} {'true km':>7} {'correct':>8} {'added m':>8} {'missed m':>8} "
    head += f"{'pieces':>6} {'pts/s':>7}" + (f" {'ref corr':>8} {'ref pts/s':>9}" if ref else "")
    print(head)
    for folder in folders:
        drive = load_drive(folder)
        net, arc_of_state = build_network(drive)
        trace = Trace(drive.track[:, :2], drive.track[:, 2] if times else None, drive.name)
        L = drive.arc_length_m
        row: dict[str, object] = {"drive": drive.name, "points": len(trace), "states": net.n_states}
        if ref is not None:
            r_ref, t_ref, c_ref = timed_match(ref.MapMatcher, net, trace)
            score = correct_fraction(drive.route, arc_of_state[matched_states(r_ref)], L)
            row.update(ref_correct=score["correct"], ref_seconds=t_ref, ref_cpu_seconds=c_ref)
        result, seconds, cpu = timed_match(MapMatcher, net, trace)
        score = correct_fraction(drive.route, arc_of_state[matched_states(result)], L)
        row.update(score, seconds=seconds, cpu_seconds=cpu, pieces=len(getattr(result, "pieces", [None])))
        rows.append(row)
        line = (f"{drive.name:>8} {len(trace):6d} {net.n_states:7d} {score['true_m'] / 1000:7.2f} "
                f"{100 * score['correct']:7.2f}% {score['added_m']:8.0f} {score['missed_m']:8.0f} "
                f"{row['pieces']:6d} {len(trace) / seconds:7.0f}")
        if ref is not None:
            line += f" {100 * row['ref_correct']:7.2f}% {len(trace) / row['ref_seconds']:9.0f}"
        print(line, flush=True)
    true = np.array([r["true_m"] for r in rows])
    points = sum(r["points"] for r in rows)
    summary: dict[str, object] = {
        "drives": len(rows), "points": points,
        "correct_weighted": float(np.sum(true * np.array([r["correct"] for r in rows])) / true.sum()),
        "points_per_s": points / sum(r["seconds"] for r in rows),
        "points_per_cpu_s": points / sum(r["cpu_seconds"] for r in rows),
    }
    if ref is not None:
        summary["reference"] = reference
        summary["ref_correct_weighted"] = float(
            np.sum(true * np.array([r["ref_correct"] for r in rows])) / true.sum())
        summary["ref_points_per_s"] = points / sum(r["ref_seconds"] for r in rows)
        summary["ref_points_per_cpu_s"] = points / sum(r["ref_cpu_seconds"] for r in rows)
        summary["speed_ratio"] = summary["points_per_s"] / summary["ref_points_per_s"]
        summary["cpu_speed_ratio"] = summary["points_per_cpu_s"] / summary["ref_points_per_cpu_s"]
    print(f"overall: {len(rows)} drives, {points} points, length-weighted correct fraction "
          f"{100 * summary['correct_weighted']:.2f}%, {summary['points_per_s']:.0f} points/s "
          f"({summary['points_per_cpu_s']:.0f} per CPU second)")
    if ref is not None:
        print(f"reference ({reference}): {100 * summary['ref_correct_weighted']:.2f}%, "
              f"{summary['ref_points_per_s']:.0f} points/s ({summary['ref_points_per_cpu_s']:.0f} per CPU second); "
              f"speed ratio new / reference {summary['speed_ratio']:.2f} (CPU: {summary['cpu_speed_ratio']:.2f})")
    return {"summary": summary, "drives": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of drive folders")
    parser.add_argument("--drives", nargs="*", default=None, help="only these drive names")
    parser.add_argument("--reference", default=PRE_CHANGE,
                        help="git revision whose matcher is the speed/accuracy reference ('none': skip); default: "
                             "the matcher before this benchmark existed")
    parser.add_argument("--no-times", action="store_true", help="match the tracks without their timestamps")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out = run(args.data, args.drives, args.reference, times=not args.no_times)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
