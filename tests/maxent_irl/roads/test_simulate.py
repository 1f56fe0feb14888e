"""The driver simulator: reproducible, paths valid, GPS noise and sampling as asked."""

from __future__ import annotations

import numpy as np
import pytest

from maxent_irl import RouteModel
from maxent_irl.roads import RoadNetwork, default_true_theta, simulate_trips
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
