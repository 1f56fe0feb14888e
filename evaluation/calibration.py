"""The simulated drivers' temperature: how varied their routes are, calibrated to the paper's data.

How varied routes are decides what a route-prediction benchmark can show: with nearly
deterministic drivers every sensible model plans the same routes and Table 1 of Ziebart et
al. (2008) ties. This is evaluation design, not part of the simulator, so it lives here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evaluation.baselines import shortest_path
from evaluation.metrics import route_match_fraction
from maxent_irl import RouteModel
from maxent_irl.exceptions import PartitionFunctionDivergedError
from maxent_irl.roads import RoadNetwork, default_true_theta, draw_od

__all__ = ["TemperatureCalibration", "calibrate_temperature"]


@dataclass(frozen=True)
class TemperatureCalibration:
    """What :func:`calibrate_temperature` chose, and why."""

    temperature: float
    match90: float  # share of calibration trips the true most likely path matches to >= 90 %
    target_match90: float
    n_trips: int
    capped: bool  # the target needs drivers beyond convergence: temperature is a fraction of the critical one


def calibrate_temperature(
    net: RoadNetwork,
    target_match90: float = 0.5,
    theta: np.ndarray | None = None,
    n_trips: int = 1000,
    seed: int | np.random.Generator | None = 0,
    od: str = "random",
    *,
    min_od_distance_m: float = 1000.0,
    n_clusters: int = 4,
    cluster_radius_m: float = 800.0,
    max_fraction_of_critical: float = 0.95,
    steps: int = 12,
) -> TemperatureCalibration:
    """The drivers' temperature ``T`` (routes ∝ ``exp(theta . f / T)``) whose routes are as varied as asked.

    How varied routes are decides what a route-prediction benchmark can show: with
    nearly deterministic drivers every sensible model plans the same routes and
    Table 1 of Ziebart et al. (2008) ties. Variety is measured as Table 1 measures
    prediction: the share of trips whose driven route the true model's own most likely
    path matches on >= 90 % of its distance. That share falls as ``T`` rises, so ``T`` is
    found by bisection in ``log T`` (``steps`` halvings of a factor-2 bracket) on
    ``n_trips`` simulated trips with fixed origins, destinations and random numbers.

    Z diverges above a critical temperature ``T_c`` (found first, by bisection on the
    LU's divergence check), and drivers close to it drive in loops. So ``T`` is at most
    ``max_fraction_of_critical * T_c``; if the target needs more, that bound is returned
    with ``capped`` set.

    Defaults: ``target_match90`` 0.5, ``theta`` :func:`default_true_theta`,
    ``n_trips`` 1000, ``seed`` 0, demand ``od`` and its keywords as :func:`simulate_trips`.
    Raises ``ValueError`` for arguments out of range, a ``theta`` with non-negative
    rewards (no most likely path) or Z diverging at every temperature.
    """
    if not 0 < target_match90 < 1:
        raise ValueError(f"target_match90 must be in (0, 1), got {target_match90}")
    if n_trips < 1 or steps < 1:
        raise ValueError("n_trips and steps must be positive")
    if not 0 < max_fraction_of_critical < 1:
        raise ValueError(f"max_fraction_of_critical must be in (0, 1), got {max_fraction_of_critical}")
    th = default_true_theta(net.feature_names) if theta is None else np.asarray(theta, dtype=float)
    RouteModel(net.mdp, th)  # validates theta
    rng = np.random.default_rng(seed)
    origins, dests = draw_od(net, n_trips, rng, od, min_od_distance_m, n_clusters, cluster_radius_m)
    cost = -(net.mdp.features @ th)  # the most likely path does not depend on T
    best = [shortest_path(net.mdp, cost, int(o), int(d)) for o, d in zip(origins, dests, strict=True)]
    sample_seed = int(rng.integers(2**63))
    length = net.segment_length_m

    def share(temperature: float) -> float:
        """Share of the trips the most likely path matches to >= 90 % at this temperature."""
        paths = RouteModel(net.mdp, th / temperature).sample_trips(origins, dests, random_state=sample_seed)
        match = [route_match_fraction(b, p, length) for b, p in zip(best, paths, strict=True)]
        return float(np.mean(np.asarray(match) >= 0.9 - 1e-12))

    critical = _critical_temperature(net, th, steps)
    t_max = max_fraction_of_critical * critical if np.isfinite(critical) else 2.0**10  # acyclic: Z never diverges
    s_max = share(t_max)
    if s_max >= target_match90:  # even the hottest allowed drivers are not varied enough
        return TemperatureCalibration(temperature=t_max, match90=s_max, target_match90=target_match90,
                                      n_trips=n_trips, capped=True)
    # bracket [lo, hi]: share(lo) >= target > share(hi), hi <= t_max
    lo, hi = min(1.0, t_max / 2), t_max
    s_lo = share(lo)
    while s_lo < target_match90:
        lo, hi = lo / 2, lo
        if lo < 2.0**-10:
            raise ValueError(f"no temperature gives a >= 90 % match share of {target_match90}")
        s_lo = share(lo)
    while 2 * lo < hi:
        s_up = share(2 * lo)
        if s_up < target_match90:
            hi = 2 * lo
            break
        lo, s_lo = 2 * lo, s_up
    for _ in range(steps):
        mid = float(np.sqrt(lo * hi))
        s_mid = share(mid)
        if s_mid < target_match90:
            hi = mid
        else:
            lo, s_lo = mid, s_mid
    return TemperatureCalibration(temperature=lo, match90=s_lo, target_match90=target_match90, n_trips=n_trips,
                                  capped=False)


def _critical_temperature(net: RoadNetwork, theta: np.ndarray, steps: int) -> float:
    """The largest ``T`` found (to ``2**(-steps)`` in ``log2 T``) at which Z still converges; inf up to ``2**10``."""

    def converges(temperature: float) -> bool:
        try:
            RouteModel(net.mdp, theta / temperature).system  # noqa: B018 - factorizes, checks the pivots
        except PartitionFunctionDivergedError:
            return False
        return True

    ok = 1.0
    while not converges(ok):
        ok /= 2
        if ok < 2.0**-10:
            raise ValueError("the partition function diverges at every temperature: theta's rewards must be negative")
    bad = ok * 2
    while converges(bad):
        ok, bad = bad, bad * 2
        if bad > 2.0**10:
            return float("inf")
    for _ in range(steps):
        mid = float(np.sqrt(ok * bad))
        ok, bad = (mid, bad) if converges(mid) else (ok, mid)
    return ok


