"""Summaries of a destination posterior: clusters (NMS), the expected-distance point (Weiszfeld), heat maps."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from maxent_irl.destination_summaries import (
    DestinationSummarizer,
    expected_distance,
    geometric_median,
    heat_map,
    neighbourhood_mass,
    top_destinations,
    truncate_mass,
)
from maxent_irl.exceptions import InvalidParameterError


def brute_force_median(xy: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, float]:
    """A fine grid over the hull's box, then Nelder-Mead from the best grid point and from every data point."""
    f = lambda y: float(p @ np.hypot(*(xy - y).T) / p.sum())  # noqa: E731
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    g = np.stack(np.meshgrid(np.linspace(lo[0], hi[0], 201), np.linspace(lo[1], hi[1], 201)), -1).reshape(-1, 2)
    starts = np.concatenate([g[[int(np.argmin([f(y) for y in g]))]], xy])
    best = min((minimize(f, s, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 4000})
                for s in starts), key=lambda r: r.fun)
    return best.x, float(best.fun)


@pytest.mark.parametrize("seed", range(5))
def test_weiszfeld_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0.0, 1000.0, (12, 2))
    p = rng.exponential(size=12) ** 2
    gm = geometric_median(xy, p, tol_m=1e-4)
    x_bf, f_bf = brute_force_median(xy, p)
    assert gm.expected_distance == pytest.approx(f_bf, abs=1e-4)
    assert gm.expected_distance == pytest.approx(expected_distance(xy, p, gm.point), rel=1e-12)
    assert gm.bound <= f_bf + 1e-9  # the certificate is a true lower bound
    assert gm.expected_distance - gm.bound <= 1e-4
    np.testing.assert_allclose(gm.point, x_bf, atol=0.05)


def test_weiszfeld_at_a_heavy_data_point() -> None:
    """A point holding more than half the mass is the median (Weiszfeld alone would stall next to it)."""
    xy = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [-50.0, -80.0]])
    p = np.array([0.55, 0.15, 0.15, 0.15])
    gm = geometric_median(xy, p, tol_m=1e-6)
    np.testing.assert_allclose(gm.point, [0.0, 0.0], atol=1e-6)
    assert gm.expected_distance == pytest.approx(expected_distance(xy, p, [0.0, 0.0]))


def test_collinear_and_single_point() -> None:
    xy = np.array([[0.0, 0.0], [10.0, 0.0], [30.0, 0.0]])
    gm = geometric_median(xy, np.array([1.0, 1.0, 1.0]), tol_m=1e-6)
    np.testing.assert_allclose(gm.point, [10.0, 0.0], atol=1e-4)  # the 1-D median
    one = geometric_median(np.array([[5.0, 7.0]]), np.array([2.0]))
    np.testing.assert_allclose(one.point, [5.0, 7.0])
    assert one.expected_distance == 0.0


def test_truncated_median_reports_its_mass_and_stays_close() -> None:
    rng = np.random.default_rng(7)
    xy = np.concatenate([rng.normal(0, 200, (2000, 2)), rng.uniform(-5000, 5000, (3000, 2))])
    p = np.concatenate([np.full(2000, 1.0), np.full(3000, 1e-4)])
    full = geometric_median(xy, p)
    cut = geometric_median(xy, p, mass=0.99)
    assert cut.mass_used >= 0.99
    # the neglected mass can move the objective by at most its share of the farthest distance
    worst = (1 - cut.mass_used) * np.hypot(*(xy - cut.point).T).max()
    assert expected_distance(xy, p, cut.point) <= full.expected_distance + worst + 1e-6


def test_truncate_mass() -> None:
    p = np.array([0.1, 0.5, 0.0, 0.3, 0.1])
    assert set(truncate_mass(p, 0.8)) == {1, 3}
    assert set(truncate_mass(p, 0.81)) == {1, 3, 0} or set(truncate_mass(p, 0.81)) == {1, 3, 4}
    assert set(truncate_mass(p, 1.0)) == {0, 1, 3, 4}
    with pytest.raises(InvalidParameterError):
        truncate_mass(p, 0.0)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("smooth", [True, False])
