"""Porto taxi trips through the real service: upload, train with the defaults, check the weights, time queries.

Issue 14's "must show", end to end over HTTP on ``../shared/data/porto`` (see its README.md):

1. **Service.** ``python -m app serve`` (uvicorn with the request timeouts, as ``./scripts/serve``)
   in a subprocess on a free port, with a fresh data dir, ``ROUTEIRL_NETWORK`` = the Porto
   GraphML, ``ROUTEIRL_DEMO=never`` (no simulated trips mixed in), no API key (localhost only).
2. **Upload.** ``train.1k.csv`` (POLYLINE of ``[lon, lat]`` every 15 s from TIMESTAMP) as the
   API's JSON ``{"trips": [{"id": TRIP_ID, "points": ..., "times": ...}]}``, ``--batch`` trips
   per request (limits: 2,000 trips, 200,000 points, 20 MB per upload), ``?tag=porto-1k``.
   The service may split a trace at stops: every piece comes back stored (``accepted``, with
   the TRIP_ID as ``trace_id``) or ``rejected`` with a reason. Rows with fewer than 2 fixes are
   not sendable (the schema asks for 2 points) and are counted as such.
3. **Train.** ``POST /v1/models {}``; the job is polled to its end. Every stored trip must be
   used or set aside with a reason (``used + set_aside == stored``), else exit 2.
4. **Weights.** ``GET /v1/models/{id}``: each feature's weight, standard error and the API's
   ``seconds`` (anchored by ``weights_as_seconds``: a km of residential road at 30-50 km/h
   costs what driving it at 50 km/h takes, 72 s, so ``km_residential`` is 72 s/km by
   construction and every other figure scales with it).
5. **Plausibility rule** (exit 1 if it fails):

   a. every feature is ``learned`` (finite weight, finite positive SE) or ``absent`` (no
      weight: no training trip has it); none ``not_trained`` with the default options;
   b. the anchor is a cost that the data determine: ``w(km_residential) < 0`` and
      ``|w| >= 3 SE`` (else no figure in seconds means anything);
   c. each cost ``s`` in seconds lies in its physical range, up to 2 standard errors:
      ``lo - 2 se_s <= s <= hi + 2 se_s``, where ``se_s = SE * 72 / |w(km_residential)|`` (the
      anchor's own uncertainty ignored, which makes the test stricter):
      - a km of each kind of road the network has, i.e. each set of per-km features its
        segments carry (class + speed bin + lane bin, e.g. ``km_trunk + km_speed_70_90 +
        km_lanes_2``): ``[0, 720]`` s/km: driving further is no gain in itself, and no km is
        worth more than walking it (5 km/h). Its SE is bounded by the sum of the features' SEs
        (the API gives no covariance), which makes this test more lenient. ``km_<class>`` alone is
        the cost of a km at 30-50 km/h on one lane, a road that may not exist (a motorway at
        30-50 km/h), so it is judged only through these kinds;
      - ``km_speed_*``, ``km_lanes_*`` alone (adjustments per km): ``[-720, 720]`` s/km;
      - ``turn_*``, ``segment`` (per occurrence): ``[-300, 300]`` s: no turn or junction is
        worth more than 5 minutes of driving, either way.
   A point estimate outside its range but within 2 SE of it is reported as weakly supported.
   The API's ``seconds`` must also equal ``-w * 72 / -w(km_residential)`` (consistency). The
   kinds of road come from the network as the service built it (its cached ``.npz``, same
   fingerprint), with the km the stored trips drive on each (``GET /v1/network/usage``).
6. **Queries.** Once every API process has loaded the new model (``/ready``),
   ``GET /v1/destinations`` with the first ``--fraction`` (60 %) of the fixes of
   ``--queries`` (200) stored trips (the latest by start time that were stored whole), one
   at a time on one keep-alive connection: p50/p99 latency (these trips are in the training
   set: the latency is the point, the distance error is printed only as a sanity check).

The machine is shared (2 cores, other benchmarks running): timings are noisy.

    .venv/bin/python benchmarks/bench_porto_service.py     # 20-25 min on 2 shared cores (training ~15 min)
    .venv/bin/python benchmarks/bench_porto_service.py --json /tmp/porto_service.json
"""

from __future__ import annotations

import argparse
import csv
import http.client
import io
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: ``../shared/data/porto`` beside the repository (a worktree under ``wt/`` looks one level higher too).
DATA = next((p for p in (ROOT.parent / "shared/data/porto", ROOT.parents[1] / "shared/data/porto") if p.exists()),
            ROOT.parent / "shared/data/porto")
NETWORK_FILE = "porto_center_drive.graphml.gz"
TRIPS_FILE = "train.1k.csv"
INTERVAL_S = 15.0
TAG = "porto-1k"

