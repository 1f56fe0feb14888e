"""The trips an evaluation runs on: simulated with a known ``theta``, or read from the service's database.

Simulated drivers choose routes with probability ∝ exp(θ·f / T) for the default true θ
(:func:`maxent_irl.roads.default_true_theta`, not travel time), optionally observed
through noisy GPS and map-matched back. Stored trips are read read-only. Either way,
only paths the likelihood accepts are kept, then split into training and held-out trips.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.storage import NotADatabaseError, Storage
from evaluation.calibration import calibrate_temperature
from evaluation.config import EvalConfig, EvaluationError
from evaluation.metrics import route_match_fraction
from evaluation.progress import progress_bar
from maxent_irl import RouteMDP
from maxent_irl.exceptions import PartitionFunctionDivergedError
from maxent_irl.model_selection import train_test_split
from maxent_irl.roads import MapMatcher, RoadNetwork, RoadsError, default_true_theta, simulate_trips

__all__ = ["get_trips", "load_network", "read_database_paths", "split_train_test", "usable_paths"]

log = logging.getLogger(__name__)


def usable_paths(mdp: RouteMDP, paths: Sequence[Sequence[int]]) -> tuple[list[np.ndarray], dict[str, int]]:
    """Paths the likelihood accepts, and why the others were dropped.

    A path needs two states and valid transitions (it may pass its destination before it
    ends there, as real drivers do).
    """
    kept: list[np.ndarray] = []
    dropped: Counter[str] = Counter()
    for p in paths:
        path = np.asarray(p, dtype=np.int64)
        if path.size < 2:
            dropped["too_short"] += 1
            continue
        try:
            mdp.transition_indices(path)
        except (ValueError, IndexError):
            dropped["invalid"] += 1
            continue
        kept.append(path)
    return kept, dict(dropped)


def read_database_paths(database: str | Path, fingerprint: str) -> list[list[int]]:
    """Matched paths of the trips stored for network ``fingerprint``, through the service's storage API.

    Opened read-only, so an evaluation can never modify the service's database, even while
    the service runs.
    """
    path = Path(database).expanduser().resolve()
    if not path.is_file():
        raise EvaluationError(f"no database at {path}")
    try:
        storage = Storage(path, read_only=True)
    except NotADatabaseError as exc:  # not SQLite, or no trips table
        raise EvaluationError(str(exc)) from exc
    try:
        _, paths = storage.trips.paths(fingerprint)
        others = [] if paths else storage.trips.networks()
    finally:
        storage.close()
    if not paths:
        known = ", ".join(f"{n} ({c} trips)" for n, c in others) or "none"
        raise EvaluationError(
            f"{path} holds no trips for network {fingerprint}; networks with trips: {known}. "
            "Pass --network with the network the service used."
        )
    return paths


def split_train_test(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split ``(train, test)`` of ``n`` trips; both sides keep at least one trip."""
    if not 0 < test_fraction < 1:
        raise EvaluationError(f"test fraction must be in (0, 1), got {test_fraction}")
    if n < 2:
        raise EvaluationError(f"need at least 2 trips to split, got {n}")
    return train_test_split(n, test_fraction, seed)


def load_network(cfg: EvalConfig) -> RoadNetwork:
    """``--network`` (OSM file or saved network), or the embedded default; unreadable -> EvaluationError."""
    if cfg.network is None:
        return RoadNetwork.default()
    path = Path(cfg.network).expanduser()
    if not path.is_file():
        raise EvaluationError(f"no network file at {cfg.network}")
    try:
        return RoadNetwork.load(path)
    except (RoadsError, OSError) as exc:
        raise EvaluationError(f"cannot read a road network from {cfg.network}: {exc}") from exc


def get_trips(cfg: EvalConfig, net: RoadNetwork, info: dict[str, Any]) -> tuple[list, np.ndarray | None]:
    """Raw paths and the true ``theta`` (None for stored trips)."""
    if cfg.database is not None:
        info.update(source="database", database=str(cfg.database))
        return read_database_paths(cfg.database, net.fingerprint), None
    # drivers with temperature T choose routes with probability ∝ exp(theta . f / T): in the units of the
    # fitted model (alpha = 1) the true weights are theta / T
    extra: dict[str, Any] = {"n_clusters": cfg.destinations} if cfg.od == "clustered" else {}
    temperature = cfg.temperature
    if temperature is None:
        temperature = calibrated_temperature(cfg, net, extra, info)
    theta = default_true_theta(net.feature_names) / temperature
    try:
        sims = simulate_trips(net, theta, n_trips=cfg.simulate, seed=cfg.seed, noise_m=cfg.noise_m, od=cfg.od,
                              **extra)
    except PartitionFunctionDivergedError as exc:
        raise EvaluationError(f"drivers at temperature {temperature:g} do not converge on {net.name}: the sum "
                              f"over routes is infinite (long detours are not penalized enough); use a lower "
                              f"--temperature ({exc})") from exc
    except ValueError as exc:  # e.g. walks that never arrive, an unreachable destination
        raise EvaluationError(f"cannot simulate trips on {net.name} at temperature {temperature:g}: {exc}") from exc
    info.update(source="simulated", od=cfg.od, temperature=temperature, noise_m=cfg.noise_m,
                map_matched=cfg.map_match)
    if not cfg.map_match:
        return [s.path for s in sims], theta
    matcher, failed = MapMatcher(net), 0
    paths: list[np.ndarray] = []
    recall: list[float] = []
    with progress_bar(cfg.progress, total=len(sims), desc="map matching") as bar:
        for s in sims:
            try:
                states = matcher.match(s.trace).states
            except ValueError:
                failed += 1
            else:
                paths.append(states)
                recall.append(route_match_fraction(states, s.path, net.segment_length_m))
            bar.update(1)
    info.update(map_match_failed=failed, map_match_recall=float(np.mean(recall)) if recall else None)
    return paths, theta


def calibrated_temperature(cfg: EvalConfig, net: RoadNetwork, od_kwargs: dict[str, Any],
                            info: dict[str, Any]) -> float:
    """The drivers' temperature whose routes are as varied as the paper's (see ``calibrate_temperature``)."""
    try:
        cal = calibrate_temperature(net, cfg.target_match90, seed=np.random.default_rng([cfg.seed, 1]), od=cfg.od,
                                    **od_kwargs)
    except ValueError as exc:
        raise EvaluationError(f"cannot calibrate the drivers' temperature on {net.name}: {exc}; give --temperature"
                              ) from exc
    info["temperature_calibration"] = {"target_match90": cal.target_match90, "match90": cal.match90,
                                       "n_trips": cal.n_trips, "capped": cal.capped}
    log.info("drivers' temperature %.3f: the true most likely path matches >= 90%% of the route on %.1f%% of %d "
             "calibration trips (target %.0f%%%s)", cal.temperature, 100 * cal.match90, cal.n_trips,
             100 * cal.target_match90, ", capped below divergence" if cal.capped else "")
    return cal.temperature
