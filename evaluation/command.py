"""The ``routeirl evaluate`` subcommand: flags, the one-line summary, and exit codes.

Registered as a plugin of the ``routeirl`` command through the ``routeirl.commands`` entry
point (pyproject.toml): this module provides :data:`NAME`, :data:`HELP`, :func:`configure`
and :func:`run`; ``python -m evaluation`` runs :func:`main` without the ``routeirl`` command.
It imports nothing heavy: the evaluation itself is imported when the command runs.
Exit status: 0 done, 1 a must-show check failed under ``--check``, 2 bad input
(:class:`EvaluationError`, one line on stderr).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from evaluation.config import MAXENT, EvalConfig, EvaluationError
from evaluation.report import format_num, format_pct

__all__ = ["HELP", "NAME", "configure", "main", "run"]

NAME = "evaluate"
HELP = "evaluation report: Table 1, Fig. 3 and Fig. 5 of Ziebart et al. (2008)"


def _temperature_arg(text: str) -> float | None:
    """``auto`` (None: calibrated) or a positive number."""
    if text.strip().lower() == "auto":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None


def configure(p: argparse.ArgumentParser) -> None:
    """Add the command's flags to ``p``."""
    d = EvalConfig()
    src = p.add_mutually_exclusive_group()
    src.add_argument("--simulate", type=int, default=d.simulate, metavar="N",
                     help=f"simulate N trips with the default true theta (default {d.simulate})")
    src.add_argument("--database", metavar="PATH", help="evaluate the trips stored in the service's SQLite (read-only)")
    p.add_argument("--network", metavar="PATH", help="OSM file or .npz (default: the bundled Andorra network)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the simulation, split and subsamples")
    p.add_argument("--noise-m", type=float, default=d.noise_m, help="GPS noise of simulated traces (m)")
    p.add_argument("--map-match", action="store_true",
                   help="learn from map-matched simulated GPS instead of the true simulated paths")
    p.add_argument("--od", choices=("random", "clustered"), default=d.od,
                   help="simulated demand: uniform origins/destinations or --destinations hubs (default random)")
    p.add_argument("--temperature", type=_temperature_arg, default=d.temperature, metavar="T|auto",
                   help="simulated drivers pick routes with probability ∝ exp(θ·f / T): higher = more varied "
                        "routes. auto (default): the T at which the true model's most likely path matches >= 90 %% "
                        "of the route on --target-match90 of the trips (see docs/evaluation.md)")
    p.add_argument("--target-match90", type=float, default=d.target_match90, metavar="SHARE",
                   help=f"route variety for --temperature auto, unused otherwise (default {d.target_match90:g}: "
                        "the paper's models matched 43-53 %% of real trips to >= 90 %%)")
    p.add_argument("--out", metavar="DIR", help="report folder (default reports/evaluate-<timestamp>)")
    p.add_argument("--test-fraction", type=float, default=d.test_fraction,
                   help=f"share of trips held out (default {d.test_fraction}; the paper held out 0.8)")
    p.add_argument("--destinations", type=int, default=d.destinations, metavar="K",
                   help=f"destination regions for Fig. 5 (default {d.destinations}, as the paper)")
    p.add_argument("--destination-trips", type=int, default=d.destination_trips, metavar="N",
                   help=f"held-out trips for Fig. 5 and the destination error, 0 = all (default {d.destination_trips})")
    p.add_argument("--max-iter", type=int, default=d.max_iter, help="MaxEnt L-BFGS iterations")
    p.add_argument("--action-trips", type=int, default=d.action_trips, metavar="N",
                   help=f"training trips for the action-based model, 0 = all (default {d.action_trips})")
    p.add_argument("--action-max-iter", type=int, default=d.action_max_iter,
                   help=f"action-based model iterations per stage (default {d.action_max_iter})")
    p.add_argument("--action-warm-trips", type=int, default=d.action_warm_trips, metavar="N",
                   help="fit the action-based model on N trips first, then refine on all; 0 = no warm start "
                        f"(default {d.action_warm_trips})")
    p.add_argument("--no-mmp", dest="mmp", action="store_false", help="skip max margin planning")
    p.add_argument("--mmp-iter", type=int, default=d.mmp_iter, help="max margin subgradient steps")
    p.add_argument("--mmp-batch", type=int, default=d.mmp_batch, help="trips per max margin step")
    p.add_argument("--rel-se-max", type=float, default=d.rel_se_max,
                   help="a feature is 'exercised' if its relative standard error is at most this (default 0.015)")
    p.add_argument("--tolerance", type=float, default=d.tolerance, help="allowed relative error of exercised weights")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--check", action="store_true",
                   help="exit with status 1 if a must-show check fails: MaxEnt does not beat every baseline on "
                        "every Table-1 metric, destination accuracy does not rise, or (simulated trips) an "
                        "exercised weight is off by more than --tolerance or no weight is exercised at all")


def run(args: argparse.Namespace) -> int:
    """Run the evaluation the flags describe; print where the report is and the headline numbers."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                            stream=sys.stderr)
    fields = {f for f in EvalConfig.__dataclass_fields__}
    cfg = EvalConfig(**{k: v for k, v in vars(args).items() if k in fields and v is not None})
    if cfg.database is not None:
        cfg.simulate = 0
    from evaluation.run import run_evaluation  # numerical and plotting stack: only when evaluating

    try:
        m = run_evaluation(cfg)
    except EvaluationError as exc:
        print(f"routeirl evaluate: error: {exc}", file=sys.stderr)
        return 2
    t1, checks = m["table1"], m["checks"]
    best = {metric: max((t1[n][metric] for n in m["baselines"] if t1[n][metric] is not None), default=None)
            for metric in ("matching", "match90", "log_prob")}
    acc = m["destinations"]["accuracy"][1]
    rec = m["theta"]
    verdict = rec.get("all_exercised_within_tolerance", "unknown")
    theta_msg = {"unknown": "true theta unknown", None: "no weight exercised enough to test recovery",
                 True: f"all {len(rec['exercised'])} exercised weights within {100 * cfg.tolerance:g}% of the truth",
                 False: f"NOT all {len(rec['exercised'])} exercised weights within {100 * cfg.tolerance:g}%"}[verdict]
    print(f"report in {m['out']}: MaxEnt matching {format_pct(t1[MAXENT]['matching'])} (best baseline "
          f"{format_pct(best['matching'])}), 90% match {format_pct(t1[MAXENT]['match90'])} "
          f"({format_pct(best['match90'])}), "
          f"log prob {format_num(t1[MAXENT]['log_prob'])} ({format_num(best['log_prob'])}); {theta_msg}; "
          f"destination top-1 {100 * acc[0]:.0f}% -> {100 * acc[-1]:.0f}% ({m['timings_s']['total']:.0f} s)")
    failed = not all(checks["maxent_beats_every_baseline"].values()) or not checks["destination_accuracy_rises"] \
        or (m["data"]["source"] == "simulated" and not checks["theta_within_tolerance_on_exercised"])
    return 1 if args.check and failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m evaluation [flags]``: the same command without the ``routeirl`` front end."""
    parser = argparse.ArgumentParser(prog="routeirl evaluate", description=HELP)
    configure(parser)
    return run(parser.parse_args(argv))