#: The anchor of the API's seconds (``weights_as_seconds``): a km of residential road at 50 km/h.
ANCHOR = "km_residential"
ANCHOR_SECONDS_PER_KM = 3600.0 / 50.0
#: Walking pace, 5 km/h: no km of road is worth more than walking it instead.
WALK_SECONDS_PER_KM = 720.0
#: No single turn or junction is worth more than 5 minutes of driving.
EVENT_SECONDS = 300.0
#: Standard errors of slack in the range test, and the anchor's least z-score.
SE_SLACK = 2.0
ANCHOR_MIN_Z = 3.0


# --------------------------------------------------------------------------------- data -> uploads
@dataclass
class Row:
    trip_id: str
    start: int
    points: list[list[float]]


def read_rows(path: Path) -> list[Row]:
    with path.open(newline="") as fh:
        return [Row(r["TRIP_ID"], int(r["TIMESTAMP"]), json.loads(r["POLYLINE"])) for r in csv.DictReader(fh)]


def upload_trip(row: Row) -> dict[str, Any]:
    """One trip of the API's JSON upload: the TRIP_ID as its id, a fix every 15 s from TIMESTAMP."""
    return {"id": row.trip_id, "points": row.points,
            "times": [row.start + INTERVAL_S * i for i in range(len(row.points))]}


def batches(rows: list[Row], size: int, max_points: int = 200_000, max_trips: int = 2_000) -> list[list[Row]]:
    """Consecutive rows in uploads of at most ``size`` trips and within the per-request limits."""
    out: list[list[Row]] = []
    cur: list[Row] = []
    n_points = 0
    for r in rows:
        if cur and (len(cur) >= min(size, max_trips) or n_points + len(r.points) > max_points):
            out.append(cur)
            cur, n_points = [], 0
        cur.append(r)
        n_points += len(r.points)
    if cur:
        out.append(cur)
    return out


@dataclass
class UploadTally:
    """What became of every row: its pieces (the service may split a trace at stops), stored or rejected."""

    not_sent: dict[str, str] = field(default_factory=dict)  # trip id -> reason
    stored: dict[str, list[int]] = field(default_factory=dict)  # trip id -> stored trip ids
    rejected: dict[str, list[str]] = field(default_factory=dict)  # trip id -> reasons of its rejected pieces
    split: set[str] = field(default_factory=set)  # trip ids whose trace the service split (pieces ``<id>#<k>``)
    stored_points: dict[int, int] = field(default_factory=dict)  # stored id -> GPS points
    trace_of: dict[int, str] = field(default_factory=dict)  # stored id -> the piece's trace id
    requests: list[dict[str, Any]] = field(default_factory=list)

    def add_answer(self, status: int, body: dict[str, Any], sent: list[Row]) -> None:
        """Record one upload's answer (201 with accepted/rejected, or 422 no_trips_accepted)."""
        ids = {r.trip_id for r in sent}

        def row_of(trace_id: str) -> str:
            """The sent trip of a piece: the service names the pieces of a split trace ``<trace_id>#<k>``."""
            if trace_id in ids:
                return trace_id
            base = trace_id.rsplit("#", 1)[0]
            self.split.add(base)
            return base

        if status == 201:
            for a in body["accepted"]:
                self.stored.setdefault(row_of(a["trace_id"]), []).append(a["id"])
                self.stored_points[a["id"]] = a["n_points"]
                self.trace_of[a["id"]] = a["trace_id"]
            for r in body["rejected"]:
                self.rejected.setdefault(row_of(r["trace_id"]), []).append(r["reason"])
        elif status == 422 and body.get("code") == "no_trips_accepted":  # nothing stored; the listing is capped
            for r in body["details"]["rejected"]:
                if "trace_id" in r:
                    self.rejected.setdefault(row_of(r["trace_id"]), []).append(r["reason"])
            for row in sent:
                if row.trip_id not in self.rejected:
                    self.rejected[row.trip_id] = ["(not listed in the capped 422 answer)"]
        else:
            raise RuntimeError(f"upload answered {status}: {json.dumps(body)[:1000]}")

    def stored_whole(self, trip_id: str) -> bool:
        """Sent, not split, stored as one trip."""
        return trip_id not in self.split and len(self.stored.get(trip_id, [])) == 1

    def outcome(self, rows: list[Row]) -> dict[str, Any]:
        """Per row: stored whole / split (pieces stored, rejected by reason) / rejected by reason / not sent."""
        by_outcome: Counter[str] = Counter()
        rejected_by_reason: Counter[str] = Counter()
        pieces_rejected_by_reason: Counter[str] = Counter()
        examples: dict[str, list[str]] = {}
        for row in rows:
            tid = row.trip_id
            stored, rejected = self.stored.get(tid, []), self.rejected.get(tid, [])
            pieces_rejected_by_reason.update(rejected)
            reasons = "+".join(sorted(set(rejected)))
            if tid in self.not_sent:
                key = f"not sent: {self.not_sent[tid]}"
            elif not stored:
                rejected_by_reason[reasons or "(no answer)"] += 1
                key = f"rejected{' (split, every piece)' if tid in self.split else ''}: {reasons or '(no answer)'}"
            elif tid not in self.split:
                key = "stored whole"
            elif not rejected:
                key = "split at stops, every piece stored"
            else:
                key = f"split at stops, some pieces stored, others rejected: {reasons}"
            by_outcome[key] += 1
            examples.setdefault(key, [])
            if len(examples[key]) < 3:
                examples[key].append(tid)
        return {
            "rows": len(rows),
            "sent": len(rows) - len(self.not_sent),
            "split": len(self.split),
            "with_a_stored_piece": sum(1 for r in rows if self.stored.get(r.trip_id)),
            "rejected_whole": sum(rejected_by_reason.values()),
            "rejected_whole_by_reason": dict(rejected_by_reason.most_common()),
            "stored_trips": sum(len(v) for v in self.stored.values()),
            "rejected_pieces": sum(pieces_rejected_by_reason.values()),
            "rejected_pieces_by_reason": dict(pieces_rejected_by_reason.most_common()),
            "by_outcome": dict(by_outcome.most_common()),
            "examples": examples,
        }


