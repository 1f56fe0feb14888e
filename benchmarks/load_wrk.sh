#!/usr/bin/env bash
# Destination queries under load, measured with wrk (a C load generator), while a training job and uploads run.
#
# Starts `python -m app serve` (2 API processes, as ./scripts/serve) on the embedded default network (Andorra) with
# a fresh database, waits for the demo model, builds GET /v1/destinations paths from the first 5 points of stored
# trips, and runs `wrk -t2 -c$CONNECTIONS --latency` with benchmarks/wrk_destinations.lua twice: a reference run
# of $REFERENCE with nothing else going on, then a run of $DURATION while training jobs (queued to outlast it) fit
# and an uploader posts batches of 5 simulated trips one after another. Prints both of wrk's reports, the statuses,
# the jobs' states and the uploads done, and the loaded run's p50/p99 as ratios of the reference; stops everything.
# The machine is shared: compare the two runs, taken minutes apart on the same server, rather than absolute values.
#
#   apt-get install -y wrk                          # Debian's wrk 4.1
#   ./benchmarks/load_wrk.sh                        # 50 connections, 30 s
#   CONNECTIONS=100 DURATION=60s ./benchmarks/load_wrk.sh
#   SERVER=uvicorn ./benchmarks/load_wrk.sh        # plain `uvicorn app.main:app` (no request timeouts), to compare
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk > /dev/null || { echo "wrk is not installed (apt-get install -y wrk)"; exit 2; }
./scripts/bootstrap
PY=$PWD/.venv/bin/python
WORK=$(mktemp -d)
PORT=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
export OPENBLAS_NUM_THREADS=1 ROUTEIRL_DATA_DIR=$WORK/data ROUTEIRL_LOG_LEVEL=warning
unset ROUTEIRL_NETWORK ROUTEIRL_DATABASE ROUTEIRL_API_KEY
if [ "${SERVER:-app}" = uvicorn ]; then  # plain uvicorn, without app.server's timeouts: to measure what they cost
  $PY -m uvicorn app.main:app --host 127.0.0.1 --port "$PORT" --workers 2 > "$WORK/server.log" 2>&1 &
else
  $PY -m app serve --host 127.0.0.1 --port "$PORT" --workers 2 > "$WORK/server.log" 2>&1 &
