#!/usr/bin/env bash
# schemathesis with every check against a real server: the OpenAPI document must be as strict as the server
# (no 5xx, documented statuses, headers and bodies, schema-valid requests accepted, invalid ones rejected, Allow
# on 405), and the custom check of benchmarks/schemathesis_hooks.py. One schemathesis worker: with two, hypothesis
# trips over a CPython 3.11 ast.parse race ("AST constructor recursion depth mismatch"). Starts `python -m app serve` (2 API processes) on Monaco with a demo model on a free port and a
# temporary database, waits until it is ready, runs schemathesis, stops the server. Exit status: schemathesis's.
#
#   ./benchmarks/schemathesis_check.sh                 # about 2-4 minutes on 2 cores
#   MAX_EXAMPLES=20 ./benchmarks/schemathesis_check.sh # fewer examples per operation
#   ./benchmarks/schemathesis_check.sh --include-path /v1/destinations   # extra arguments go to schemathesis
set -euo pipefail
cd "$(dirname "$0")/.."
ROUTEIRL_DEV=1 ./scripts/bootstrap
PY=.venv/bin/python
WORK=$(mktemp -d)
PORT=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MONACO=data/monaco_drive.osm.bz2
[ -f "$MONACO" ] || MONACO=../shared/data/osm/monaco_drive.osm.bz2
KEY=schemathesis-key
export OPENBLAS_NUM_THREADS=1 ROUTEIRL_NETWORK=$PWD/$MONACO ROUTEIRL_DATA_DIR=$WORK/data ROUTEIRL_DEMO=always \
  ROUTEIRL_DEMO_TRIPS=80 ROUTEIRL_MAX_ITER=5 ROUTEIRL_API_KEY=$KEY ROUTEIRL_LOG_LEVEL=warning ROUTEIRL_WORKER_POLL_S=0.2
$PY -m app serve --host 127.0.0.1 --port "$PORT" --workers 2 > "$WORK/server.log" 2>&1 &
SERVER=$!
stop() { kill -TERM "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$WORK"; }
trap stop EXIT
for _ in $(seq 1 600); do  # the demo model trains in about 10-30 s
  if curl -fs "http://127.0.0.1:$PORT/ready" > /dev/null 2>&1; then break; fi
  kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.log"; exit 1; }
  sleep 0.5
done
curl -fs "http://127.0.0.1:$PORT/ready" > /dev/null || { echo "server not ready"; tail -30 "$WORK/server.log"; exit 1; }
status=0
PYTHONPATH=benchmarks SCHEMATHESIS_HOOKS=schemathesis_hooks .venv/bin/schemathesis \
  --config-file benchmarks/schemathesis.toml run "http://127.0.0.1:$PORT/openapi.json" --checks all -H "X-API-Key: $KEY" \
  --max-examples "${MAX_EXAMPLES:-50}" --phases examples,coverage,fuzzing --workers 1 --request-timeout 30 \
  --suppress-health-check too_slow,filter_too_much --seed "${SEED:-1}" --no-color "$@" || status=$?
grep -E -A12 "Traceback|ERROR" "$WORK/server.log" | grep -v "^  " | head -40 || true
exit "$status"
