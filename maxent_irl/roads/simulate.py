"""Simulated drivers: routes drawn from a MaxEnt model with known weights, then noisy GPS along them.

Routes come from :meth:`maxent_irl.RouteModel.sample_trips` (one batched pass per
destination set) with ``theta`` defaulting to :func:`default_true_theta`, which is
deliberately *not* travel time, so a learner that recovers it has learned something
beyond speeds. GPS points are emitted every ``interval_s`` seconds at a per-trip
fraction of each segment's speed, plus one at the very end, then displaced by
isotropic Gaussian noise of ``noise_m`` metres per axis. Everything is drawn from one
``numpy`` generator seeded by ``seed``: same arguments, same trips.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from maxent_irl.baselines import shortest_path
from maxent_irl.exceptions import PartitionFunctionDivergedError
from maxent_irl.inference import RouteModel
from maxent_irl.metrics import route_match_fraction
from maxent_irl.roads.features import default_true_theta
from maxent_irl.roads.network import RoadNetwork
from maxent_irl.roads.trace import Trace

__all__ = ["SimulatedTrip", "TemperatureCalibration", "calibrate_temperature", "simulate_gps", "simulate_trips"]


@dataclass(frozen=True, eq=False)
class SimulatedTrip:
    """A simulated trip: the GPS ``trace``, the true ``path`` (states) and, per GPS point, its true state."""

    trace: Trace
    path: np.ndarray
    point_states: np.ndarray
    true_points: np.ndarray  # noise-free lon/lat of each GPS point

    @property
    def origin(self) -> int:
        return int(self.path[0])

    @property
    def destination(self) -> int:
        return int(self.path[-1])


def simulate_trips(
    net: RoadNetwork,
    theta: np.ndarray | None = None,
    n_trips: int = 100,
    seed: int | np.random.Generator | None = 0,
    noise_m: float = 10.0,
    interval_s: float = 10.0,
    od: str = "random",
    *,
    min_od_distance_m: float = 1000.0,
    n_clusters: int = 4,
    cluster_radius_m: float = 800.0,
    speed_factor: tuple[float, float] = (0.7, 0.95),
    start_time: float = 1_700_000_000.0,
    pause_s: float = 900.0,
    alpha: float = 1.0,
    model: RouteModel | None = None,
) -> list[SimulatedTrip]:
    """Simulate ``n_trips`` drivers on ``net`` (see the module docstring).

    ``od="random"``: origin and destination segments uniform over the network;
    ``"clustered"``: ``n_clusters`` hubs of radius ``cluster_radius_m``, each trip
    going from one hub to another (commuting-like demand). Either way the two are at
    least ``min_od_distance_m`` apart (straight line between segment midpoints).
    Trips follow each other in time: each starts ``pause_s`` after the previous
    ended, from ``start_time`` (epoch seconds), so concatenated traces can be split
    again by :func:`~maxent_irl.roads.trips.split_trips`. Pass ``model`` to reuse a
    factorized :class:`RouteModel` across calls (``theta`` / ``alpha`` then ignored).
    """
    if n_trips < 0:
        raise ValueError(f"n_trips must be >= 0, got {n_trips}")
    if not (noise_m >= 0 and np.isfinite(noise_m)):
        raise ValueError(f"noise_m must be >= 0, got {noise_m}")
    if not (interval_s > 0 and np.isfinite(interval_s)):
        raise ValueError(f"interval_s must be positive, got {interval_s}")
    lo, hi = speed_factor
    if not 0 < lo <= hi:
        raise ValueError(f"speed_factor must be (low, high) with 0 < low <= high, got {speed_factor}")
    rng = np.random.default_rng(seed)
    if model is None:
        th = default_true_theta(net.feature_names) if theta is None else np.asarray(theta, dtype=float)
        model = RouteModel(net.mdp, th, alpha=alpha)
    if n_trips == 0:
        return []
    origins, dests = _draw_od(net, n_trips, rng, od, min_od_distance_m, n_clusters, cluster_radius_m)
    paths = model.sample_trips(origins, dests, seed=rng)
    trips = []
    t0 = float(start_time)
    for i, path in enumerate(paths):
        factor = float(rng.uniform(lo, hi))
        trip = simulate_gps(net, path, rng, noise_m=noise_m, interval_s=interval_s, speed_factor=factor,
                            start_time=t0, trace_id=f"sim{i:05d}")
        trips.append(trip)
        t0 = float(trip.trace.times[-1]) + pause_s  # type: ignore[index]
    return trips


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
    origins, dests = _draw_od(net, n_trips, rng, od, min_od_distance_m, n_clusters, cluster_radius_m)
    cost = -(net.mdp.features @ th)  # the most likely path does not depend on T
    best = [shortest_path(net.mdp, cost, int(o), int(d)) for o, d in zip(origins, dests, strict=True)]
    sample_seed = int(rng.integers(2**63))
    length = net.segment_length_m

    def share(temperature: float) -> float:
        """Share of the trips the most likely path matches to >= 90 % at this temperature."""
        paths = RouteModel(net.mdp, th / temperature).sample_trips(origins, dests, seed=sample_seed)
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


def simulate_gps(
    net: RoadNetwork,
    path: np.ndarray,
    rng: np.random.Generator,
    noise_m: float = 10.0,
    interval_s: float = 10.0,
    speed_factor: float = 0.85,
    start_time: float = 0.0,
    trace_id: str = "sim",
) -> SimulatedTrip:
    """GPS points along a known path (states from the start of the first to the end of the last)."""
    path = net.mdp.check_states(path, "path state")
    length = net.segment_length_m[path]
    speed = np.maximum(net.segment_speed_kph[path] * speed_factor / 3.6, 1.0)  # m/s
    cum_t = np.concatenate([[0.0], np.cumsum(length / speed)])
    ts = np.arange(0.0, cum_t[-1], interval_s)
    if ts.size == 0 or cum_t[-1] - ts[-1] > 1e-6:
        ts = np.append(ts, cum_t[-1])
    seg = np.clip(np.searchsorted(cum_t, ts, side="right") - 1, 0, path.size - 1)
    frac = np.clip((ts - cum_t[seg]) / (cum_t[seg + 1] - cum_t[seg]), 0.0, 1.0)
    states = path[seg]
    lines = net._lines[states]
    xy = shapely.get_coordinates(shapely.line_interpolate_point(lines, frac, normalized=True))
    true_ll = net.projection.inverse(xy)
    noisy = xy + rng.normal(0.0, noise_m, size=xy.shape) if noise_m > 0 else xy
    trace = Trace(net.projection.inverse(noisy), start_time + ts, trace_id)
    return SimulatedTrip(trace=trace, path=path, point_states=states, true_points=true_ll)


def _draw_od(net: RoadNetwork, n: int, rng: np.random.Generator, od: str, min_m: float, n_clusters: int,
             radius_m: float) -> tuple[np.ndarray, np.ndarray]:
    """``n`` origin and destination segments for the demand ``od`` (see :func:`simulate_trips`)."""
    if od == "random":
        return _random_od(net, n, rng, min_m)
    if od == "clustered":
        return _clustered_od(net, n, rng, min_m, n_clusters, radius_m)
    raise ValueError(f"od must be 'random' or 'clustered', got {od!r}")


def _od_far_enough(net: RoadNetwork, o: np.ndarray, d: np.ndarray, min_m: float) -> np.ndarray:
    mid = net.projection.forward(net.segment_midpoints)
    return (o != d) & (np.hypot(*(mid[o] - mid[d]).T) >= min_m)


def _random_od(net: RoadNetwork, n: int, rng: np.random.Generator, min_m: float) -> tuple[np.ndarray, np.ndarray]:
    o = rng.integers(0, net.n_states, n)
    d = rng.integers(0, net.n_states, n)
    for _ in range(100):
        bad = ~_od_far_enough(net, o, d, min_m)
        if not bad.any():
            return o, d
        d[bad] = rng.integers(0, net.n_states, int(bad.sum()))
    raise ValueError(f"cannot find origin/destination pairs {min_m:g} m apart on this network")


def _clustered_od(
    net: RoadNetwork, n: int, rng: np.random.Generator, min_m: float, n_clusters: int, radius_m: float
) -> tuple[np.ndarray, np.ndarray]:
    if n_clusters < 2:
        raise ValueError("clustered demand needs n_clusters >= 2")
    mid = net.projection.forward(net.segment_midpoints)
    centres: list[int] = []
    for s in rng.permutation(net.n_states):  # hubs spread out: far enough apart for trips between them
        if all(np.hypot(*(mid[s] - mid[c])) >= 2 * radius_m + min_m for c in centres):
            centres.append(int(s))
            if len(centres) == n_clusters:
                break
    if len(centres) < 2:
        raise ValueError("the network is too small for clustered demand with these radii")
    members = []
    for c in centres:
        dist = np.hypot(*(mid - mid[c]).T)
        inside = np.flatnonzero(dist <= radius_m)
        members.append(inside if inside.size >= 5 else np.argsort(dist)[:5])
    a = rng.integers(0, len(centres), n)
    b = (a + rng.integers(1, len(centres), n)) % len(centres)  # a different hub
    o = np.array([rng.choice(members[k]) for k in a])
    d = np.array([rng.choice(members[k]) for k in b])
    return o, d
