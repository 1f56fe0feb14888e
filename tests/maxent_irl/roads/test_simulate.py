"""The driver simulator: reproducible, paths valid, GPS noise and sampling as asked, temperature calibrated."""

from __future__ import annotations

import numpy as np
import pytest

from maxent_irl import RouteModel
from maxent_irl.exceptions import PartitionFunctionDivergedError
from maxent_irl.metrics import route_match_fraction
from maxent_irl.roads import RoadNetwork, calibrate_temperature, default_true_theta, simulate_trips
from maxent_irl.roads.geo import haversine_m


def test_reproducible_and_seed_dependent(monaco: RoadNetwork) -> None:
    a = simulate_trips(monaco, n_trips=10, seed=7)
    b = simulate_trips(monaco, n_trips=10, seed=7)
    c = simulate_trips(monaco, n_trips=10, seed=8)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.path, y.path)
        assert np.array_equal(x.trace.points, y.trace.points)
        assert np.array_equal(x.trace.times, y.trace.times)  # type: ignore[arg-type]
    assert any(not np.array_equal(x.path, z.path) for x, z in zip(a, c, strict=True))


def test_paths_are_valid_and_match_the_od(monaco: RoadNetwork) -> None:
    sims = simulate_trips(monaco, n_trips=20, seed=1, min_od_distance_m=800)
    mids = monaco.projection.forward(monaco.segment_midpoints)
    for s in sims:
        monaco.mdp.transition_indices(s.path)  # raises if not connected
        assert s.origin == s.path[0] and s.destination == s.path[-1]
        assert np.hypot(*(mids[s.origin] - mids[s.destination])) >= 800
        assert set(np.unique(s.point_states)) <= set(s.path.tolist())
    ids = [s.trace.trace_id for s in sims]
    assert len(set(ids)) == len(ids)


def test_sampling_interval_and_noise(monaco: RoadNetwork) -> None:
    sims = simulate_trips(monaco, n_trips=30, seed=2, noise_m=20, interval_s=5)
    errors, prev_end = [], None
    for s in sims:
        t = s.trace.times
        assert t is not None
        assert np.allclose(np.diff(t)[:-1], 5.0) and 0 < np.diff(t)[-1] <= 5.0  # plus a final fix at arrival
        if prev_end is not None:
            assert t[0] > prev_end  # trips follow each other in time
        prev_end = t[-1]
        errors.append(haversine_m(s.trace.points, s.true_points))
        # the noise-free first point is the start of the origin segment
        assert s.true_points[0] == pytest.approx(monaco.segment_geometry(s.origin)[0], abs=1e-6)
    e = np.concatenate(errors)
    # isotropic Gaussian, 20 m per axis: the radial error has mean 20 * sqrt(pi / 2) = 25.1 m
    assert 23.0 < e.mean() < 27.5
    exact = simulate_trips(monaco, n_trips=3, seed=2, noise_m=0)
    assert all(np.allclose(s.trace.points, s.true_points) for s in exact)


def test_clustered_demand(monaco: RoadNetwork) -> None:
    sims = simulate_trips(monaco, n_trips=40, seed=3, od="clustered", n_clusters=2, cluster_radius_m=300,
                          min_od_distance_m=500)
    mids = monaco.projection.forward(monaco.segment_midpoints)
    o = mids[[s.origin for s in sims]]
    # two hubs: every origin lies within 300 m of one of two points, so the origins form two tight groups
    d = np.hypot(*(o[:, None, :] - o[None, :, :]).transpose(2, 0, 1))
    near = d <= 600
    groups = {tuple(np.flatnonzero(row)) for row in near}
    assert len(groups) <= 2 and len(sims) == 40
    with pytest.raises(ValueError):
        simulate_trips(monaco, n_trips=2, od="nowhere")
    with pytest.raises(ValueError):
        simulate_trips(monaco, n_trips=2, interval_s=0)


def test_custom_theta_and_model(monaco: RoadNetwork) -> None:
    theta = default_true_theta(monaco.feature_names)
    theta[monaco.feature_names.index("km_residential")] = -60.0  # residential streets now cost 10x
    avoid = simulate_trips(monaco, theta, n_trips=40, seed=4)
    base = simulate_trips(monaco, n_trips=40, seed=4)

    def residential_share(sims: list) -> float:
        km = [monaco.segment_length_m[s.path[1:]] for s in sims]
        res = [monaco.segment_length_m[s.path[1:]][monaco.segment_class[s.path[1:]] == "residential"] for s in sims]
        return sum(r.sum() for r in res) / sum(k.sum() for k in km)

    assert residential_share(avoid) < residential_share(base)
    model = RouteModel(monaco.mdp, theta)
    again = simulate_trips(monaco, n_trips=40, seed=4, model=model)
    assert all(np.array_equal(a.path, b.path) for a, b in zip(avoid, again, strict=True))
    assert simulate_trips(monaco, n_trips=0) == []


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
    temps = {t: calibrate_temperature(monaco, t, n_trips=300, seed=0) for t in (0.5, 0.25, 0.16, 0.01)}
    assert not temps[0.5].capped and not temps[0.25].capped
    assert temps[0.16].capped and temps[0.01].capped  # 0.16 needs drivers between 0.95 T_c and T_c
    hottest = temps[0.01].temperature
    assert temps[0.16].temperature == hottest
    assert temps[0.5].temperature < temps[0.25].temperature < hottest
    critical = hottest / 0.95
    RouteModel(monaco.mdp, theta / (0.98 * critical)).system  # noqa: B018 - converges
    with pytest.raises(PartitionFunctionDivergedError):
        RouteModel(monaco.mdp, theta / (1.02 * critical)).system  # noqa: B018
    assert temps[0.16].match90 > 0.16  # the share it reports is the one at the capped temperature


def test_calibration_refuses_what_it_cannot_do(monaco: RoadNetwork) -> None:
    with pytest.raises(ValueError, match="target_match90"):
        calibrate_temperature(monaco, 1.0)
    with pytest.raises(ValueError):  # rewards must be negative: no most likely path, Z diverges at any T
        calibrate_temperature(monaco, 0.5, theta=np.ones(len(monaco.feature_names)), n_trips=10)
    with pytest.raises(ValueError):
        calibrate_temperature(monaco, 0.5, n_trips=10, od="nowhere")
