"""Synthetic road networks: a city-sized grid for benchmarks and tests, with no OSM file to download."""

from __future__ import annotations

import networkx as nx
import numpy as np

from maxent_irl.roads.network import RoadNetwork

__all__ = ["grid_network"]


def grid_network(side: int, jitter: float = 0.0, seed: int = 0) -> RoadNetwork:
    """Two-way 100 m streets on a ``side`` x ``side`` grid of junctions: ``4 side (side - 1)`` segments.

    Every 10th street is ``primary``, the others ``residential``; junctions sit near
    (45 N, 5 E), moved by ``jitter`` x 100 m (Gaussian) so that turns are not all
    exactly square.
    """
    if side < 2:
        raise ValueError(f"side must be >= 2, got {side}")
    dlat = 100 / 111_195
    dlon = dlat / np.cos(np.radians(45.0))
    rng = np.random.default_rng(seed)
    G = nx.MultiDiGraph(crs="epsg:4326")
    for i in range(side):
        for j in range(side):
            di, dj = rng.normal(0, jitter, 2) if jitter else (0.0, 0.0)
            G.add_node(i * side + j + 1, x=5.0 + (j + dj) * dlon, y=45.0 + (i + di) * dlat)
    for i in range(side):
        for j in range(side):
            for ii, jj in ((i + 1, j), (i, j + 1)):
                if ii < side and jj < side:
                    a, b = i * side + j + 1, ii * side + jj + 1
                    hw = "primary" if i % 10 == 0 or j % 10 == 0 else "residential"
                    G.add_edge(a, b, 0, length=100.0, highway=hw, oneway=False, reversed=False)
                    G.add_edge(b, a, 0, length=100.0, highway=hw, oneway=False, reversed=True)
    return RoadNetwork.from_graph(G, name=f"grid{side}")
