"""Small MDPs with cycles and the brute-force reference the passes are checked against."""

from __future__ import annotations

import numpy as np

from maxent_irl import RouteMDP
from maxent_irl.reference import enumerate_paths


def cyclic_mdp(seed: int = 0, k: int = 3) -> RouteMDP:
    """Six states, ten transitions, several cycles (0-1-2, 1-3-4, 2-5), a sink-free graph."""
    rng = np.random.default_rng(seed)
    edges = [(0, 1), (1, 2), (2, 0), (1, 3), (3, 4), (4, 1), (2, 5), (4, 5), (5, 2), (3, 0)]
    src = np.array([e[0] for e in edges])
    dst = np.array([e[1] for e in edges])
    return RouteMDP(6, src, dst, rng.random((len(edges), k)), [f"f{i}" for i in range(k)])


def sink_mdp() -> RouteMDP:
    """A graph whose destination 4 is a sink (no outgoing transitions), with a cycle 0-1-2-0."""
    edges = [(0, 1), (1, 2), (2, 0), (1, 3), (2, 3), (3, 4), (0, 4), (3, 1)]
    src = np.array([e[0] for e in edges])
    dst = np.array([e[1] for e in edges])
    feats = np.column_stack([np.linspace(0.5, 1.5, len(edges)), np.ones(len(edges))])
    return RouteMDP(5, src, dst, feats, ["km", "segment"])


def brute_force(mdp: RouteMDP, logw: np.ndarray, origin: int, destination: int, max_len: int = 24):
    """Every path o -> d up to ``max_len`` transitions: (paths, their weights, Z, expected transition counts)."""
    paths, weights, counts = [], [], []
    for states, trans in enumerate_paths(mdp, origin, destination, max_len):
        paths.append(np.array(states))
        weights.append(np.exp(logw[trans].sum()))
        counts.append(np.bincount(trans, minlength=mdp.n_transitions))
    weights = np.array(weights)
    Z = weights.sum()
    E = (weights[:, None] * np.array(counts)).sum(axis=0) / Z
    return paths, weights, Z, E