# --------------------------------------------------------------------------------- plausibility
def feature_range(name: str) -> tuple[float, float, str]:
    """The physical range of a feature's own cost in seconds, and its unit (see the module docstring).

    ``km_<class>`` alone is the cost of a km at the reference speed (30-50 km/h) on one lane, a road
    that may not exist (a motorway at 30-50 km/h): it is judged in the combinations of
    :func:`km_combinations`, so its own range is unbounded here.
    """
    if name.startswith(("km_speed_", "km_lanes_")):
        return -WALK_SECONDS_PER_KM, WALK_SECONDS_PER_KM, "s/km"
    if name.startswith("km_"):
        return -math.inf, math.inf, "s/km"
    return -EVENT_SECONDS, EVENT_SECONDS, "s"


def km_combinations(feature_names: list[str], features: Any, dst: Any, length_m: Any,
                    trips_per_state: dict[int, int]) -> list[dict[str, Any]]:
    """The kinds of road of a network: each set of per-km features a segment has (class, speed and lane bins).

    From the MDP's feature matrix (rows entering a segment carry its km on its class, speed-bin
    and lane-bin columns), with the km of such road in the network and driven by stored trips
    (``trips_per_state``: trips per segment, from ``GET /v1/network/usage``).
    """
    import numpy as np

    km_cols = [j for j, n in enumerate(feature_names) if n.startswith("km_")]
    first_row: dict[int, int] = {}
    for row, state in enumerate(np.asarray(dst).tolist()):
        first_row.setdefault(state, row)
    kinds: dict[tuple[str, ...], dict[str, Any]] = {}
    F = np.asarray(features)
    for state, row in first_row.items():
        key = tuple(feature_names[j] for j in km_cols if F[row, j] != 0)
        km = float(length_m[state]) / 1000.0
        kind = kinds.setdefault(key, {"features": list(key), "segments": 0, "km_network": 0.0, "km_driven": 0.0})
        kind["segments"] += 1
        kind["km_network"] += km
        kind["km_driven"] += km * trips_per_state.get(state, 0)
    return sorted(kinds.values(), key=lambda k: (-k["km_driven"], -k["km_network"]))


