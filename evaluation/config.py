"""What ``routeirl evaluate`` can be told, checked before any work starts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ACTION", "ACTION_COSTS", "BASELINES", "MAXENT", "MMP", "ORACLE", "REFERENCE_WHEN_SIMULATED", "TIME",
           "TOP_K", "EvalConfig", "EvaluationError", "check_config"]


class EvaluationError(ValueError):
    """The evaluation cannot run on what it was given (bad flag, too few trips, diverging drivers...)."""


#: Fig. 5 reports whether the true destination region is the most probable one, or among the 3 most probable.
TOP_K: tuple[int, ...] = (1, 3)
#: Table 1 row names. The true θ's row is the simulator's own model: the ceiling, not a competitor.
MAXENT, ORACLE = "MaxEnt", "True θ (reference)"
TIME, MMP, ACTION, ACTION_COSTS = "Time-based", "Max margin", "Action", "Action (costs)"
#: Baselines on any trips: the three models the evaluation fits besides MaxEnt, each scored by its most likely path.
BASELINES: tuple[str, ...] = (TIME, MMP, ACTION)
#: A baseline on stored (real) trips, as in the paper's Table 1, but a reference row on simulated trips. It is
#: the action model's costs planned as shortest paths, and on trips drawn from a MaxEnt model it sits at the
#: true θ's own ceiling, which no fitted model can be expected to pass (docs/evaluation.md).
REFERENCE_WHEN_SIMULATED: tuple[str, ...] = (ACTION_COSTS,)


@dataclass
class EvalConfig:
    """Everything ``routeirl evaluate`` can be told (the CLI flags, one to one)."""

    simulate: int = 50000
    database: str | None = None
    network: str | None = None
    seed: int = 0
    noise_m: float = 10.0
    map_match: bool = False
    od: str = "random"
    temperature: float | None = None  # None: calibrated to target_match90
    target_match90: float = 0.5
    out: str | None = None
    test_fraction: float = 0.2
    destinations: int = 5
    destination_trips: int = 500
    max_iter: int = 500
    action_trips: int = 0
    action_max_iter: int = 500
    # 0: no warm start. One on 2,000 trips reached the same optimum more slowly (113 s vs 70 s on 40,000 trips)
    action_warm_trips: int = 0
    mmp: bool = True
    mmp_iter: int = 200
    mmp_batch: int = 100
    rel_se_max: float = 0.015
    tolerance: float = 0.05
    progress: bool = True


def check_config(cfg: EvalConfig) -> None:
    """Refuse flags that cannot work before any trip is simulated or read (:class:`EvaluationError`)."""
    if cfg.database is None and cfg.simulate < 2:
        raise EvaluationError(f"--simulate needs at least 2 trips (a training and a held-out one), got {cfg.simulate}")
    if not 0 < cfg.test_fraction < 1:
        raise EvaluationError(f"test fraction must be in (0, 1), got {cfg.test_fraction}")
    if cfg.temperature is not None and not cfg.temperature > 0:
        raise EvaluationError(f"temperature must be positive, got {cfg.temperature}")
    if not 0 < cfg.target_match90 < 1:
        raise EvaluationError(f"--target-match90 must be in (0, 1), got {cfg.target_match90}")
    if cfg.destinations < 2:
        raise EvaluationError(f"--destinations needs at least 2 regions, got {cfg.destinations}")
    for name in ("destination_trips", "action_trips", "action_warm_trips"):
        if getattr(cfg, name) < 0:
            raise EvaluationError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(cfg, name)}")
    for name in ("max_iter", "action_max_iter", "mmp_iter", "mmp_batch"):
        if getattr(cfg, name) < 1:
            raise EvaluationError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(cfg, name)}")
    if not (cfg.noise_m >= 0 and math.isfinite(cfg.noise_m)):
        raise EvaluationError(f"--noise-m must be >= 0, got {cfg.noise_m}")
    if not (cfg.rel_se_max > 0 and cfg.tolerance > 0):
        raise EvaluationError("--rel-se-max and --tolerance must be positive")
    if cfg.out is not None and Path(cfg.out).exists() and not Path(cfg.out).is_dir():
        raise EvaluationError(f"--out {cfg.out} exists and is not a folder")
