-- wrk script of benchmarks/load_wrk.sh: GET /v1/destinations with partial trips (paths written by the script into
-- wrk_paths.lua next to this file's copy), one drawn at random per request; counts answers by status.
local paths = dofile(os.getenv("WRK_PATHS"))
local counts = {}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  statuses = {}
end

function request()
  return wrk.format("GET", paths[math.random(#paths)])
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s) do total[k] = (total[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(total) do table.insert(parts, string.format("%d:%d", k, v)) end
  io.write(string.format("statuses %s\n", table.concat(parts, " ")))
  io.write(string.format("errors connect=%d read=%d write=%d timeout=%d status=%d\n", summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout, summary.errors.status))
  io.write(string.format("latency_ms p50=%.1f p90=%.1f p99=%.1f max=%.1f requests=%d seconds=%.1f rps=%.0f\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6)))
end