def check_weights(features: list[dict[str, Any]], kinds: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Apply the plausibility rule to the API's ``features`` (and the network's kinds of road, when known)."""
    problems: list[str] = []
    weak: list[str] = []
    rows: list[dict[str, Any]] = []
    by_name = {f["name"]: f for f in features}
    anchor = by_name.get(ANCHOR)
    scale = None
    if anchor is None or anchor["status"] != "learned" or anchor["weight"] is None:
        problems.append(f"(b) the anchor {ANCHOR} is not learned: no figure in seconds")
    else:
        w, se = float(anchor["weight"]), anchor["standard_error"]
        z = abs(w) / se if se else math.inf
        if not w < 0:
            problems.append(f"(b) the anchor {ANCHOR} has weight {w:.4g} >= 0: not a cost")
        elif se is None or z < ANCHOR_MIN_Z:
            problems.append(f"(b) the anchor {ANCHOR} = {w:.4g} ± {se} is not determined (|w|/SE = {z:.2f} "
                            f"< {ANCHOR_MIN_Z:g})")
        if w < 0:
            scale = ANCHOR_SECONDS_PER_KM / -w

    def judge(what: str, s: float, se_s: float, lo: float, hi: float, unit: str) -> str:
        if s < lo - SE_SLACK * se_s or s > hi + SE_SLACK * se_s:
            problems.append(f"(c) {what} = {s:.1f} ± {se_s:.1f} {unit} lies outside [{lo:g}, {hi:g}] {unit} "
                            f"by more than {SE_SLACK:g} SE")
            return "FAIL"
        if s < lo or s > hi:
            weak.append(f"{what} = {s:.1f} ± {se_s:.1f} {unit} is outside [{lo:g}, {hi:g}] {unit} but within "
                        f"{SE_SLACK:g} SE of it")
            return "weak"
        return "ok"

    for f in features:
        name, status, w, se = f["name"], f["status"], f["weight"], f["standard_error"]
        lo, hi, unit = feature_range(name)
        row: dict[str, Any] = {"name": name, "status": status, "weight": w, "standard_error": se,
                               "seconds": f.get("seconds"), "unit": unit, "range": [lo, hi], "verdict": "ok"}
        rows.append(row)
        if status == "absent":
            if w is not None:
                problems.append(f"(a) {name} is absent but has weight {w}")
                row["verdict"] = "FAIL"
            else:
                row["verdict"] = "absent"
            continue
        if status != "learned":
            problems.append(f"(a) {name} is {status} with the default options")
            row["verdict"] = "FAIL"
            continue
        if w is None or not math.isfinite(w) or se is None or not (math.isfinite(se) and se > 0):
            problems.append(f"(a) {name} is learned without a finite weight and standard error ({w} ± {se})")
            row["verdict"] = "FAIL"
            continue
        if scale is None:
            row["verdict"] = "no seconds"
            continue
        s, se_s = -w * scale, se * scale
        row["seconds_ours"], row["se_seconds"] = s, se_s
        api_s = f.get("seconds")
        if api_s is None or not math.isclose(api_s, s, rel_tol=1e-6, abs_tol=1e-6):
            problems.append(f"{name}: the API's seconds {api_s} differ from -w * 72 / -w({ANCHOR}) = {s:.6g}")
            row["verdict"] = "FAIL"
            continue
        row["verdict"] = "see kinds" if math.isinf(lo) else judge(name, s, se_s, lo, hi, unit)

    kind_rows: list[dict[str, Any]] = []
    for kind in kinds or []:
        out = {**kind, "seconds_per_km": None, "se_bound": None, "verdict": "ok"}
        kind_rows.append(out)
        parts = [by_name.get(n) for n in kind["features"]]
        if scale is None or any(p is None or p["status"] != "learned" or p["weight"] is None
                                or p["standard_error"] is None for p in parts):
            out["verdict"] = "not checked (a feature absent or without SE)"
            continue
        w = sum(float(p["weight"]) for p in parts if p is not None)
        se_bound = sum(float(p["standard_error"]) for p in parts if p is not None)  # >= SE of the sum
        out["seconds_per_km"], out["se_bound"] = -w * scale, se_bound * scale
        out["verdict"] = judge(f"a km of {'+'.join(kind['features'])}", -w * scale, se_bound * scale, 0.0,
                               WALK_SECONDS_PER_KM, "s/km")
    if kinds is None:
        problems.append("(c) the network's kinds of road are unknown: the per-km costs were not checked")
    return {"passed": not problems, "problems": problems, "weakly_supported": weak, "features": rows,
            "kinds": kind_rows, "seconds_per_weight_unit": scale}


# --------------------------------------------------------------------------------- HTTP
class Http:
    """One keep-alive connection (stdlib), reopened when the server says ``Connection: close``."""

    def __init__(self, port: int, timeout: float = 600.0) -> None:
        self.port, self.timeout = port, timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = {"content-type": "application/json"} if data is not None else {}
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                payload = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()  # the server closed an idle keep-alive connection: once more on a new one
                if attempt or method != "GET":
                    raise
                continue
            if (resp.getheader("connection") or "").lower() == "close":
                self.close()
            return resp.status, json.loads(payload) if payload else None
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_service(network: Path, data_dir: Path, port: int, workers: int, log_file: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTEIRL_")}
    env.update({"ROUTEIRL_NETWORK": str(network), "ROUTEIRL_DATA_DIR": str(data_dir), "ROUTEIRL_DEMO": "never",
                "ROUTEIRL_HOST": "127.0.0.1", "ROUTEIRL_PORT": str(port), "ROUTEIRL_WORKERS": str(workers),
                "ROUTEIRL_LOG_LEVEL": "info"})
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    with log_file.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "app", "serve"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def wait_healthy(api: Http, proc: subprocess.Popen[bytes], log_file: Path, timeout: float) -> dict[str, Any]:
    """``/health`` answers; ``/ready`` stays 503 until a model is active (no demo on this network)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, _ = api.request("GET", "/health")
            if status == 200:
                return api.request("GET", "/ready")[1]
        except OSError:
            api.close()
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the service did not start (exit {proc.poll()}):\n{log_file.read_text()[-3000:]}")
        time.sleep(0.5)


