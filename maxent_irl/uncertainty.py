"""Standard errors of the maximum-likelihood ``theta``: how firmly the trips pin each weight down.

The observed Fisher information (minus the Hessian of the log-likelihood) is taken by
central differences of the exact gradient, which costs ``2 k`` gradient evaluations and
no new derivation. For MaxEnt it equals the summed covariance of path features given
each trip's origin and destination, which the tests check by sampling. Its inverse is the
asymptotic covariance of ``theta``; a recovery claim such as "within 5 %" is only
testable on weights whose relative standard error is well below that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from maxent_irl.mdp import RouteMDP
from maxent_irl.objective import log_likelihood_and_gradient, make_trip_set

__all__ = ["covariance", "information_matrix"]


def information_matrix(
    mdp: RouteMDP, paths: Sequence[Sequence[int] | np.ndarray], theta: np.ndarray, alpha: float = 1.0,
    ordering: np.ndarray | None = None, step: float = 1e-4, callback: Callable[[int], None] | None = None,
    gradient: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Observed information ``-d²loglik/dθ²`` ``(k, k)``, symmetrized; zero rows for features on no transition.

    ``ordering`` is the MDP's fill-reducing order (``RouteModel.ordering``), reused by
    every gradient. ``callback(j)`` runs after the column of feature ``j``. ``gradient``
    ``theta -> (k,)`` replaces the in-process gradient of ``paths`` (e.g. one evaluated on a
    Dask cluster, :class:`maxent_irl.distributed.DaskObjective`).
    """
    trips = make_trip_set(mdp, list(paths))
    theta = np.asarray(theta, dtype=float)
    k = mdp.n_features
    H = np.zeros((k, k))

    def local_grad(th: np.ndarray) -> np.ndarray:
        return log_likelihood_and_gradient(mdp, trips, mdp.features @ th / alpha, alpha, ordering)[1]

    grad = local_grad if gradient is None else gradient

    for j in np.flatnonzero(np.any(mdp.features != 0, axis=0)):
        h = step * max(1.0, abs(float(theta[j])))
        e = np.zeros(k)
        e[j] = h
        H[:, j] = (grad(theta + e) - grad(theta - e)) / (2 * h)
        if callback is not None:
            callback(int(j))
    return -(H + H.T) / 2


def covariance(info: np.ndarray) -> np.ndarray:
    """Inverse ``(k, k)`` of the information on the identifiable features; ``inf`` variance elsewhere.

    A feature is dropped when its information is ~0 (absent from the network, or never
    preferred: its weight runs off to -inf); its covariances with the others are NaN.
    The rest is pseudo-inverted, so an exactly collinear pair gets finite, shared variance.
    """
    d = np.diag(info)
    ok = d > 1e-9 * max(float(d.max()), 1e-300)
    cov = np.full(info.shape, np.nan)
    cov[np.diag_indices_from(cov)] = np.inf
    if ok.any():
        cov[np.ix_(ok, ok)] = np.linalg.pinv(info[np.ix_(ok, ok)], hermitian=True)
    return cov