def test_clusters_are_never_closer_than_the_radius(seed: int, smooth: bool) -> None:
    rng = np.random.default_rng(seed)
    xy = np.concatenate([rng.normal(c, 150, (300, 2)) for c in rng.uniform(0, 5000, (6, 2))])
    p = rng.exponential(size=xy.shape[0])
    radius = 400.0
    cl = top_destinations(xy, p, radius, k=8, smooth=smooth)
    centres = np.array([c.xy for c in cl])
    d = np.hypot(*(centres[:, None, :] - centres[None, :, :]).transpose(2, 0, 1))
    assert np.all(d[~np.eye(len(cl), dtype=bool)] >= radius)
    masses = [c.mass for c in cl]
    assert masses == sorted(masses, reverse=True)
    members = np.concatenate([c.members for c in cl])
    assert np.unique(members).size == members.size  # a partition of what they cover
    for c in cl:
        assert c.index in c.members
        assert c.mass == pytest.approx(p[c.members].sum() / p.sum())
        assert np.all(np.hypot(*(xy[c.members] - c.xy).T) <= radius + 1e-9)
    assert sum(masses) <= 1.0 + 1e-12


def test_neighbouring_spikes_make_one_cluster_and_smoothing_finds_the_heavier_place() -> None:
    # place A: one spike of 0.2; place B: ten segments of 0.05 (0.5 in all) 20 m apart; far away
    xy = np.concatenate([[[0.0, 0.0]], np.column_stack([5000.0 + 20 * np.arange(10), np.zeros(10)])])
    p = np.concatenate([[0.2], np.full(10, 0.05)])
    smooth = top_destinations(xy, p, 500.0, k=2)
    assert len(smooth) == 2
    assert smooth[0].mass == pytest.approx(0.5 / 0.7) and smooth[0].members.size == 10
    assert smooth[1].index == 0
    # by peak alone the lone spike opens the first cluster, but clusters are ranked by mass
    spiky = top_destinations(xy, p, 500.0, k=1, smooth=False)
    assert spiky[0].index != 0 and spiky[0].mass == pytest.approx(0.5 / 0.7)


def test_neighbourhood_mass() -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1000, (200, 2))
    p = rng.exponential(size=200)
    big = neighbourhood_mass(xy, p, 2000.0)
    np.testing.assert_allclose(big, p.sum())  # everything is in every neighbourhood
    small = neighbourhood_mass(xy, p, 50.0)
    assert np.all(small >= p - 1e-12) and np.all(small <= p.sum())
    # every entry within radius (Chebyshev) of another is counted in its block
    i = 0
    near = np.max(np.abs(xy - xy[i]), axis=1) <= 50.0
    assert small[i] >= p[near].sum() - 1e-12


def test_heat_map() -> None:
    p = np.array([4.0, 3.0, 2.0, 1.0, 0.0])
    idx, q = heat_map(p, mass=0.7)
    assert list(idx) == [0, 1]
    np.testing.assert_allclose(q, [0.4, 0.3])
    idx, q = heat_map(p, mass=1.0, threshold=0.15)
    assert list(idx) == [0, 1, 2]
    idx, _ = heat_map(p, mass=1.0, max_entries=1)
    assert list(idx) == [0]
    with pytest.raises(InvalidParameterError):
        heat_map(np.zeros(3))


def test_summarizer_reuses_its_tree_and_rejects_bad_input() -> None:
    xy = np.array([[0.0, 0.0], [1000.0, 0.0]])
    s = DestinationSummarizer(xy)
    a = s.top_destinations(np.array([1.0, 2.0]), 100.0, k=5)
    assert [c.index for c in a] == [1, 0]
    with pytest.raises(InvalidParameterError):
        s.top_destinations(np.array([1.0, -1.0]), 100.0)
    with pytest.raises(InvalidParameterError):
        s.top_destinations(np.array([1.0, 1.0]), 0.0)
    with pytest.raises(InvalidParameterError):
        geometric_median(xy, np.array([1.0]))
