"""Splitting trips into training and held-out sets: one rule for every user (service, evaluation, baselines)."""

from __future__ import annotations

import numpy as np

from maxent_irl.base import RandomState, check_random_state
from maxent_irl.exceptions import InvalidParameterError

__all__ = ["train_test_split"]


def train_test_split(n: int, test_fraction: float, random_state: RandomState = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices ``(train, test)`` of ``n`` items: a seeded shuffle, the first ``round(test_fraction n)`` held out.

    With ``test_fraction > 0`` at least one item is held out and at least one kept for
    training (when ``n >= 2``); ``test_fraction = 0`` holds out nothing. The same
    ``random_state`` always gives the same split.
    """
    if not 0 <= test_fraction < 1:
        raise InvalidParameterError(f"test_fraction must be in [0, 1), got {test_fraction}")
    if n < 0:
        raise InvalidParameterError(f"n must be >= 0, got {n}")
    order = check_random_state(random_state).permutation(n)
    n_test = min(max(1, round(test_fraction * n)), n - 1) if test_fraction > 0 and n >= 2 else 0
    return np.sort(order[n_test:]), np.sort(order[:n_test])
