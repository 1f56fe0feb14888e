"""Full-size evaluation on the default network (Andorra): Table 1, θ recovery and Fig. 5, with run times.

Runs ``routeirl evaluate`` in process and prints the report (report.md) it wrote; every
``routeirl evaluate`` flag is passed through.

    .venv/bin/python benchmarks/bench_evaluate.py                       # the default run (50,000 trips, about 5 min)
    .venv/bin/python benchmarks/bench_evaluate.py --simulate 20000      # enough trips to pin weights to ~1 %
    .venv/bin/python benchmarks/bench_evaluate.py --out reports/bench --no-progress
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.cli import main


def run(argv: list[str]) -> int:
    if "--out" not in argv:
        argv = [*argv, "--out", tempfile.mkdtemp(prefix="routeirl-evaluate-")]
    out = Path(argv[argv.index("--out") + 1])
    print(f"{os.cpu_count()} CPUs; argv: evaluate {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    code = main(["evaluate", *argv])
    wall = time.perf_counter() - start
    print((out / "report.md").read_text())
    timings = json.loads((out / "metrics.json").read_text())["timings_s"]
    print("timings (s):", json.dumps(timings), f"wall {wall:.1f}")
    return code


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
