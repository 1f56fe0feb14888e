"""The training worker process: ``python -m app.jobs.worker --job ID --settings JSON`` runs one job.

A separate process (started by :class:`app.jobs.runner.JobRunner`) so that fitting never
competes with queries for the API process's GIL, and so that a crash (even a segfault or
an OOM kill) cannot take the API down. The job itself is :func:`app.services.training.run_job`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from app.services.training import run_job
from app.settings import Settings
from maxent_irl.parallel import default_solver_threads, set_solver_threads

__all__ = ["main"]

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.jobs.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--job", type=int, required=True, help="id of a job in state 'running'")
    parser.add_argument("--settings", help="settings as JSON (default: from ROUTEIRL_* variables)")
    parser.add_argument("--parent-pid", type=int, help="abort when this process is no longer our parent")
    args = parser.parse_args(argv)
    settings = Settings.model_validate_json(args.settings) if args.settings else Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s [worker] %(name)s: %(message)s"
    )
    set_solver_threads(settings.worker_threads or max(1, default_solver_threads() - 1))
    if settings.worker_nice:
        try:
            os.nice(settings.worker_nice)  # queries in the API process come first
        except OSError:  # pragma: no cover - not permitted on some platforms
            log.debug("cannot lower the worker's priority")
    return run_job(settings, args.job, parent_pid=args.parent_pid)


if __name__ == "__main__":
    sys.exit(main())
