"""Synthetic road-like MDPs: the line graph of a Manhattan street grid.

Used by tests (small grids with cycles everywhere) and by the benchmarks (a
300k-state grid is the Pittsburgh scale of Ziebart et al.). States are directed
street segments, transitions are turns, as on a real road network.
"""

from __future__ import annotations

import numpy as np

from maxent_irl.mdp import RouteMDP

__all__ = ["GRID_FEATURES", "grid_route_mdp"]

#: Feature names of :func:`grid_route_mdp`, in column order.
GRID_FEATURES = ["km_minor", "km_major", "turn_left", "turn_right", "u_turn", "segment"]


def grid_route_mdp(rows: int, cols: int | None = None, *, block_km: float = 0.1, major_every: int = 5,
                   u_turns: bool = False, seed: int = 0) -> RouteMDP:
    """The turn MDP of a ``rows x cols`` grid of intersections.

    Every ``major_every``-th street is a major road. Segment lengths are jittered
    (+-30%) so that no two routes tie exactly. Features per transition, for the
    entered segment: km on minor / major streets, left / right / u-turn counts,
    and a constant 1 per segment (see :data:`GRID_FEATURES`).
    """
    cols = rows if cols is None else cols
    rng = np.random.default_rng(seed)
    idx = np.arange(rows * cols).reshape(rows, cols)
    u = np.concatenate([idx[:, :-1].ravel(), idx[:, 1:].ravel(), idx[:-1, :].ravel(), idx[1:, :].ravel()])
    v = np.concatenate([idx[:, 1:].ravel(), idx[:, :-1].ravel(), idx[1:, :].ravel(), idx[:-1, :].ravel()])
    n_edges = u.size
    # segment attributes, symmetric per undirected street
    r_u, c_u = np.divmod(u, cols)
    r_v, c_v = np.divmod(v, cols)
    horizontal = r_u == r_v
    major = np.where(horizontal, r_u % major_every == 0, c_u % major_every == 0)
    key = np.minimum(u, v) * rows * cols + np.maximum(u, v)
    _, undirected = np.unique(key, return_inverse=True)
    length = block_km * (0.7 + 0.6 * rng.random(undirected.max() + 1))[undirected]
    heading = np.arctan2(r_v - r_u, c_v - c_u)

    order = np.argsort(u, kind="stable")
    starts = np.searchsorted(u[order], np.arange(rows * cols))
    deg = np.bincount(u, minlength=rows * cols)
    src = np.repeat(np.arange(n_edges), deg[v])
    offs = np.arange(src.size) - np.repeat(np.cumsum(deg[v]) - deg[v], deg[v])
    dst = order[starts[v[src]] + offs]
    is_u = v[dst] == u[src]
    if not u_turns:
        src, dst, is_u = src[~is_u], dst[~is_u], is_u[~is_u]
    turn = np.angle(np.exp(1j * (heading[dst] - heading[src])))
    left = (~is_u) & (turn > np.pi / 4)
    right = (~is_u) & (turn < -np.pi / 4)
    features = np.column_stack([
        np.where(major[dst], 0.0, length[dst]),
        np.where(major[dst], length[dst], 0.0),
        left.astype(float),
        right.astype(float),
        is_u.astype(float),
        np.ones(src.size),
    ])
    return RouteMDP(n_edges, src, dst, features, GRID_FEATURES)
