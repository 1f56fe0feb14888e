"""Corridor searches: the same distances and paths as searches over the whole network, within their reach."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.sparse.csgraph import dijkstra

from maxent_irl.roads import MapMatcher, RoadNetwork, simulate_trips
from maxent_irl.roads import corridor as corridor_module
from maxent_irl.roads.corridor import window_distances
from maxent_irl.roads.synthetic import grid_network


def _check(net: RoadNetwork, seed: int) -> None:
    router = net.router(100.0)
    sims = simulate_trips(net, n_trips=4, seed=seed, noise_m=10, interval_s=5)
    rng = np.random.default_rng(seed)
    L = net.segment_length_m
    for s in sims:
        pts = s.trace.points[:40]
        C, _ = net.nearest_states(pts[:, 0], pts[:, 1], k=6, max_distance_m=60.0)
        xy = net.projection.forward(pts)
        m, K = C.shape
        need = rng.uniform(0.0, 700.0, (m - 1, K, K))
        # a route of length <= need from a state's end stays within need of it, and the end within
        # L[a] + 60 m of the fix: that reach makes the corridor exact
        reach = 60.0 + float(L[C[C >= 0]].max()) + float(need.max()) + 1.0
        got, window = window_distances(router.graph, net._tree, net._chunk_state, xy, C, need, reach)
        A, B = np.broadcast_arrays(C[:-1, :, None], C[1:, None, :])
        ok = (A >= 0) & (B >= 0) & (A != B)
        full = router.pair_distances(A[ok], B[ok])
        want = np.where(full <= need[ok], full, np.inf)
        assert np.array_equal(np.isfinite(got[ok]), np.isfinite(want))
        assert np.allclose(got[ok][np.isfinite(want)], want[np.isfinite(want)], rtol=1e-5)
        assert np.all(np.isinf(got[~ok]))
        # paths from the window cost what the distances say
        fin = np.flatnonzero(np.isfinite(got[ok]))[:30]
        for path, d in zip(window.paths(A[ok][fin], B[ok][fin]), got[ok][fin], strict=True):
            cost = sum(float(router.graph[int(x), int(y)]) for x, y in itertools.pairwise(path))
            assert cost == pytest.approx(float(d), rel=1e-6)


def test_corridor_distances_equal_whole_network_searches_monaco(monaco: RoadNetwork) -> None:
    _check(monaco, seed=3)


def test_corridor_distances_equal_whole_network_searches_grid() -> None:
    _check(grid_network(30, jitter=0.05, seed=1), seed=4)


def test_too_small_a_reach_misses_routes(monaco: RoadNetwork) -> None:
    # the reach is what makes the searches exact: a corridor of 1 m only knows routes along the candidates
    router = monaco.router(100.0)
    s = simulate_trips(monaco, n_trips=1, seed=5, noise_m=5, interval_s=10)[0]
    pts = s.trace.points[:20]
    C, _ = monaco.nearest_states(pts[:, 0], pts[:, 1], k=4, max_distance_m=40.0)
    xy = monaco.projection.forward(pts)
    need = np.full((C.shape[0] - 1, C.shape[1], C.shape[1]), 2000.0)
    wide, _ = window_distances(router.graph, monaco._tree, monaco._chunk_state, xy, C, need, 3000.0)
    narrow, _ = window_distances(router.graph, monaco._tree, monaco._chunk_state, xy, C, need, 1.0)
    assert np.isfinite(wide).sum() > np.isfinite(narrow).sum()
    both = np.isfinite(narrow)
    assert np.all(narrow[both] >= wide[both] - 1e-6)  # what the narrow one finds is never shorter


@pytest.mark.parametrize("interval_s", [1.0, 10.0])
def test_rows_cached_from_corridors_are_exact(interval_s: float) -> None:
    # 6,240 states: too many for complete rows, so the router keeps bounded rows, here filled by the
    # matcher's corridor searches; each must hold exactly the states within its limit, at their distance
    net = grid_network(40, jitter=0.05, seed=2)
    matcher = MapMatcher(net)
    router = matcher._router
    assert not router.dense
    for s in simulate_trips(net, n_trips=3, seed=6, noise_m=10, interval_s=interval_s, min_od_distance_m=1500):
        matcher.match(s.trace)
    rows = list(router._rows.items())
    assert len(rows) > 50
    sources = np.array([src for src, _ in rows])
    full = dijkstra(router.graph, directed=True, indices=sources)
    for k, (_, row) in enumerate(rows):
        within = np.flatnonzero(full[k] <= row.limit - 1e-6)
        assert np.isin(within, row.idx).all()  # nothing within the limit is missing
        got = row.dist[np.searchsorted(row.idx, within)]
        assert np.allclose(got, full[k, within], rtol=1e-9)
        assert np.all(row.dist <= row.limit)


def test_a_second_pass_reuses_the_cached_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    # on a large network, corridor searches fill the router's bounded rows: matching the same traces again
    # runs few corridor searches, and gives the same matches
    net = grid_network(40, jitter=0.05, seed=2)
    sims = simulate_trips(net, n_trips=3, seed=7, noise_m=10, interval_s=1.0, min_od_distance_m=1500)
    matcher = MapMatcher(net)
    calls: list[int] = []
    real = corridor_module._distances

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(corridor_module, "_distances", spy)
    first = [matcher.match(s.trace) for s in sims]
    n_first = len(calls)
    again = [matcher.match(s.trace) for s in sims]
    assert n_first > 10 and len(calls) - n_first <= 0.25 * n_first
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a.states, b.states) and np.array_equal(a.point_states, b.point_states)
        assert a.log_likelihood == pytest.approx(b.log_likelihood)
