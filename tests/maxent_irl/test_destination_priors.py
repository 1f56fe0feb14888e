"""Destination priors: kernels, bandwidth choice by held-out likelihood, mixtures, conditionals, distance decay."""

from __future__ import annotations

import numpy as np
import pytest

from maxent_irl.destination_priors import (
    DistanceDecayPrior,
    conditional_prior,
    cross_validate_bandwidth,
    cross_validate_multiscale,
    destination_kernel,
    heldout_log_likelihood,
    kernel_weights,
    mixture_weights,
    select_bandwidth,
    smoothed_prior,
    with_floor,
)
from maxent_irl.exceptions import InvalidParameterError


def grid(side_m: float, step_m: float) -> np.ndarray:
    g = np.arange(0.0, side_m + 1e-9, step_m)
    return np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)


def snap(support: np.ndarray, pts: np.ndarray) -> np.ndarray:
    from scipy.spatial import cKDTree

    return cKDTree(support).query(pts)[1]


def test_kernel_columns_are_unit_masses_with_gaussian_shape() -> None:
    support = grid(1000.0, 10.0)
    pts = np.array([[500.0, 500.0], [0.0, 0.0], [5000.0, 5000.0]])  # centre, a corner, far outside
    K = destination_kernel(support, pts, 50.0)
    np.testing.assert_allclose(np.asarray(K.sum(axis=0)).ravel(), 1.0)
    col = K[:, 0].toarray().ravel()
    # Gaussian ratios on the grid: exp(-r^2 / 2h^2) between the centre and a point 50 m away
    c, off = snap(support, pts[:1])[0], snap(support, [[550.0, 500.0]])[0]
    assert col[off] / col[c] == pytest.approx(np.exp(-0.5), rel=1e-9)
    assert np.all(col[np.hypot(*(support - pts[0]).T) > 4 * 50.0 + 1e-9] == 0)  # cut at 4 h
    # the point far outside puts its whole mass on its nearest support point
    far = K[:, 2].toarray().ravel()
    assert far[snap(support, pts[2:])[0]] == pytest.approx(1.0)
    # a corner point keeps its unit mass on the quarter disc inside (no boundary loss)
    assert K[:, 1].sum() == pytest.approx(1.0)


def test_support_weights_scale_the_mass_each_support_point_takes() -> None:
    support = np.array([[0.0, 0.0], [1.0, 0.0]])
    K = destination_kernel(support, np.array([[0.5, 0.0]]), 100.0, support_weights=np.array([1.0, 3.0]))
    np.testing.assert_allclose(K.toarray().ravel(), [0.25, 0.75])


def test_floor_and_smoothed_prior() -> None:
    p = with_floor(np.array([1.0, 0.0, 0.0, 1.0]), 0.2, np.array([1.0, 1.0, 2.0, 0.0]))
    np.testing.assert_allclose(p, [0.4 + 0.05, 0.05, 0.1, 0.4])
    assert p.sum() == pytest.approx(1.0)
    support = grid(100.0, 10.0)
    K = destination_kernel(support, np.array([[50.0, 50.0], [0.0, 0.0]]), 20.0)
    prior = smoothed_prior(K, floor=0.1)
    assert prior.sum() == pytest.approx(1.0) and prior.min() > 0
    with pytest.raises(InvalidParameterError):
        with_floor(p, 1.5)


@pytest.mark.parametrize("sigma", [40.0, 80.0])
def test_heldout_likelihood_recovers_the_kernel_width_that_made_the_data(sigma: float) -> None:
    """Held-out points scattered around known centres with a Gaussian of width sigma: the prior built on the
    centres is the true density exactly when h = sigma, so the held-out likelihood must pick it."""
    rng = np.random.default_rng(1)
    support = grid(3000.0, 10.0)
    centres = rng.uniform(600.0, 2400.0, (25, 2))
    held = np.repeat(centres, 120, axis=0) + rng.normal(0.0, sigma, (25 * 120, 2))
    bandwidths = np.arange(20.0, 161.0, 10.0)
    h, floor, scores = select_bandwidth(support, centres, snap(support, held), bandwidths, floors=(0.0, 0.05))
    assert abs(h - sigma) <= 10.0
    assert floor == 0.0  # no uniform part in this data
    assert scores.shape == (bandwidths.size, 2)


