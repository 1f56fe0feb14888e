"""RouteMDP validation: every bad input is a specific ValueError naming what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from maxent_irl import InvalidMDPError, InvalidPathError, RouteMDP


def test_valid_mdp_and_path_features(cyclic: RouteMDP) -> None:
    assert (cyclic.n_states, cyclic.n_transitions, cyclic.n_features) == (6, 10, 3)
    t = cyclic.transition_indices([0, 1, 3, 4])
    assert cyclic.src[t].tolist() == [0, 1, 3] and cyclic.dst[t].tolist() == [1, 3, 4]
    np.testing.assert_allclose(cyclic.path_features([0, 1, 3, 4]), cyclic.features[t].sum(axis=0))
    _, nxt = cyclic.successors(1)
    assert sorted(nxt.tolist()) == [2, 3]
    assert cyclic.transition_indices([4]).size == 0  # a one-state path uses no transition


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_states": 0}, "positive"),
        ({"src": np.array([0, 7])}, "outside"),
        ({"dst": np.array([0, -1])}, "outside"),
        ({"src": np.array([0.0, 1.0])}, "integer"),
        ({"dst": np.array([1])}, "same length"),
        ({"features": np.array([[1.0], [np.nan]])}, "NaN"),
        ({"features": np.array([[1.0], [np.inf]])}, "NaN or inf"),
        ({"features": np.ones((3, 1))}, "shape"),
        ({"feature_names": ["a", "b"]}, "names"),
        ({"src": np.array([0, 0]), "dst": np.array([1, 1])}, "more than once"),
        ({"features": np.zeros((2, 0))}, "at least one column"),
        ({"features": np.array([["a"], ["b"]])}, "numbers"),
    ],
)
def test_bad_mdp_arrays_are_rejected(kwargs: dict, match: str) -> None:
    args = {"n_states": 3, "src": np.array([0, 1]), "dst": np.array([1, 2]), "features": np.ones((2, 1))}
    args.update(kwargs)
    with pytest.raises(InvalidMDPError, match=match):
        RouteMDP(**args)


@pytest.mark.parametrize(
    ("path", "match"),
    [([], "empty"), ([0, 9], "unknown"), ([0, 5], "no transition from state 0 to state 5"), ([0, -1], "unknown"),
     ([0.5, 1], "integers")],
)
def test_bad_paths_are_rejected(cyclic: RouteMDP, path: list, match: str) -> None:
    with pytest.raises(InvalidPathError, match=match):
        cyclic.transition_indices(path)
    assert issubclass(InvalidPathError, ValueError)
