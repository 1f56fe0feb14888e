"""Benchmark the routeirl API: destination-query latency while a training job runs, and ingest throughput.

By default it starts its own server the way ./scripts/serve does (``python -m uvicorn
app.main:app --workers 2``) on the embedded default network with a fresh database in a
temporary directory, waits for the demo model, then:

1. queues training jobs and waits until the worker is fitting;
2. runs ``--clients`` concurrent clients (asyncio, one keep-alive connection each, reopened
   when the server answers ``Connection: close``, see ``ROUTEIRL_KEEPALIVE_REQUESTS``) sending
   ``GET /v1/destinations`` with partial trips (the first ``--points`` GPS points of stored
   trips) for ``--duration`` seconds, and reports p50/p90/p99 latency; the job's status is
   sampled throughout, so the report says whether training really ran meanwhile;
3. posts simulated GPS trips in batches and reports ingest throughput (trips/s, including
   map matching and the durable commit).

Two load models: closed loop (the default, ``--rate 0``): each client sends its next
request as soon as the previous answer arrives, so 20 clients keep 20 requests in flight
and latency is ``clients / throughput`` (Little's law): the stricter test. ``--rate R`` is
open loop: R requests/s in total at Poisson times, latency counted from the scheduled
time (no coordinated omission).

    .venv/bin/python benchmarks/bench_api.py                 # closed loop, 20 clients, 2 server processes
    .venv/bin/python benchmarks/bench_api.py --rate 100      # open loop, 100 req/s
    .venv/bin/python benchmarks/bench_api.py --workers 1     # one server process
    .venv/bin/python benchmarks/bench_api.py --url http://127.0.0.1:8000   # an already running server
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("bench_api")

TARGET_P50_MS = 20.0
TARGET_P99_MS = 50.0


# --- plain HTTP helpers (stdlib only, so the benchmark adds no dependency) ---------------------
def http(method: str, url: str, body: Any = None, timeout: float = 60.0) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    key = os.environ.get("ROUTEIRL_API_KEY")
    if key:
        req.add_header("X-API-Key", key)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, port: int, log_file: Path, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ROUTEIRL_DATA_DIR": str(data_dir), "ROUTEIRL_LOG_LEVEL": "warning"}
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    for k in ("ROUTEIRL_DATABASE", "ROUTEIRL_NETWORK", "ROUTEIRL_API_KEY"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers), "--no-access-log"]
    with log_file.open("ab") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_ready(url: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, body = http("GET", f"{url}/ready", timeout=5)
            if status == 200:
                return body
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"server at {url} not ready after {timeout} s")
        time.sleep(0.5)


# --- the destination-query load ----------------------------------------------------------------
async def _client(host: str, port: int, paths: list[str], schedule: list[float] | None, stop_at: float,
                  latencies: list[float], errors: list[str], rng: random.Random) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = 0
    loop = asyncio.get_running_loop()
    reconnect = False
    try:
        while True:
            if schedule is not None:
                if i >= len(schedule):
                    break
                start = schedule[i]
                delay = start - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                start = loop.time()
                if start >= stop_at:
                    break
            path = paths[rng.randrange(len(paths))]
            if reconnect:  # the server ended the keep-alive connection: a real client reconnects (timed)
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                reconnect = False
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                key = name.strip().lower()
                if key == "content-length":
                    length = int(value.strip())
                elif key == "connection" and "close" in value.lower():
                    reconnect = True
            await reader.readexactly(length)
            latencies.append(loop.time() - start)
            status = int(status_line.split()[1]) if status_line else 0
            if status != 200:
                errors.append(str(status))
            i += 1
    finally:
        writer.close()


async def _load(url: str, paths: list[str], clients: int, duration: float, rate: float) -> dict[str, Any]:
    parsed = urllib.parse.urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.2
    latencies: list[float] = []
    errors: list[str] = []
    tasks = []
    for c in range(clients):
        rng = random.Random(c)
        schedule = None
        if rate > 0:  # open loop: each client at rate/clients, Poisson arrivals
            per_client = rate / clients
            times, t = [], t0 + rng.random() / per_client
            while t < t0 + duration:
                times.append(t)
                t += rng.expovariate(per_client)
            schedule = times
        tasks.append(_client(host, port, paths, schedule, t0 + duration, latencies, errors, rng))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - t0
    lat_ms = sorted(x * 1000 for x in latencies)

    def pct(p: float) -> float:
        return lat_ms[min(len(lat_ms) - 1, round(p / 100 * (len(lat_ms) - 1)))] if lat_ms else float("nan")

    return {
        "requests": len(lat_ms),
        "errors": len(errors),
        "error_statuses": sorted(set(errors)),
        "throughput_rps": round(len(lat_ms) / elapsed, 1),
        "p50_ms": round(pct(50), 2),
        "p90_ms": round(pct(90), 2),
        "p99_ms": round(pct(99), 2),
        "max_ms": round(lat_ms[-1], 2) if lat_ms else None,
        "mean_ms": round(statistics.fmean(lat_ms), 2) if lat_ms else None,
    }


# --- training in the background -----------------------------------------------------------------
def start_training(url: str, n_jobs: int) -> list[int]:
    ids = []
    for i in range(n_jobs):
        status, body = http("POST", f"{url}/v1/models", {"regularization": 0.001 * (i + 1), "max_iter": 2000,
                                                         "activate": False})
        if status != 202:
            raise SystemExit(f"cannot start training: {status} {body}")
        ids.append(body["id"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the worker is really fitting
        job = http("GET", f"{url}/v1/jobs/{ids[0]}")[1]
        if job["status"] == "running" and (job.get("progress") or {}).get("stage") == "fitting":
            return ids
        if job["status"] not in ("queued", "running"):
            raise SystemExit(f"training job ended before the benchmark: {job}")
        time.sleep(0.2)
    raise SystemExit("training did not start fitting within 60 s")


class JobSampler(threading.Thread):
    """Samples whether some job is running, to report the share of the run that overlapped training."""

    def __init__(self, url: str, ids: list[int]) -> None:
        super().__init__(daemon=True)
        self.url, self.ids = url, ids
        self.samples: list[bool] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            running = any(http("GET", f"{self.url}/v1/jobs/{j}")[1]["status"] == "running" for j in self.ids)
            self.samples.append(running)
            self.stop.wait(0.5)


# --- ingest ----------------------------------------------------------------------------------------
def ingest_benchmark(url: str, n_trips: int, batch: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from maxent_irl.roads import RoadNetwork, simulate_trips

    net = RoadNetwork.default()
    status, ready = http("GET", f"{url}/ready")
    if ready and ready.get("network", {}).get("fingerprint") != net.fingerprint:
        return {"skipped": "the server does not run the default network"}
    sims = simulate_trips(net, n_trips=n_trips, seed=12345, noise_m=8.0)
    trips = [{"id": s.trace.trace_id, "points": s.trace.points.round(7).tolist(),
              "times": s.trace.times.tolist()} for s in sims]
    accepted = rejected = points = 0
    t0 = time.perf_counter()
    for i in range(0, len(trips), batch):
        chunk = trips[i: i + batch]
        status, body = http("POST", f"{url}/v1/trajectories", {"trips": chunk}, timeout=600)
        if status != 201:
            raise SystemExit(f"ingest failed: {status} {body}")
        accepted += len(body["accepted"])
        rejected += len(body["rejected"])
        points += sum(len(t["points"]) for t in chunk)
    elapsed = time.perf_counter() - t0
    return {
        "trips_posted": len(trips),
        "accepted": accepted,
        "rejected": rejected,
        "batch_size": batch,
        "seconds": round(elapsed, 2),
        "trips_per_s": round(len(trips) / elapsed, 1),
        "points_per_s": round(points / elapsed, 0),
    }


def build_queries(url: str, n_trips: int, n_points: int) -> list[str]:
    """Partial trips: the first ``n_points`` points of stored trips, as GET paths."""
    _, page = http("GET", f"{url}/v1/trajectories?limit={n_trips}")
    paths = []
    for item in page["items"]:
        trip = http("GET", f"{url}/v1/trajectories/{item['id']}")[1]
        pts = trip["features"][0]["geometry"]["coordinates"][:n_points]
        coords = ";".join(f"{x:.6f},{y:.6f}" for x, y in pts)
        paths.append("/v1/destinations?" + urllib.parse.urlencode({"coordinates": coords, "top": 10}))
    if not paths:
        raise SystemExit("no stored trips to build queries from")
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="benchmark a running server instead of starting one")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--duration", type=float, default=15.0, help="seconds of destination queries")
    ap.add_argument("--rate", type=float, default=0.0, help="total requests/s (open loop); 0 = closed loop (default)")
    ap.add_argument("--workers", type=int, default=int(os.environ.get("ROUTEIRL_WORKERS", 2)),
                    help="server processes when the benchmark starts the server (default ROUTEIRL_WORKERS or 2)")
    ap.add_argument("--points", type=int, default=8, help="GPS points per partial trip")
    ap.add_argument("--query-trips", type=int, default=200, help="stored trips to draw partial trips from")
    ap.add_argument("--ingest-trips", type=int, default=200, help="simulated trips to post (0: skip)")
    ap.add_argument("--ingest-batch", type=int, default=50)
    ap.add_argument("--no-train", action="store_true", help="measure queries without a training job")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    proc = None
    tmp = None
    url = args.url
    results: dict[str, Any] = {"clients": args.clients, "duration_s": args.duration,
                               "mode": "closed loop" if args.rate <= 0 else f"open loop, {args.rate:g} req/s",
                               "cpus": os.cpu_count()}
    try:
        if url is None:
            tmp = tempfile.TemporaryDirectory(prefix="routeirl-bench-")
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            log.info("starting a server on %s (fresh database, default network; demo model first)", url)
            t0 = time.monotonic()
            proc = start_server(Path(tmp.name), port, Path(tmp.name) / "server.log", args.workers)
            results["server_workers"] = args.workers
            ready = wait_ready(url, 300)
            results["startup_to_ready_s"] = round(time.monotonic() - t0, 1)
        else:
            ready = wait_ready(url, 60)
        results["network"] = ready.get("network")
        results["model_version"] = ready.get("model_version")
        paths = build_queries(url, args.query_trips, args.points)
        log.info("%d partial trips of %d points as queries", len(paths), args.points)
        for path in paths:  # warm-up: each query once (fills the map matcher's route cache)
            urllib.request.urlopen(url + path, timeout=30).read()

        sampler = None
        if not args.no_train:
            ids = start_training(url, 3)
            sampler = JobSampler(url, ids)
            sampler.start()
            log.info("training jobs %s queued; worker is fitting", ids)
        log.info("destination queries: %d clients, %s, %g s", args.clients, results["mode"], args.duration)
        lat = asyncio.run(_load(url, paths, args.clients, args.duration, args.rate))
        if sampler is not None:
            sampler.stop.set()
            sampler.join()
            lat["training_running_fraction"] = round(sum(sampler.samples) / max(1, len(sampler.samples)), 2)
        lat["meets_target"] = lat["p50_ms"] <= TARGET_P50_MS and lat["p99_ms"] <= TARGET_P99_MS
        results["destinations"] = lat
        log.info("destinations: %s", lat)
        if args.ingest_trips > 0:
            log.info("ingest: posting %d simulated trips in batches of %d", args.ingest_trips, args.ingest_batch)
            results["ingest"] = ingest_benchmark(url, args.ingest_trips, args.ingest_batch)
            log.info("ingest: %s", results["ingest"])
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if tmp is not None:
            tmp.cleanup()
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