def stop_service(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------------- steps
def upload_all(api: Http, rows: list[Row], batch: int) -> tuple[UploadTally, float]:
    tally = UploadTally()
    sendable = []
    for r in rows:
        if len(r.points) < 2:
            tally.not_sent[r.trip_id] = f"{len(r.points)} GPS fix(es) (the upload schema needs 2)"
        else:
            sendable.append(r)
    t0 = time.perf_counter()
    for i, chunk in enumerate(batches(sendable, batch)):
        body = json.dumps({"trips": [upload_trip(r) for r in chunk]}).encode()
        t = time.perf_counter()
        status, answer = api.request("POST", f"/v1/trajectories?tag={TAG}", raw=body)
        elapsed = time.perf_counter() - t
        tally.add_answer(status, answer, chunk)
        n_acc = len(answer.get("accepted", [])) if status == 201 else 0
        n_rej = len(answer.get("rejected", [])) if status == 201 else sum(answer["details"]["rejected_by_reason"]
                                                                           .values())
        n_points = sum(len(r.points) for r in chunk)
        tally.requests.append({"trips": len(chunk), "points": n_points, "bytes": len(body), "status": status,
                               "stored": n_acc, "rejected_pieces": n_rej, "seconds": round(elapsed, 2)})
        print(f"  upload {i + 1}: {len(chunk)} trips, {n_points} points, {len(body) / 1e6:.2f} MB -> {status}, "
              f"{n_acc} stored, {n_rej} pieces rejected, {elapsed:.1f} s")
    return tally, time.perf_counter() - t0


def train(api: Http, timeout: float) -> tuple[dict[str, Any], float]:
    t0 = time.perf_counter()
    status, job = api.request("POST", "/v1/models", {})
    if status != 202:
        raise SystemExit(f"POST /v1/models {{}} answered {status}: {job}")
    print(f"  job {job['id']} queued with options {job['options']}")
    last_stage, last_print = None, 0.0
    while True:
        status, job = api.request("GET", f"/v1/jobs/{job['id']}")
        progress = job.get("progress") or {}
        stage = progress.get("stage")
        now = time.perf_counter() - t0
        if stage != last_stage or now - last_print >= 30:
            keys = ("iteration", "log_likelihood", "grad_norm", "fraction", "n_train", "n_heldout", "n_set_aside")
            shown = " ".join(f"{k}={progress[k]:.6g}" if isinstance(progress[k], float) else f"{k}={progress[k]}"
                             for k in keys if progress.get(k) is not None)
            print(f"  {now:7.1f} s  {job['status']}: {stage}  {shown}")
            last_stage, last_print = stage, now
        if job["status"] not in ("queued", "running"):
            return job, time.perf_counter() - t0
        if time.perf_counter() - t0 > timeout:
            api.request("DELETE", f"/v1/jobs/{job['id']}")
            raise SystemExit(f"the training job did not finish within {timeout:g} s (cancelled): {job}")
        time.sleep(1.0)


def service_network(network: Path, data_dir: Path, fingerprint: str) -> Any:
    """The service's :class:`RoadNetwork` (its cached build, else the file); ``None`` if the fingerprints differ."""
    sys.path.insert(0, str(ROOT))
    from maxent_irl.roads import RoadNetwork

    cached = sorted((data_dir / "cache").glob("*.npz"))
    net = RoadNetwork.from_npz(cached[0]) if cached else RoadNetwork.load(network)
    if net.fingerprint != fingerprint:
        print(f"  the network loaded here ({net.fingerprint}) is not the service's ({fingerprint})")
        return None
    return net


def network_kinds(api: Http, net: Any) -> list[dict[str, Any]]:
    """:func:`km_combinations` of the service's network, with the trips' usage of each segment."""
    usage = api.request("GET", "/v1/network/usage")[1]
    trips = dict(zip(usage["states"], usage["trips"], strict=True))
    return km_combinations(list(net.mdp.feature_names), net.mdp.features, net.mdp.dst, net.segment_length_m, trips)


def positive_rewards(net: Any, model: dict[str, Any]) -> dict[str, Any]:
    """Transitions the model rewards (``w · features > 0``): with any, the core's ``log_rows`` (every
    destination query) solves each row again in log space, with Bellman-Ford (``maxent_irl.soft_values``)."""
    import numpy as np

    names = list(model["weights"])
    mdp = net.mdp.select_features(names)
    logw = mdp.features @ np.array([model["weights"][n] for n in names], dtype=float)
    pos = np.flatnonzero(logw > 0)
    examples = [{"reward": round(float(logw[j]), 4), "highway": str(net.segment_highway[mdp.dst[j]]),
                 "length_m": round(float(net.segment_length_m[mdp.dst[j]]), 1),
                 "features": {n: round(float(v), 4) for n, v in zip(names, mdp.features[j], strict=True) if v}}
                for j in pos[np.argsort(-logw[pos])][:5]]
    return {"transitions": int(mdp.n_transitions), "positive": int(pos.size),
            "max_reward": round(float(logw.max()), 4), "examples": examples}


def wait_model_loaded(port: int, model_id: int, timeout: float, in_a_row: int = 6) -> float:
    """Seconds until ``/ready`` names the model on ``in_a_row`` fresh connections (they spread over the processes).

    The API processes load a newly activated model at their next tick (``ROUTEIRL_WORKER_POLL_S``):
    until then a query answers 409 ``no_active_model``.
    """
    t0 = time.perf_counter()
    ok = 0
    while ok < in_a_row:
        fresh = Http(port)
        status, body = fresh.request("GET", "/ready")
        fresh.close()
        ok = ok + 1 if status == 200 and body.get("model_version") == model_id else 0
        if time.perf_counter() - t0 > timeout:
            raise SystemExit(f"model {model_id} not loaded by the API after {timeout:g} s: /ready {status} {body}")
        time.sleep(0.05)
    return round(time.perf_counter() - t0, 2)


def haversine_m(a: list[float], b: list[float]) -> float:
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def percentile(values: list[float], p: float) -> float:
    xs = sorted(values)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))] if xs else float("nan")


