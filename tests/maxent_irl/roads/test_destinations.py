"""The destination posterior on a network: a prior learned from stored trips, γ, and the summaries."""

from __future__ import annotations

import numpy as np
import pytest

from maxent_irl import RouteModel
from maxent_irl.roads import RoadNetwork, default_true_theta, simulate_trips
from maxent_irl.roads.destinations import (
    GAMMAS,
    DestinationPredictor,
    DestinationPriorParams,
    fit_destination_prior,
    partial_path,
)


@pytest.fixture(scope="module")
def fitted(monaco: RoadNetwork) -> tuple[RouteModel, list[np.ndarray], DestinationPriorParams]:
    model = RouteModel(monaco.mdp, default_true_theta(monaco.feature_names))
    paths = [s.path for s in simulate_trips(monaco, n_trips=120, seed=3, od="clustered", n_clusters=3)]
    return model, paths, fit_destination_prior(monaco, model, paths, max_query_trips=20)


def test_the_fitted_prior_is_a_proper_mixture(fitted) -> None:
    _, paths, params = fitted
    assert params.fitted_on == len(paths) and params.gamma in GAMMAS
    assert sum(params.weights) + params.floor == pytest.approx(1.0, abs=1e-6)
    assert len(params.gravity_beta) == len(params.gravity_edges_m)
    again = DestinationPriorParams.from_dict(params.to_dict())
    assert again == params
    assert DestinationPriorParams.from_dict(None).gamma == 1.0  # a model trained before the prior existed


def test_clustered_demand_puts_the_prior_on_the_hubs(monaco: RoadNetwork, fitted) -> None:
    model, paths, params = fitted
    dest = np.array([p[-1] for p in paths])
    pred = DestinationPredictor(monaco, model, params, dest)
    assert pred.marginal.sum() == pytest.approx(1.0)
    hubs = np.unique(dest)
    assert pred.marginal[hubs].sum() > 3 * monaco.segment_length_m[hubs].sum() / monaco.segment_length_m.sum()


def test_the_posterior_is_the_core_rule_with_the_learned_prior(monaco: RoadNetwork, fitted) -> None:
    """With γ = 1 and no gravity profile, the posterior is RouteModel.destination_posterior with the marginal."""
    model, paths, params = fitted
    plain = DestinationPriorParams(params.bandwidths_m, params.weights, params.floor, [], [], 1.0)
    pred = DestinationPredictor(monaco, model, plain, np.array([p[-1] for p in paths]))
    part = partial_path(paths[0], 0.5, monaco.segment_length_m)
    post = pred.posterior(part)
    np.testing.assert_allclose(post, model.destination_posterior(part, prior=pred.marginal), atol=1e-12)
    answer = DestinationPredictor(monaco, model, params, np.array([p[-1] for p in paths])).answer(part, top=3)
    assert answer.probabilities.sum() == pytest.approx(1.0) and len(answer.clusters) == 3
    assert answer.expected_distance_m > 0 and np.all(np.isfinite(answer.point_lonlat))


def test_few_trips_keep_the_defaults(monaco: RoadNetwork) -> None:
    model = RouteModel(monaco.mdp, default_true_theta(monaco.feature_names))
    paths = [s.path for s in simulate_trips(monaco, n_trips=5, seed=1)]
    params = fit_destination_prior(monaco, model, paths)
    assert params == DestinationPriorParams(fitted_on=5, notes=params.notes) and "too few" in params.notes["reason"]


def test_the_stop_profile_is_chosen_out_of_fold_and_survives_storage(fitted) -> None:
    _, _, params = fitted
    errors = params.notes["stop_mean_error_m"]
    assert set(errors) == {"none", "pooled", "driven"}
    assert params.notes["stop_profile"] == min(errors, key=errors.__getitem__)
    if params.notes["stop_profile"] == "none":
        assert params.stop_beta == []
    else:
        assert len(params.stop_beta) == len(params.stop_driven_edges_m) + 1
        assert all(len(row) == len(params.stop_edges_m) for row in params.stop_beta)
    assert DestinationPriorParams.from_dict(params.to_dict()) == params


def test_the_stop_profile_reweights_by_distance_from_the_current_segment(monaco: RoadNetwork, fitted) -> None:
    """posterior = the plain posterior times exp(beta[driven class][distance bin]), renormalized."""
    model, paths, params = fitted
    dest = np.array([p[-1] for p in paths])
    edges = [0.0, 300.0, 1000.0]
    beta = [[2.0, 0.5, -1.0], [0.0, 1.0, 0.0]]
    with_stop = DestinationPriorParams(**{**params.to_dict(), "stop_edges_m": edges, "stop_beta": beta,
                                          "stop_driven_edges_m": [500.0]})
    without = DestinationPriorParams(**{**params.to_dict(), "stop_edges_m": [], "stop_beta": [],
                                        "stop_driven_edges_m": []})
    pred = DestinationPredictor(monaco, model, with_stop, dest)
    plain = DestinationPredictor(monaco, model, without, dest)
    part = partial_path(paths[1], 0.6, monaco.segment_length_m)
    driven = monaco.segment_length_m[part].sum()
    group = int(driven > 500.0)
    r = np.hypot(*(pred.xy - pred.xy[part[-1]]).T)
    expected = plain.posterior(part) * np.exp(np.asarray(beta[group])[np.searchsorted(edges, r, side="right") - 1])
    np.testing.assert_allclose(pred.posterior(part), expected / expected.sum(), rtol=1e-9, atol=1e-15)
