"""The drivers' temperature: calibrated to the asked route variety, clear of divergence."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.calibration import calibrate_temperature
from evaluation.metrics import route_match_fraction
from maxent_irl import RouteModel
from maxent_irl.exceptions import PartitionFunctionDivergedError
from maxent_irl.roads import RoadNetwork, default_true_theta, simulate_trips


def _share_matched_90(net: RoadNetwork, temperature: float, n_trips: int, seed: int) -> float:
    """Independent check of route variety: fresh trips, most likely paths from RouteModel, not the calibrator's."""
    theta = default_true_theta(net.feature_names)
    best = RouteModel(net.mdp, theta)
    sims = simulate_trips(net, theta / temperature, n_trips=n_trips, seed=seed, noise_m=0)
    match = [route_match_fraction(best.most_likely_path(s.origin, s.destination), s.path, net.segment_length_m)
             for s in sims]
    return float(np.mean(np.asarray(match) >= 0.9 - 1e-12))


def test_calibrated_temperature_gives_the_asked_route_variety(monaco: RoadNetwork) -> None:
    cal = calibrate_temperature(monaco, 0.5, n_trips=1000, seed=0)
    assert not cal.capped and cal.n_trips == 1000 and cal.target_match90 == 0.5
    assert 0.5 <= cal.match90 < 0.56  # the hottest temperature still at the target, on its own trips
    # on other trips the share is at the target up to sampling error (SE ~ 1.1 % + 1.6 % of the calibration)
    assert abs(_share_matched_90(monaco, cal.temperature, 2000, seed=11) - 0.5) < 0.07
    # more predictable routes need cooler drivers
    cooler = calibrate_temperature(monaco, 0.8, n_trips=1000, seed=0)
    assert cooler.temperature < cal.temperature and cooler.match90 >= 0.8


def test_calibration_stays_clear_of_divergence(monaco: RoadNetwork) -> None:
    """Targets beyond reach give 95 % of the temperature at which the sum over routes diverges, and more variety
    is never answered with cooler drivers."""
    theta = default_true_theta(monaco.feature_names)
    temps = {t: calibrate_temperature(monaco, t, n_trips=300, seed=0) for t in (0.5, 0.25, 0.12, 0.01)}
    assert not temps[0.5].capped and not temps[0.25].capped
    assert temps[0.12].capped and temps[0.01].capped  # 0.12 needs drivers between 0.95 T_c and T_c
    hottest = temps[0.01].temperature
    assert temps[0.12].temperature == hottest
    assert temps[0.5].temperature < temps[0.25].temperature < hottest
    critical = hottest / 0.95
    RouteModel(monaco.mdp, theta / (0.98 * critical)).system  # noqa: B018 - converges
    with pytest.raises(PartitionFunctionDivergedError):
        RouteModel(monaco.mdp, theta / (1.02 * critical)).system  # noqa: B018
    assert temps[0.12].match90 > 0.12  # the share it reports is the one at the capped temperature


def test_calibration_refuses_what_it_cannot_do(monaco: RoadNetwork) -> None:
    with pytest.raises(ValueError, match="target_match90"):
        calibrate_temperature(monaco, 1.0)
    with pytest.raises(ValueError):  # rewards must be negative: no most likely path, Z diverges at any T
        calibrate_temperature(monaco, 0.5, theta=np.ones(len(monaco.feature_names)), n_trips=10)
    with pytest.raises(ValueError):
        calibrate_temperature(monaco, 0.5, n_trips=10, od="nowhere")
