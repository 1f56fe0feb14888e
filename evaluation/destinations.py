"""Fig. 5: how well the destination posterior names where a partly driven trip is going.

As the paper does, destinations are grouped into a few regions (k-means of where the
training trips end) with the training frequency of each destination as the prior, and
the posterior of a region sums MaxEnt's ``P(d | partial path)`` over its candidates.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.cluster.vq import kmeans2

from evaluation.config import TOP_K, EvalConfig, EvaluationError
from evaluation.metrics import FRACTIONS, destination_accuracy
from evaluation.progress import progress_bar
from maxent_irl import MaxEntIRL
from maxent_irl.roads import RoadNetwork

__all__ = ["accuracy_rises", "destination_prediction", "destination_regions", "nearest_region"]


def destination_regions(xy: np.ndarray, k: int, seed: int) -> np.ndarray:
    """``(k', 2)`` centres of ``k`` destination regions: k-means of destination positions (metres).

    The paper predicts among 5 destination regions; here they are where the training trips
    end (for clustered simulated demand, the hubs). Empty clusters are dropped.
    """
    k = min(k, len(np.unique(xy, axis=0)))
    if k < 2:
        raise EvaluationError("destination prediction needs at least 2 distinct training destinations")
    centres, labels = kmeans2(xy.astype(float), k, minit="++", seed=np.random.default_rng(seed))
    return centres[np.unique(labels)]


def nearest_region(xy: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``(n,)`` index of the centre nearest to each point of ``xy`` ``(n, 2)`` (metres)."""
    return np.argmin(((xy[:, None, :] - centres[None, :, :]) ** 2).sum(axis=-1), axis=1)


def destination_prediction(cfg: EvalConfig, net: RoadNetwork, maxent: MaxEntIRL, train: list[np.ndarray],
                            test: list[np.ndarray], seed: int) -> dict[str, Any]:
    """Fig. 5: regions from the training destinations, prior from their frequencies, accuracy on test trips."""
    L = net.segment_length_m
    mid = net.projection.forward(net.segment_midpoints)
    train_dest = np.array([p[-1] for p in train])
    centres = destination_regions(mid[train_dest], cfg.destinations, seed)
    candidates, counts = np.unique(train_dest, return_counts=True)
    cand_region = nearest_region(mid[candidates], centres)
    prior = counts / counts.sum()
    sample = list(test)
    if 0 < cfg.destination_trips < len(sample):
        keep = np.sort(np.random.default_rng(seed).choice(len(sample), cfg.destination_trips, replace=False))
        sample = [sample[i] for i in keep]
    true_region = nearest_region(mid[np.array([p[-1] for p in sample])], centres)
    with progress_bar(cfg.progress, total=len(sample), desc="destination prediction") as bar:
        acc = destination_accuracy(maxent.destination_posterior, sample, candidates, prior, L, FRACTIONS, TOP_K,
                                   candidate_region=cand_region, true_region=true_region, n_regions=len(centres),
                                   callback=lambda _: bar.update(1))
    region_prior = np.bincount(cand_region, prior, minlength=len(centres))
    order = np.argsort(-region_prior, kind="stable")
    prior_acc = {k: float(np.isin(true_region, order[:k]).mean()) for k in TOP_K}
    return {
        "n_regions": len(centres), "n_trips": len(sample), "n_candidates": int(candidates.size),
        "fractions": list(FRACTIONS), "accuracy": {k: v.tolist() for k, v in acc.items()},
        "prior_accuracy": prior_acc, "region_prior": region_prior.tolist(),
        "region_centres_lonlat": net.projection.inverse(centres).tolist(),
        "rises": accuracy_rises(acc),
    }


def accuracy_rises(acc: dict[int, np.ndarray]) -> bool:
    """Fig. 5's claim: top-1 accuracy at the last fraction observed beats the first, and top-3 does not fall."""
    return bool(acc[1][-1] > acc[1][0] and acc[3][-1] >= acc[3][0])
