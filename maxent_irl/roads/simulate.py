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

from maxent_irl.inference import RouteModel
from maxent_irl.roads.features import default_true_theta
from maxent_irl.roads.network import RoadNetwork
from maxent_irl.roads.trace import Trace

__all__ = ["SimulatedTrip", "draw_od", "simulate_gps", "simulate_trips"]


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
    origins, dests = draw_od(net, n_trips, rng, od, min_od_distance_m, n_clusters, cluster_radius_m)
    paths = model.sample_trips(origins, dests, random_state=rng)
    trips = []
    t0 = float(start_time)
    for i, path in enumerate(paths):
        factor = float(rng.uniform(lo, hi))
        trip = simulate_gps(net, path, rng, noise_m=noise_m, interval_s=interval_s, speed_factor=factor,
                            start_time=t0, trace_id=f"sim{i:05d}")
        trips.append(trip)
        t0 = float(trip.trace.times[-1]) + pause_s  # type: ignore[index]
    return trips


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


def draw_od(net: RoadNetwork, n: int, rng: np.random.Generator, od: str = "random", min_m: float = 1000.0,
            n_clusters: int = 4, radius_m: float = 800.0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` origin and destination segments ``(n,)`` each for the demand ``od`` (see :func:`simulate_trips`)."""
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
