"""Baselines of Ziebart et al. (2008), Table 1: shortest paths and the action-based model.

* :class:`ShortestPathBaseline` - the route minimizing a fixed cost per transition
  (e.g. travel time: "Time-based").
* :class:`ActionBasedModel` - the locally normalized model
  ``P(a | s) ∝ exp(Q*(s, a))`` with ``Q*(s, a) = r(a) + V*(s')`` and ``V*`` the *hard*
  optimal value to the destination (Ramachandran & Amir 2007; Neu & Szepesvári
  2007: "Action"). It suffers label bias: paths compete only with siblings at each
  branching, not with paths that branched earlier.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.sparse import csgraph

from maxent_irl.exceptions import InvalidParameterError, NotFittedError
from maxent_irl.mdp import RouteMDP
from maxent_irl.objective import make_trip_set
from maxent_irl.soft_values import shortest_path as _shortest_path

__all__ = ["ActionBasedModel", "ShortestPathBaseline", "shortest_path"]

logger = logging.getLogger(__name__)


def shortest_path(mdp: RouteMDP, cost: np.ndarray, origin: int, destination: int) -> np.ndarray:
    """The cheapest path ``origin -> destination`` under nonnegative per-transition ``cost`` ``(T,)``."""
    o, d = (int(x) for x in mdp.check_states([origin, destination], "state"))
    if np.any(cost < 0):
        raise InvalidParameterError("shortest_path needs nonnegative costs")
    return _shortest_path(mdp, cost, o, d)


class ShortestPathBaseline:
    """Predicts the route of least fixed cost (``costs`` ``(T,)``, e.g. seconds of travel time).

    It has nothing to learn; :meth:`fit` only checks the paths against the MDP so
    every model in an evaluation is used the same way. It is no density model: it
    gives no path probabilities.
    """

    def __init__(self, costs: np.ndarray) -> None:
        self.costs = costs

    def fit(self, mdp: RouteMDP, paths: Sequence[Sequence[int] | np.ndarray]) -> ShortestPathBaseline:
        costs = np.asarray(self.costs, dtype=np.float64)
        if costs.shape != (mdp.n_transitions,) or not np.all(np.isfinite(costs)) or np.any(costs < 0):
            raise InvalidParameterError(f"costs must be {mdp.n_transitions} finite nonnegative numbers")
        make_trip_set(mdp, paths)
        self.mdp_ = mdp
        self.costs_ = costs
        return self

    def most_likely_path(self, origin: int, destination: int) -> np.ndarray:
        if not hasattr(self, "costs_"):
            raise NotFittedError("call fit first")
        return shortest_path(self.mdp_, self.costs_, origin, destination)


def _hard_values(mdp: RouteMDP, cost: np.ndarray, destination: int) -> tuple[np.ndarray, np.ndarray]:
    """Cost-to-go ``(n,)`` to ``destination`` and the features ``(n, k)`` summed along the optimal path."""
    rev = sp.csr_matrix((cost, (mdp.dst, mdp.src)), shape=(mdp.n_states, mdp.n_states))
    dist, pred = csgraph.dijkstra(rev, directed=True, indices=destination, return_predecessors=True)
    # pred[s] is the next state of s on its optimal path to d; sum features by pointer jumping
    n = mdp.n_states
    nxt = np.where(pred >= 0, pred, np.arange(n))
    step_feat = np.zeros((n, mdp.n_features))
    has = pred >= 0
    keys = mdp.src * n + mdp.dst
    order = np.argsort(keys)
    j = order[np.searchsorted(keys[order], np.flatnonzero(has) * n + pred[has])]
    step_feat[has] = mdp.features[j]
    # invariant: acc[s] sums the steps from s up to (excluding) ptr[s]; roots add nothing
    acc, ptr = step_feat, nxt
    while not np.array_equal(ptr[ptr], ptr):
        acc = acc + acc[ptr]
        ptr = ptr[ptr]
    return dist, acc


class ActionBasedModel:
    """The locally normalized action model ``P(a | s, d) ∝ exp(Q*(s, a) / alpha)``, fitted by maximum likelihood.

    ``Q*(s, a) = theta . f(a) + V*(s')``, ``V*`` the best (hard) reward-to-go to
    ``d``. The likelihood is not concave in ``theta`` (``V*`` is piecewise linear);
    L-BFGS-B runs on its exact gradient where it is differentiable.

    Parameters: ``alpha`` temperature (default 1), ``l2`` regularization on the
    per-trip average (default 0), ``theta0`` start (default: all ``-1``),
    ``max_iter`` (default 200).
    """

    def __init__(self, alpha: float = 1.0, l2: float = 0.0, theta0: np.ndarray | None = None,
                 max_iter: int = 200) -> None:
        self.alpha = alpha
        self.l2 = l2
        self.theta0 = theta0
        self.max_iter = max_iter

    def _local_policy(self, mdp: RouteMDP, theta: np.ndarray, destination: int):
        """``log P(a | s)`` per transition ``(T,)`` and ``dlogP/dtheta`` ``(T, k)`` toward ``destination``."""
        r = mdp.features @ theta
        if np.any(r >= 0):
            raise InvalidParameterError("the action-based model needs strictly negative rewards (positive costs)")
        dist, feat_to_go = _hard_values(mdp, -r, destination)
        q = r + np.where(np.isfinite(dist[mdp.dst]), -dist[mdp.dst], -np.inf)
        q = q / self.alpha
        dq = (mdp.features + feat_to_go[mdp.dst]) / self.alpha
        n = mdp.n_states
        qmax = np.full(n, -np.inf)
        np.maximum.at(qmax, mdp.src, q)
        safe = np.where(np.isfinite(qmax), qmax, 0.0)
        ex = np.where(np.isfinite(q), np.exp(q - safe[mdp.src]), 0.0)
        tot = np.bincount(mdp.src, ex, minlength=n)
        with np.errstate(divide="ignore"):
            logp = q - safe[mdp.src] - np.log(tot[mdp.src])
        p = np.exp(logp)
        mean_dq = np.zeros((n, mdp.n_features))
        np.add.at(mean_dq, mdp.src, p[:, None] * np.where(np.isfinite(q), 1.0, 0.0)[:, None] * np.nan_to_num(dq))
        return logp, np.nan_to_num(dq) - mean_dq[mdp.src]

    def _ll_grad(self, mdp: RouteMDP, trips, theta: np.ndarray) -> tuple[float, np.ndarray]:
        ll, g = 0.0, np.zeros(mdp.n_features)
        for d in np.unique(trips.destinations):
            logp, dlogp = self._local_policy(mdp, theta, int(d))
            for i in np.flatnonzero(trips.destinations == d):
                t = trips.path_transitions[i]
                ll += float(logp[t].sum())
                g += dlogp[t].sum(axis=0)
        return ll, g

    def fit(self, mdp: RouteMDP, paths: Sequence[Sequence[int] | np.ndarray]) -> ActionBasedModel:
        trips = make_trip_set(mdp, paths)
        k = mdp.n_features
        x0 = -np.ones(k) if self.theta0 is None else np.asarray(self.theta0, dtype=np.float64)
        scale = 1.0 / trips.n_trips

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            try:
                ll, g = self._ll_grad(mdp, trips, theta)
            except InvalidParameterError:
                return 1e12, -np.sign(mdp.features.mean(axis=0)) * -1e6
            if not np.isfinite(ll):
                return 1e12, np.zeros(k)
            return -ll * scale + 0.5 * self.l2 * theta @ theta, -g * scale + self.l2 * theta

        res = minimize(objective, x0, jac=True, method="L-BFGS-B", options={"maxiter": self.max_iter})
        self.theta_ = res.x
        self.mdp_ = mdp
        self.n_iter_ = int(res.nit)
        logger.info("action-based model: %d iterations (%s)", res.nit, res.message)
        return self

    def _check(self) -> RouteMDP:
        if not hasattr(self, "theta_"):
            raise NotFittedError("call fit first")
        return self.mdp_

    def path_log_prob(self, paths: Sequence[Sequence[int] | np.ndarray]) -> np.ndarray:
        """``(n,)`` log-probability of each path under the local policy toward its destination."""
        mdp = self._check()
        trips = make_trip_set(mdp, paths)
        out = np.empty(trips.n_trips)
        for d in np.unique(trips.destinations):
            logp, _ = self._local_policy(mdp, self.theta_, int(d))
            for i in np.flatnonzero(trips.destinations == d):
                out[i] = logp[trips.path_transitions[i]].sum()
        return out

    def log_likelihood(self, paths: Sequence[Sequence[int] | np.ndarray]) -> float:
        return float(self.path_log_prob(paths).sum())

    def most_likely_path(self, origin: int, destination: int) -> np.ndarray:
        """The path maximizing the product of local action probabilities ("Action")."""
        mdp = self._check()
        logp, _ = self._local_policy(mdp, self.theta_, int(destination))
        return shortest_path(mdp, np.where(np.isfinite(logp), -logp, np.inf).clip(0), origin, destination)

    def lowest_cost_path(self, origin: int, destination: int) -> np.ndarray:
        """The path of least cost ``-theta_ . f`` ("Action (costs)")."""
        mdp = self._check()
        return shortest_path(mdp, -(mdp.features @ self.theta_), origin, destination)
