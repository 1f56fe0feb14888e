"""The Borlänge benchmark's reading of RL's files, and the claim it rests on: the core's likelihood is RL's.

Checked on small synthetic data sets written in RL's four file formats (the real data is
never in the repository), against the benchmark's direct RL computation (``z = (I - M)^-1 b``
on the real links), which shares no code with the core.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.bench_borlange import (
    PUBLISHED,
    DataError,
    DirectRL,
    build_mdp,
    load_rl_data,
    make_synthetic,
    rl_features,
)
from maxent_irl import RouteMDP, RouteModel

THETAS = [PUBLISHED, np.array([-1.0, -0.3, -0.8, -2.0])]


@pytest.fixture(scope="module")
def node_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Dummies entered from every link into the destination node, as in Borlänge."""
    out = tmp_path_factory.mktemp("rl_node")
    make_synthetic(out, side=8, n_dest=12, n_obs=60, theta=PUBLISHED, seed=1, dummy_from="node")
    return out


@pytest.fixture(scope="module")
def link_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Dummies entered from one link only: RL's destination is then that link."""
    out = tmp_path_factory.mktemp("rl_link")
    make_synthetic(out, side=8, n_dest=12, n_obs=60, theta=PUBLISHED, seed=2, dummy_from="link")
    return out


def _core_ll(mdp: RouteMDP, paths: list[np.ndarray], theta: np.ndarray) -> float:
    return RouteModel(mdp, theta).log_likelihood(paths)


def test_routes_end_at_their_dummy_and_features_follow_the_rl_rules(node_dir: Path) -> None:
    data = load_rl_data(node_dir)
    assert len(data.routes) == 60
    assert all(r[-1] >= data.n_real and np.all(r[:-1] < data.n_real) for r in data.routes)
    f = rl_features(data)
    into_dummy = data.dst >= data.n_real
    assert np.all(f[into_dummy] == 0)  # the turn into a dummy has weight 1
    assert np.array_equal(f[:, 3] == 1, np.abs(data.angle) > 3.1)
    assert np.array_equal(f[:, 1] == 1, (data.angle < -0.5236) & (data.angle > -3.1))
    assert not np.any((f[:, 1] == 1) & (f[:, 3] == 1))


@pytest.mark.parametrize("theta", THETAS, ids=["published", "other"])
def test_the_core_likelihood_with_dummy_states_is_rl(node_dir: Path, theta: np.ndarray) -> None:
    data = load_rl_data(node_dir)
    mdp, paths = build_mdp(data, "dummy")
    assert _core_ll(mdp, paths, theta) == pytest.approx(DirectRL(data).log_likelihood(theta), rel=1e-10)


def test_ending_on_the_last_real_link_is_not_rl_when_a_dummy_has_several_entries(node_dir: Path) -> None:
    """RL's Z sums the paths into every entry of the destination node: the last-link model's is smaller."""
    data = load_rl_data(node_dir)
    mdp, paths = build_mdp(data, "last-link")
    assert _core_ll(mdp, paths, PUBLISHED) > DirectRL(data).log_likelihood(PUBLISHED) + 1.0


@pytest.mark.parametrize("theta", THETAS, ids=["published", "other"])
def test_with_one_entry_per_dummy_the_last_link_model_is_rl(link_dir: Path, theta: np.ndarray) -> None:
    """RL's destination link: a trip may pass it and stops there; the core's Z(o, d) = M[o, d] is RL's z(o)."""
    data = load_rl_data(link_dir)
    mdp, paths = build_mdp(data, "last-link")
    assert _core_ll(mdp, paths, theta) == pytest.approx(DirectRL(data).log_likelihood(theta), rel=1e-10)


def test_missing_files_name_the_source(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing linkIncidence\.txt.*RecursiveLogit\.Classical\.V2"):
        load_rl_data(tmp_path)