def test_cross_validation_prefers_smoothing_to_spikes_on_diffuse_data() -> None:
    rng = np.random.default_rng(2)
    support = grid(2000.0, 20.0)
    pts = rng.uniform(200.0, 1800.0, (300, 2))
    sel = cross_validate_bandwidth(support, pts, snap(support, pts), (10.0, 50.0, 200.0, 800.0), (0.0, 0.1))
    assert sel.bandwidth >= 200.0  # uniform data: broad kernels win, the 10 m spikes lose
    folds = np.arange(300) % 3
    sel2 = cross_validate_bandwidth(support, pts, snap(support, pts), (10.0, 800.0), folds=folds)
    assert sel2.bandwidth == 800.0 and sel2.scores.shape == (2, 1)


def test_mixture_weights_recover_known_mixture() -> None:
    rng = np.random.default_rng(3)
    n = 50
    c1 = rng.dirichlet(np.ones(n))
    c2 = rng.dirichlet(np.ones(n) * 0.2)
    truth = np.array([0.3, 0.7])
    x = rng.choice(n, size=20000, p=truth[0] * c1 + truth[1] * c2)
    w = mixture_weights(np.column_stack([c1[x], c2[x]]))
    np.testing.assert_allclose(w, truth, atol=0.03)
    assert w.sum() == pytest.approx(1.0)
    with pytest.raises(InvalidParameterError):
        mixture_weights(np.zeros((3, 2)))


def test_multiscale_puts_weight_on_both_scales_of_two_scale_data() -> None:
    """Half the destinations at a few exact spots, half spread widely: one narrow and one broad kernel."""
    rng = np.random.default_rng(4)
    support = grid(3000.0, 25.0)
    spots = rng.uniform(500.0, 2500.0, (5, 2))
    pts = np.concatenate([spots[rng.integers(0, 5, 200)] + rng.normal(0, 5.0, (200, 2)),
                          rng.uniform(0.0, 3000.0, (200, 2))])
    idx = snap(support, pts)
    bws = (25.0, 100.0, 400.0, 1600.0)
    ms = cross_validate_multiscale(support, pts, idx, bws, folds=np.arange(400) % 5)
    assert ms.weights[0] > 0.3  # the spots
    assert ms.weights[2:].sum() + ms.floor > 0.3  # the diffuse half
    assert ms.heldout_loglik > ms.single.max()  # better than any single bandwidth with its best floor
    K = ms.kernel(support, pts)
    np.testing.assert_allclose(np.asarray(K.sum(axis=0)).ravel(), 1.0)


def test_kernel_weights_circular_time_and_planar_origin() -> None:
    w = kernel_weights(23.5, np.array([0.5, 12.0, 23.5]), 1.0, period=24.0)
    np.testing.assert_allclose(w, [np.exp(-0.5), np.exp(-0.5 * 11.5**2), 1.0])
    w2 = kernel_weights(np.array([0.0, 0.0]), np.array([[3.0, 4.0], [0.0, 0.0]]), 5.0)
    np.testing.assert_allclose(w2, [np.exp(-0.5), 1.0])


def test_conditional_prior_mixes_the_similar_trips_destinations() -> None:
    support = grid(1000.0, 50.0)
    dests = np.array([[100.0, 100.0], [900.0, 900.0]])
    K = destination_kernel(support, dests, 50.0)
    marginal = with_floor(np.asarray(K.mean(axis=1)).ravel(), 0.1)
    # all weight on trip 1: half the mass (mix) moves to its destination
    p = conditional_prior(K, np.array([0.0, 1.0]), marginal, mix=0.5)
    assert p.sum() == pytest.approx(1.0)
    near1 = np.hypot(*(support - dests[1]).T) < 200
    assert p[near1].sum() == pytest.approx(0.5 * marginal[near1].sum() + 0.5 * K[:, 1].toarray().ravel()[near1].sum())
    # a query unlike every stored trip: the marginal
    np.testing.assert_allclose(conditional_prior(K, np.zeros(2), marginal, 0.5), marginal)
    # a tiny effective sample shrinks the conditional part
    p_small = conditional_prior(K, np.array([0.0, 1.0]), marginal, mix=0.5, min_effective=4.0)
    assert p_small[near1].sum() < p[near1].sum()