fi
SERVER=$!
UPLOADER=
stop() {
  [ -n "$UPLOADER" ] && kill "$UPLOADER" 2>/dev/null || true
  kill -TERM "$SERVER" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap stop EXIT
echo "server on $URL; waiting for the demo model ..."
for _ in $(seq 1 600); do
  curl -fs "$URL/ready" > /dev/null 2>&1 && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.log"; exit 1; }
  sleep 0.5
done
# query paths
$PY - "$URL" "$WORK" <<'PY'
import json, sys, urllib.parse, urllib.request
url, work = sys.argv[1], sys.argv[2]
get = lambda p: json.load(urllib.request.urlopen(url + p))
paths = []
for item in get("/v1/trajectories?limit=200")["items"]:
    pts = get(f"/v1/trajectories/{item['id']}")["features"][0]["geometry"]["coordinates"][:5]
    coords = ";".join(f"{x:.6f},{y:.6f}" for x, y in pts)
    paths.append("/v1/destinations?" + urllib.parse.urlencode({"coordinates": coords, "top": 10}))
with open(f"{work}/paths.lua", "w") as f:
    f.write("return {\n" + ",\n".join(json.dumps(p) for p in paths) + "\n}\n")
print(f"{len(paths)} query paths")
PY
run_wrk() {
  WRK_PATHS=$WORK/paths.lua wrk -t2 -c"${CONNECTIONS:-50}" -d"$1" --timeout 10s --latency \
    -s benchmarks/wrk_destinations.lua "$URL" | tee "$WORK/$2.txt"
}
run_wrk 5s warmup > /dev/null  # first queries load candidates and caches
echo "== reference: destination queries alone, $(uptime | sed 's/.*load/load/')"
run_wrk "${REFERENCE:-15s}" reference
# training jobs and the uploader
$PY - "$URL" "$WORK" <<'PY'
import json, sys, urllib.request
url, work = sys.argv[1], sys.argv[2]
jobs = []
for _ in range(3):  # more than the run lasts: the worker trains throughout
    req = urllib.request.Request(url + "/v1/models", data=json.dumps({"max_iter": 2000, "activate": False}).encode(),
                                 headers={"content-type": "application/json"}, method="POST")
    jobs.append(json.load(urllib.request.urlopen(req))["id"])
open(f"{work}/jobs", "w").write(" ".join(map(str, jobs)))
print(f"training jobs {jobs}")
PY
cat > "$WORK/uploader.py" <<'PY'
import json, sys, time, urllib.request
from maxent_irl.roads import RoadNetwork, simulate_trips
url, out = sys.argv[1], sys.argv[2]
sims = simulate_trips(RoadNetwork.default(), n_trips=400, seed=4242, noise_m=8.0)
trips = [{"id": f"load-{i}", "points": s.trace.points.round(7).tolist(), "times": s.trace.times.tolist()}
         for i, s in enumerate(sims)]
done = {"posts": 0, "accepted": 0, "errors": 0, "seconds": []}
i = 0
while True:
    batch = trips[i % len(trips): i % len(trips) + 5]
    i += 5
    req = urllib.request.Request(url + "/v1/trajectories", data=json.dumps({"trips": batch}).encode(),
                                 headers={"content-type": "application/json"}, method="POST")
    t0 = time.perf_counter()
    try:
        body = json.load(urllib.request.urlopen(req, timeout=60))
        done["accepted"] += len(body["accepted"])
    except Exception:
        done["errors"] += 1
    done["posts"] += 1
    done["seconds"].append(time.perf_counter() - t0)
    with open(out, "w") as f:
        json.dump({k: v for k, v in done.items() if k != "seconds"} |
                  {"mean_s": sum(done["seconds"]) / len(done["seconds"])}, f)
PY
PYTHONPATH=$PWD $PY "$WORK/uploader.py" "$URL" "$WORK/uploads.json" &
UPLOADER=$!
job_states() { for j in $(cat "$WORK/jobs"); do curl -fs "$URL/v1/jobs/$j" | $PY -c 'import json,sys; d=json.load(sys.stdin); print(d["id"], d["status"], (d.get("progress") or {}).get("stage"))'; done; }
for _ in $(seq 1 120); do  # until the first job fits and the uploader has posted
  states=$(job_states)
  [ -s "$WORK/uploads.json" ] && [[ $states == *"running fitting"* ]] && break
  sleep 1
done
echo "jobs before:"; job_states
uploads_before=$(cat "$WORK/uploads.json" 2>/dev/null || echo '{}')
echo "== under load: training and uploads running, $(uptime | sed 's/.*load/load/')"
run_wrk "${DURATION:-30s}" loaded
echo "jobs after:"; job_states
echo "uploads before the run: $uploads_before"
echo "uploads after the run:  $(cat "$WORK/uploads.json")"
$PY - "$WORK" <<'PY'
import re, sys
def pct(name):
    line = next(l for l in open(f"{sys.argv[1]}/{name}.txt") if l.startswith("latency_ms"))
    return {k: float(v) for k, v in re.findall(r"(p50|p99|rps)=([0-9.]+)", line)}
ref, load = pct("reference"), pct("loaded")
print(f"loaded / reference: p50 x{load['p50'] / ref['p50']:.2f}, p99 x{load['p99'] / ref['p99']:.2f}, "
      f"throughput x{load['rps'] / ref['rps']:.2f}")
PY
grep -E "Traceback|ERROR" "$WORK/server.log" | head -5 || true
