"""Router rows, bounded and complete, and map matching on networks too large for complete rows."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from maxent_irl.roads import MapMatcher, RoadNetwork, simulate_trips
from maxent_irl.roads import corridor as corridor_module
from maxent_irl.roads import matching as matching_module
from maxent_irl.roads import routing as routing_module
from maxent_irl.roads.geo import haversine_m
from maxent_irl.roads.routing import Router
from maxent_irl.roads.synthetic import grid_network


def _router(net: RoadNetwork, max_cache_bytes: int = 256 * 2**20) -> Router:
    extra = np.where(net.is_uturn, 100.0, 0.0)
    return Router(net.mdp.src, net.mdp.dst, net.segment_length_m, extra_cost=extra, max_cache_bytes=max_cache_bytes)


def _path_cost(router: Router, path: np.ndarray) -> float:
    return float(sum(router.graph[int(x), int(y)] for x, y in itertools.pairwise(path)))


def test_bounded_rows_agree_with_complete_rows(monaco: RoadNetwork) -> None:
    dense, sparse = _router(monaco), _router(monaco, max_cache_bytes=100_000)
    assert dense.dense and not sparse.dense
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, monaco.n_states, (2, 3000))
    full = dense.pair_distances(a, b).astype(np.float32)  # dense rows are float32
    for limit in (150.0, 800.0, rng.uniform(0, 3000, a.size), None):
        lim = np.inf if limit is None else limit
        want = np.where(full <= lim, full, np.inf)
        for router in (dense, sparse):
            got = router.pair_distances(a, b, limit_m=limit)
            assert np.array_equal(np.isfinite(got), np.isfinite(want))
            assert np.allclose(got[np.isfinite(got)], want[np.isfinite(want)], rtol=1e-6)
    # what a bounded search found, even past the limit, is exact; what it did not is farther than its reach
    d, reach = sparse.pair_distances_reached(a, b, limit_m=300.0)
    assert np.all(reach >= 300.0)
    assert np.allclose(d[np.isfinite(d)], full[np.isfinite(d)], rtol=1e-6)
    assert np.all(full[~np.isfinite(d)] > reach[~np.isfinite(d)])
    # the cache stays within its budget, and shortest paths come out of bounded rows too
    assert sparse._bytes <= sparse.max_cache_bytes
    for i in range(50):
        p = sparse.shortest_path(a[i], b[i])
        assert p[0] == a[i] and p[-1] == b[i]
        assert _path_cost(sparse, p) == pytest.approx(float(full[i]), rel=1e-5)
    with pytest.raises(ValueError, match="same shape"):
        sparse.pair_distances(a, b[:-1])


def test_matching_never_searches_the_whole_of_a_large_network(monkeypatch: pytest.MonkeyPatch) -> None:
    # 19,880 states: full rows would be 3.2 GB; the matcher searches corridors around the trace instead
    net = grid_network(71)
    sims = simulate_trips(net, n_trips=4, seed=2, noise_m=10, interval_s=10, min_od_distance_m=2000)
    sizes: list[int] = []
    limits: list[float] = []
    real_corridor, real_router = corridor_module.dijkstra, routing_module.dijkstra

    def spy_corridor(graph: object, *args: object, **kwargs: object) -> object:
        sizes.append(graph.shape[0])  # type: ignore[attr-defined]
        return real_corridor(graph, *args, **kwargs)

    def spy_router(*args: object, **kwargs: object) -> object:
        limits.append(float(kwargs.get("limit", np.inf)))  # type: ignore[arg-type]
        return real_router(*args, **kwargs)

    monkeypatch.setattr(corridor_module, "dijkstra", spy_corridor)
    monkeypatch.setattr(routing_module, "dijkstra", spy_router)
    matcher = MapMatcher(net)
    for s in sims:
        r = matcher.match(s.trace)
        net.mdp.transition_indices(r.states)
        L = net.segment_length_m
        truth = np.unique(s.path)
        assert L[np.intersect1d(truth, r.states)].sum() / L[truth].sum() > 0.95
    # every search runs on a small part of the network; any on the whole of it stops a few km out
    assert sizes and max(sizes) < net.n_states / 5
    assert not limits or max(limits) < 10_000


def test_routes_beyond_the_limit_are_no_transition(monaco: RoadNetwork, monkeypatch: pytest.MonkeyPatch) -> None:
    # two fixes at the starts of states 0 and 1: a transition iff the route is within the step's limit
    # (the last candidate of each point is the matcher's off-road one)
    matcher = MapMatcher(monaco, sigma_m=5, search_radius_m=3)
    C = np.array([[0, -1], [1, -1]])
    off = np.zeros((2, 2))
    lonlat = monaco.points_along(np.array([0, 1]), np.zeros(2))
    xy = monaco.projection.forward(lonlat)
    gc = float(haversine_m(lonlat[0], lonlat[1]))
    L = monaco.segment_length_m
    route = float(matcher._router.pair_distances(np.array([0]), np.array([1]))[0]) + L[0] - L[1]
    p = matching_module._Params(sigma=5.0, radius=3.0, beta=5.0, backtrack=30.0, times=None)
    untimed = 2.0 * gc + matcher.uturn_penalty_m  # the limit without the margin
    for margin, finite in ((route - untimed - 1.0, False), (route - untimed + 1.0, True)):
        monkeypatch.setattr(matching_module, "_UNTIMED_MARGIN_M", margin)
        logp, _ = matcher._transitions(C, off, xy, lonlat, None, p)
        assert np.isfinite(logp[0, 0, 0]) == finite
        if finite:
            assert logp[0, 0, 0] == pytest.approx(-abs(route - gc) / 5.0)
    # with times, a route faster than max_speed_kmh (beyond the noise allowance of 2 radii) is none either
    monkeypatch.setattr(matching_module, "_UNTIMED_MARGIN_M", 1e6)
    speed = matcher.max_speed_kmh / 3.6
    for extra, finite in ((-1.0, False), (1.0, True)):
        dt = (route + extra - matcher.uturn_penalty_m - 2 * 3.0) / speed
        logp, _ = matcher._transitions(C, off, xy, lonlat, np.array([0.0, dt]), p)
        assert np.isfinite(logp[0, 0, 0]) == finite
