"""Standard errors of theta: the finite-difference information against sampled path features."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from maxent_irl import RouteModel
from maxent_irl.uncertainty import covariance, information_matrix

MONACO = Path(__file__).resolve().parents[2] / "data" / "monaco_drive.osm.bz2"


def test_information_matrix_is_the_path_feature_covariance() -> None:
    """For MaxEnt, -Hessian of log P(path | o, d) = Cov[f(path) | o, d] whatever the observed path: the finite
    differences must agree with the covariance of sampled paths."""
    from maxent_irl.roads import RoadNetwork, default_true_theta

    net = RoadNetwork.load(MONACO)
    mdp, theta = net.mdp, default_true_theta(net.feature_names)
    model = RouteModel(mdp, theta)
    o, d = 10, 400
    observed = model.most_likely_path(o, d)
    columns: list[int] = []
    info = information_matrix(mdp, [observed], theta, ordering=model.ordering, callback=columns.append)
    assert columns == np.flatnonzero(np.any(mdp.features != 0, axis=0)).tolist()  # one column per present feature
    samples = model.sample_paths(o, d, 20_000, random_state=0)
    feats = np.array([mdp.features[mdp.transition_indices(p)].sum(axis=0) for p in samples])
    cov = np.cov(feats, rowvar=False)
    used = np.diag(cov) > 1e-3
    assert used.sum() >= 5
    np.testing.assert_allclose(np.diag(info)[used], np.diag(cov)[used], rtol=0.1)
    np.testing.assert_allclose(info[np.ix_(used, used)], cov[np.ix_(used, used)], atol=0.1 * np.diag(cov).max())
    assert np.all(info[~np.any(mdp.features != 0, axis=0)] == 0)  # features on no transition: zero rows


def test_covariance_inverts_the_identified_block_only() -> None:
    info = np.array([[4.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    cov = covariance(info)
    np.testing.assert_allclose(cov[:2, :2], np.linalg.inv(info[:2, :2]))
    assert cov[2, 2] == np.inf and np.isnan(cov[0, 2]) and np.isnan(cov[2, 1])


def test_information_is_the_exact_feature_covariance_by_enumeration() -> None:
    """On a small graph with cycles the covariance of path features is exact by enumeration: the central
    differences must match it to ~1e-6 (a forward difference is off by ~1e-4)."""
    from maxent_irl.reference import enumerate_paths
    from tests.maxent_irl.helpers import sink_mdp

    mdp = sink_mdp()
    theta = np.array([-1.3, -0.9])
    model = RouteModel(mdp, theta)
    trips = [model.most_likely_path(0, 4), model.most_likely_path(2, 3)]
    want = np.zeros((2, 2))
    for p in trips:
        feats, weights = [], []
        for _, t in enumerate_paths(mdp, int(p[0]), int(p[-1]), max_len=16):
            f = mdp.features[t].sum(axis=0)
            feats.append(f)
            weights.append(np.exp(f @ theta))
        feats, prob = np.array(feats), np.array(weights) / np.sum(weights)
        mean = prob @ feats
        want += (feats - mean).T @ ((feats - mean) * prob[:, None])
    info = information_matrix(mdp, trips, theta)
    np.testing.assert_allclose(info, want, rtol=1e-6)
    assert np.array_equal(info, info.T)


def test_covariance_of_collinear_and_barely_identified_features() -> None:
    """Exactly collinear weights share finite variance (pseudo-inverse); a feature with next to no information
    is treated as unidentified rather than given an absurd variance."""
    info = np.array([[2.0, 2.0], [2.0, 2.0]])  # two copies of one feature
    cov = covariance(info)
    assert np.all(np.isfinite(cov))
    np.testing.assert_allclose(cov, np.linalg.pinv(info))
    cov = covariance(np.diag([1.0, 1e-12]))
    assert cov[0, 0] == 1.0 and cov[1, 1] == np.inf
