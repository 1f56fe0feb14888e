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
    samples = model.sample_paths(o, d, 20_000, seed=0)
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
