"""Router rows, bounded and complete, and map matching on networks too large for complete rows."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from maxent_irl.roads import MapMatcher, RoadNetwork, simulate_trips
from maxent_irl.roads import matching as matching_module
from maxent_irl.roads import routing as routing_module
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
    # 19,880 states: full rows would be 3.2 GB, so the router bounds every search
    net = grid_network(71)
    sims = simulate_trips(net, n_trips=4, seed=2, noise_m=10, interval_s=10, min_od_distance_m=2000)
    limits: list[float] = []
    real = routing_module.dijkstra

    def spy(*args: object, **kwargs: object) -> object:
        limits.append(float(kwargs.get("limit", np.inf)))  # type: ignore[arg-type]
        return real(*args, **kwargs)

    monkeypatch.setattr(routing_module, "dijkstra", spy)
    matcher = MapMatcher(net)
    for s in sims:
        r = matcher.match(s.trace)
        net.mdp.transition_indices(r.states)
        L = net.segment_length_m
        truth = np.unique(s.path)
        assert L[np.intersect1d(truth, r.states)].sum() / L[truth].sum() > 0.95
    # each search stops a few km out (before: one search over the whole network per candidate)
    assert limits and max(limits) < 10_000


@pytest.mark.parametrize("first_m", [500.0, 30.0])
def test_bounded_searches_give_the_same_matches(
    monaco: RoadNetwork, monkeypatch: pytest.MonkeyPatch, first_m: float
) -> None:
    # 30 m: most pairs are unknown after the short searches, so the certification re-searches many steps
    monkeypatch.setattr(matching_module, "_FIRST_MARGIN_M", first_m)
    monkeypatch.setattr(matching_module, "_FIRST_MARGIN_BETAS", first_m / 500.0)
    sims = simulate_trips(monaco, n_trips=12, seed=11, noise_m=30, interval_s=10)
    dense, bounded = MapMatcher(monaco), MapMatcher(monaco)
    bounded._router = _router(monaco, max_cache_bytes=50_000)
    assert dense._router.dense and not bounded._router.dense
    for s in sims:
        a, b = dense.match(s.trace), bounded.match(s.trace)
        # the same optimum (dense rows are float32: near-ties may flip, the likelihood may not)
        assert a.log_likelihood == pytest.approx(b.log_likelihood, abs=1e-3)
        assert a.breaks == b.breaks
        monaco.mdp.transition_indices(b.states)


def test_routes_beyond_the_margin_are_no_transition(monaco: RoadNetwork) -> None:
    # the same two fixes, far apart along a route but close as the crow flies: a break, not a 5 km detour
    matcher = MapMatcher(monaco, sigma_m=5, search_radius_m=3)
    C = np.array([[0], [1]])
    off = np.zeros((2, 1))
    gc = np.array([10.0])
    route = matcher._router.pair_distances(np.array([0]), np.array([1]))[0] - monaco.segment_length_m[1]
    route += monaco.segment_length_m[0]
    logp, upper = matcher._transition_bounds(C[:-1], C[1:], off[:-1], off[1:], gc, 5.0, 30.0, route - 11.0, 1e9)
    assert logp[0, 0, 0] == -np.inf and upper[0, 0, 0] == -np.inf
    logp, _ = matcher._transition_bounds(C[:-1], C[1:], off[:-1], off[1:], gc, 5.0, 30.0, route - 9.0, 1e9)
    assert logp[0, 0, 0] == pytest.approx(-(route - 10.0) / 5.0)