def time_queries(api: Http, rows: list[Row], tally: UploadTally, n: int, fraction: float) -> dict[str, Any]:
    """Sequential GET /v1/destinations on the first ``fraction`` of the fixes of the latest trips stored whole."""
    whole = [r for r in rows if tally.stored_whole(r.trip_id)]
    chosen = sorted(whole, key=lambda r: (r.start, r.trip_id))[-n:]
    for r in chosen[:3]:  # warm-up (first answers build caches), not timed
        api.request("GET", _query_path(r, fraction))
    lat_ms: list[float] = []
    statuses: Counter[str] = Counter()
    errors_m: list[float] = []
    for r in chosen:
        path = _query_path(r, fraction)
        t = time.perf_counter()
        status, body = api.request("GET", path)
        lat_ms.append((time.perf_counter() - t) * 1000)
        statuses[str(status) if status == 200 else f"{status} {body.get('code')}"] += 1
        if status == 200 and body.get("expected_destination"):
            errors_m.append(haversine_m(body["expected_destination"]["geometry"]["coordinates"], r.points[-1]))
    n_points = [n_observed(len(r.points), fraction) for r in chosen]
    return {
        "queries": len(chosen), "fraction": fraction, "statuses": dict(statuses),
        "points_per_query": {"min": min(n_points, default=0), "median": statistics.median(n_points or [0]),
                             "max": max(n_points, default=0)},
        "p50_ms": round(percentile(lat_ms, 50), 1), "p90_ms": round(percentile(lat_ms, 90), 1),
        "p99_ms": round(percentile(lat_ms, 99), 1), "max_ms": round(max(lat_ms, default=float("nan")), 1),
        "mean_ms": round(statistics.fmean(lat_ms), 1) if lat_ms else None,
        "expected_destination_error_km": {
            "mean": round(statistics.fmean(errors_m) / 1000, 3) if errors_m else None,
            "median": round(statistics.median(errors_m) / 1000, 3) if errors_m else None,
            "note": "in-sample (these trips trained the model): a sanity check, not a score"},
    }


def n_observed(n: int, fraction: float) -> int:
    return max(2, min(n - 1, round(fraction * n)))


def _query_path(r: Row, fraction: float) -> str:
    pts = r.points[: n_observed(len(r.points), fraction)]
    coords = ";".join(f"{lon:.6f},{lat:.6f}" for lon, lat in pts)
    return "/v1/destinations?" + urllib.parse.urlencode({"coordinates": coords, "top": 5})