def test_distance_decay_learns_the_trip_length_profile() -> None:
    """Trips all 1-1.5 km long on a uniform city: the fitted profile favours that bin, and helps."""
    rng = np.random.default_rng(5)
    support = grid(4000.0, 50.0)
    base = np.full(support.shape[0], 1.0 / support.shape[0])
    origins = rng.uniform(1000.0, 3000.0, (150, 2))
    ang = rng.uniform(0, 2 * np.pi, 150)
    r = rng.uniform(1000.0, 1500.0, 150)
    dests = origins + np.column_stack([r * np.cos(ang), r * np.sin(ang)])
    idx = snap(support, dests)
    model = DistanceDecayPrior(edges=(0, 500, 1000, 1500, 3000), l2=1e-3).fit(support, base, origins, idx)
    assert int(np.argmax(model.beta_)) == 2
    q = model(support, base, origins[0])
    assert q.sum() == pytest.approx(1.0)
    assert heldout_log_likelihood(q, idx[:1]) > heldout_log_likelihood(base, idx[:1])
    with pytest.raises(InvalidParameterError):
        DistanceDecayPrior(edges=(100, 50))
    with pytest.raises(InvalidParameterError):
        DistanceDecayPrior()(support, base, origins[0])


def test_distance_decay_groups_learn_their_own_profiles() -> None:
    """Slow cars stop near the reference point, fast ones far from it: one profile per group."""
    rng = np.random.default_rng(6)
    support = grid(4000.0, 50.0)
    base = np.full(support.shape[0], 1.0 / support.shape[0])
    ref = rng.uniform(1500.0, 2500.0, (200, 2))
    groups = np.arange(200) % 2
    r = np.where(groups == 0, rng.uniform(0, 400, 200), rng.uniform(1000, 1400, 200))
    ang = rng.uniform(0, 2 * np.pi, 200)
    idx = snap(support, ref + np.column_stack([r * np.cos(ang), r * np.sin(ang)]))
    model = DistanceDecayPrior(edges=(0, 500, 1000, 1500), l2=1e-3, n_groups=2).fit(support, base, ref, idx, groups)
    assert model.beta_.shape == (2, 4)
    assert int(np.argmax(model.beta_[0])) == 0 and int(np.argmax(model.beta_[1])) == 2
    near = model(support, base, ref[0], group=0)
    far = model(support, base, ref[0], group=1)
    close = np.hypot(*(support - ref[0]).T) < 500
    assert near[close].sum() > 0.5 > far[close].sum()
    with pytest.raises(InvalidParameterError):
        DistanceDecayPrior(n_groups=2).fit(support, base, ref, idx, groups + 5)


def test_distance_decay_fit_maximizes_the_full_conditional_likelihood() -> None:
    """The per-bin reduction is exact: at the fitted beta, the likelihood computed over the whole support is
    stationary (finite differences of the full softmax vanish up to the L2 term)."""
    rng = np.random.default_rng(8)
    support = grid(2000.0, 100.0)
    bases = [rng.dirichlet(np.ones(support.shape[0])) for _ in range(40)]
    ref = rng.uniform(0, 2000, (40, 2))
    idx = rng.integers(0, support.shape[0], 40)
    groups = np.arange(40) % 2
    l2 = 1e-2
    m = DistanceDecayPrior(edges=(0, 400, 800, 1600), l2=l2, n_groups=2).fit(support, bases, ref, idx, groups)

    def full(beta: np.ndarray) -> float:
        m.beta_ = beta.reshape(2, 4)
        ll = sum(np.log(m(support, bases[i], ref[i], groups[i])[idx[i]]) for i in range(40))
        return -ll / 40 + 0.5 * l2 * float(beta @ beta)

    x = m.beta_.ravel().copy()
    # the objective is invariant to a constant per group, which the fit removes: compare along other directions
    for j in range(8):
        e = np.zeros(8)
        e[j] = 1e-4
        e[4 * (j // 4) : 4 * (j // 4) + 4] -= 1e-4 / 4
        grad = (full(x + e) - full(x - e)) / (2 * np.linalg.norm(e))
        assert abs(grad) < 1e-3