# --------------------------------------------------------------------------------- report
def _fmt(x: Any, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def print_weights(check: dict[str, Any]) -> None:
    print(f"  {'feature':20s} {'status':8s} {'weight':>9s} {'± SE':>8s} {'z':>6s} {'seconds':>9s} {'± SE':>8s} "
          f"{'unit':5s} {'range':>14s}  verdict")
    for f in check["features"]:
        z = abs(f["weight"]) / f["standard_error"] if f["weight"] is not None and f["standard_error"] else None
        lo, hi = f["range"]
        print(f"  {f['name']:20s} {f['status']:8s} {_fmt(f['weight'], '9.4f')} {_fmt(f['standard_error'], '8.4f')} "
              f"{_fmt(z, '6.1f')} {_fmt(f['seconds'], '9.1f')} {_fmt(f.get('se_seconds'), '8.1f')} {f['unit']:5s} "
              f"{'(kinds)' if math.isinf(lo) else f'[{lo:g}, {hi:g}]':>14s}  {f['verdict']}")


def print_kinds(check: dict[str, Any]) -> None:
    print(f"  {'kind of road (its per-km features)':52s} {'segments':>8s} {'km':>7s} {'trip-km':>8s} "
          f"{'s/km':>7s} {'± SE*':>6s}  verdict")
    for k in check["kinds"]:
        print(f"  {'+'.join(k['features']) or '(none)':52s} {k['segments']:8d} {k['km_network']:7.1f} "
              f"{k['km_driven']:8.1f} {_fmt(k['seconds_per_km'], '7.1f')} {_fmt(k['se_bound'], '6.1f')}  "
              f"{k['verdict']}")
    print("  * the sum of the features' SEs, a bound on the SE of their sum (the API gives no covariance)")


RULE_TEXT = (
    "(a) every feature learned (finite weight and SE) or absent (no weight); "
    f"(b) the anchor {ANCHOR} < 0 with |w|/SE >= {ANCHOR_MIN_Z:g} (the API's seconds: {ANCHOR} = 72 s/km); "
    f"(c) costs in seconds within their range up to {SE_SLACK:g} SE: a km of every kind of road of the network "
    f"(class + speed-bin + lane-bin features) [0, {WALK_SECONDS_PER_KM:g}] s/km (no gain, at most walking pace), "
    f"km_speed_*/km_lanes_* alone [-{WALK_SECONDS_PER_KM:g}, {WALK_SECONDS_PER_KM:g}] s/km, "
    f"turn_*/segment [-{EVENT_SECONDS:g}, {EVENT_SECONDS:g}] s per occurrence; "
    f"the API's seconds = -w * 72 / -w({ANCHOR})"
)


class _StopError(Exception):
    """The run cannot go on (e.g. the training job failed); the summary is still printed."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA, help=f"folder with {TRIPS_FILE} and {NETWORK_FILE}")
    ap.add_argument("--workers", type=int, default=2, help="API processes (ROUTEIRL_WORKERS)")
    ap.add_argument("--batch", type=int, default=100, help="trips per upload request")
    ap.add_argument("--queries", type=int, default=200, help="destination queries to time")
    ap.add_argument("--fraction", type=float, default=0.6, help="share of a trip's fixes in its query")
    ap.add_argument("--train-timeout", type=float, default=3600.0, help="seconds to wait for the training job")
    ap.add_argument("--json", type=Path, help="write the summary here too")
    ap.add_argument("--keep", type=Path, help="use this folder for the service's data and log (kept afterwards)")
    args = ap.parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # progress as it happens, also into a file

    network, trips_csv = args.data / NETWORK_FILE, args.data / TRIPS_FILE
    for p in (network, trips_csv):
        if not p.exists():
            raise SystemExit(f"missing {p} (see ../shared/data/porto/README.md; --data to point elsewhere)")
    rows = read_rows(trips_csv)
    print(f"data: {trips_csv} ({len(rows)} rows, {sum(len(r.points) for r in rows)} fixes); network: {network}")
    print("note: the machine is shared (2 cores, other benchmarks running): timings are noisy")

    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="bench_porto_service_")
    work = Path(tmp.name) if tmp is not None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    log_file = work / "service.log"
    port = free_port()
    t_start = time.perf_counter()
    proc = start_service(network, work / "data", port, args.workers, log_file)
    api = Http(port)
    summary: dict[str, Any] = {"data": str(args.data), "workers": args.workers, "batch": args.batch}
    code = 0
    try:
        ready = wait_healthy(api, proc, log_file, timeout=600)
        summary["startup_s"] = round(time.perf_counter() - t_start, 1)
        print(f"service on port {port} after {summary['startup_s']} s; /ready: {ready}")

        print(f"\n== upload ({args.batch} trips per request, tag {TAG}) ==")
        tally, upload_s = upload_all(api, rows, args.batch)
        up = tally.outcome(rows)
        up["seconds"] = round(upload_s, 1)
        up["requests"] = tally.requests
        summary["upload"] = up
        total_stored = api.request("GET", f"/v1/trajectories?tag={TAG}&limit=1")[1]["total"]
        print(f"  {up['rows']} rows, {up['sent']} sent in {len(tally.requests)} requests ({upload_s:.1f} s); "
              f"{up['split']} split at stops; {up['with_a_stored_piece']} with a stored piece, "
              f"{up['rejected_whole']} with none; "
              f"{up['stored_trips']} trips stored (GET /v1/trajectories total: {total_stored})")
        print("  rows by outcome:")
        for k, v in up["by_outcome"].items():
            print(f"    {v:4d}  {k}   e.g. {', '.join(up['examples'][k])}")
        print(f"  rejected pieces ({up['rejected_pieces']}) by reason: {up['rejected_pieces_by_reason']}")

        print("\n== training: POST /v1/models {} ==")
        job, train_s = train(api, args.train_timeout)
        summary["training"] = {"job_id": job["id"], "status": job["status"], "seconds": round(train_s, 1),
                               "error": job.get("error"), "options": job.get("options")}
        print(f"  job {job['id']} {job['status']} after {train_s:.1f} s")
        if job["status"] != "succeeded":
            print(f"  error: {job.get('error')}")
            print(f"  service log tail:\n{log_file.read_text()[-3000:]}")
            code = 2
            raise _StopError
        model = api.request("GET", f"/v1/models/{job['model_id']}")[1]
        m = model["metrics"]
        trips = m["trips"]
        set_aside_traces = [{**t, "trip_id": tally.trace_of.get(t["id"])} for t in trips["set_aside_trips"]]
        summary["training"].update({
            "model_id": model["id"], "used": trips["used"], "set_aside": trips["set_aside"],
            "set_aside_by_reason": trips["set_aside_by_reason"], "set_aside_examples": set_aside_traces[:10],
            "n_iter": m.get("n_iter"), "converged": m.get("converged"), "fit_seconds": m.get("fit_seconds"),
            "regularization": m.get("regularization"), "train": m.get("train"), "heldout": m.get("heldout"),
            "absent_features": m.get("absent_features")})
        print(f"  trips: {trips['used']} used, {trips['set_aside']} set aside {trips['set_aside_by_reason']}")
        for t in set_aside_traces[:5]:
            print(f"    set aside: trip {t['id']} (TRIP_ID {t['trip_id']}): {t['reason']}: {t['message'][:200]}")
        accounted = trips["used"] + trips["set_aside"]
        print(f"  every stored trip accounted for: used + set aside = {accounted}, stored = {total_stored} -> "
              f"{'yes' if accounted == total_stored else 'NO'}")
        summary["training"]["all_accounted"] = accounted == total_stored
        if accounted != total_stored:
            code = 2
        print(f"  iterations {m.get('n_iter')} (converged: {m.get('converged')}), regularization "
              f"{m.get('regularization')}, fit {m.get('fit_seconds')} s (worker's clock)")
        for part in ("train", "heldout"):
            d = m.get(part) or {}
            extra = {k: d[k] for k in ("most_likely_route_exact", "most_likely_route_overlap") if k in d}
            print(f"  {part}: {d.get('n_trips')} trips, {d.get('n_segments')} segments, log-likelihood "
                  f"{_fmt(d.get('log_likelihood'), '.1f')} ({_fmt(d.get('mean_log_likelihood_per_trip'), '.3f')} "
                  f"per trip, {_fmt(d.get('mean_log_likelihood_per_segment'), '.4f')} per segment) {extra or ''}")
        print(f"  absent features: {m.get('absent_features')}")

        print("\n== weights (reward = w · features; seconds as the API reports them) ==")
        net = service_network(network, work / "data", model["network"]["fingerprint"])
        kinds = None if net is None else network_kinds(api, net)
        check = check_weights(model["features"], kinds)
        print_weights(check)
        print("\n== per-km cost of each kind of road of the network (class + speed bin + lane bin) ==")
        print_kinds(check)
        if net is not None:
            pos = positive_rewards(net, model)
            summary["positive_rewards"] = pos
            print(f"  transitions with a positive reward (w · features > 0): {pos['positive']} of "
                  f"{pos['transitions']} (max {pos['max_reward']}); with any, every destination row is solved "
                  "again in log space (Bellman-Ford)")
            for e in pos["examples"]:
                print(f"    {e['reward']:+.4f}  {e['highway']} {e['length_m']} m  {e['features']}")
        print(f"\n== plausibility rule ==\n  {RULE_TEXT}")
        for w in check["weakly_supported"]:
            print(f"  weakly supported: {w}")
        for p in check["problems"]:
            print(f"  FAIL: {p}")
        print(f"  rule: {'PASSED' if check['passed'] else 'FAILED'}")
        summary["weights"] = check
        summary["rule"] = RULE_TEXT
        if not check["passed"] and code == 0:
            code = 1

        print(f"\n== destination queries (first {args.fraction:.0%} of the fixes, sequential, one connection) ==")
        pickup = wait_model_loaded(port, model["id"], timeout=120)
        summary["model_pickup_s"] = pickup
        print(f"  every API process answers with model {model['id']} {pickup} s after the client saw the job succeed "
              "(/ready on fresh connections)")
        q = time_queries(api, rows, tally, args.queries, args.fraction)
        summary["queries"] = q
        print(f"  {q['queries']} queries ({q['points_per_query']} points): statuses {q['statuses']}; "
              f"p50 {q['p50_ms']} ms, p90 {q['p90_ms']} ms, p99 {q['p99_ms']} ms, max {q['max_ms']} ms")
        e = q["expected_destination_error_km"]
        print(f"  expected destination vs last fix: mean {e['mean']} km, median {e['median']} km ({e['note']})")
    except _StopError:
        pass
    finally:
        api.close()
        stop_service(proc)
        if tmp is not None:
            tmp.cleanup()
    summary["exit_code"] = code
    print("\n== summary (JSON) ==")
    text = json.dumps(summary, indent=1, default=str)
    print(text)
    if args.json:
        args.json.write_text(text)
    return code


if __name__ == "__main__":
    sys.exit(main())
