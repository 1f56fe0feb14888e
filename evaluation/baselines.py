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
import time
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.sparse import csgraph

from maxent_irl.base import BaseEstimator, FitCallback, FitProgress, check_is_fitted
from maxent_irl.exceptions import InvalidParameterError
from maxent_irl.mdp import RouteMDP
from maxent_irl.objective import feature_rms, make_trip_set
from maxent_irl.parallel import single_threaded_blas
from maxent_irl.soft_values import shortest_path as _shortest_path

__all__ = ["ActionBasedModel", "ShortestPathBaseline", "positive_cost_rows", "shortest_path"]

_MAX_CUTS = 5  # rounds of cutting planes in ActionBasedModel.fit

logger = logging.getLogger(__name__)


def shortest_path(mdp: RouteMDP, cost: np.ndarray, origin: int, destination: int) -> np.ndarray:
    """The cheapest path ``origin -> destination`` under nonnegative per-transition ``cost`` ``(T,)``."""
    o, d = (int(x) for x in mdp.check_states([origin, destination], "state"))
    if np.any(cost < 0):
        raise InvalidParameterError("shortest_path needs nonnegative costs")
    return _shortest_path(mdp, cost, o, d)


class ShortestPathBaseline(BaseEstimator):
    """Predicts the route of least fixed cost (``costs`` ``(T,)``, e.g. seconds of travel time).

    It has nothing to learn; :meth:`fit` only checks the paths against the MDP so
    every model in an evaluation is used the same way (``callback`` is called once, after
    that check). It is no density model: it gives no path probabilities.
    """

    def __init__(self, costs: np.ndarray, callback: FitCallback | None = None) -> None:
        self.costs = costs
        self.callback = callback

    def fit(self, mdp: RouteMDP, paths: Sequence[Sequence[int] | np.ndarray]) -> ShortestPathBaseline:
        start = time.perf_counter()
        costs = np.asarray(self.costs, dtype=np.float64)
        if costs.shape != (mdp.n_transitions,) or not np.all(np.isfinite(costs)) or np.any(costs < 0):
            raise InvalidParameterError(f"costs must be {mdp.n_transitions} finite nonnegative numbers")
        make_trip_set(mdp, paths)
        self.mdp_ = mdp
        self.costs_ = costs
        if self.callback is not None:
            self.callback(FitProgress(0, None, None, costs, time.perf_counter() - start, total=0))
        return self

    def most_likely_path(self, origin: int, destination: int) -> np.ndarray:
        check_is_fitted(self, "costs_")
        return shortest_path(self.mdp_, self.costs_, origin, destination)


#: Most destinations per batched Dijkstra call: one C call instead of one per destination.
_DEST_BLOCK = 64
#: Budget for the ~12 ``(block, n_transitions)`` float work arrays of one block.
_BLOCK_BYTES = 64 << 20


def positive_cost_rows(features: np.ndarray) -> np.ndarray:
    """Feature rows ``(m, k)`` whose costs bound every transition's: per nonzero pattern, the shortest and longest.

    On road networks a transition's features are ``km * a + b`` for its pattern (class,
    speed, lanes, turn), so its cost is linear in ``km`` and positive for all of them iff it
    is at both ends: ~150 constraints instead of thousands. Where that structure does not
    hold, callers check every transition and add the violated rows.
    """
    pattern = np.packbits(features != 0, axis=1)
    _, group = np.unique(pattern, axis=0, return_inverse=True)
    group = group.ravel()
    length = np.abs(features).sum(axis=1)
    rows: set[int] = set()
    for g in range(int(group.max()) + 1 if group.size else 0):
        idx = np.flatnonzero(group == g)
        rows.update((int(idx[np.argmin(length[idx])]), int(idx[np.argmax(length[idx])])))
    return features[sorted(rows)]


class _Stop(Exception):  # noqa: N818 - control flow, not an error: the callback asked to stop
    """Raised through SLSQP to stop at the callback's request, carrying the point reached."""

    def __init__(self, u: np.ndarray) -> None:
        super().__init__("stopped by callback")
        self.u = u


def _block_size(n_transitions: int) -> int:
    """Destinations per block: up to :data:`_DEST_BLOCK`, fewer on big networks to stay in budget."""
    return int(max(1, min(_DEST_BLOCK, _BLOCK_BYTES // (12 * 8 * max(n_transitions, 1)))))


def _hard_values(mdp: RouteMDP, cost: np.ndarray, destinations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cost-to-go ``(D, n)`` to each destination and the optimal next state ``(D, n)`` (-1 at roots / unreachable)."""
    rev = sp.csr_matrix((cost, (mdp.dst, mdp.src)), shape=(mdp.n_states, mdp.n_states))
    dist, pred = csgraph.dijkstra(rev, directed=True, indices=destinations, return_predecessors=True)
    return np.atleast_2d(dist), np.atleast_2d(pred).astype(np.int64)


def _local_log_policy(mdp: RouteMDP, reward: np.ndarray, dist: np.ndarray, alpha: float) -> np.ndarray:
    """``log P(a | s, d)`` ``(D, T)`` of the local policy ``∝ exp(Q*(s, a) / alpha)`` (-inf: cannot reach ``d``)."""
    n = mdp.n_states
    D = dist.shape[0]
    with np.errstate(invalid="ignore"):
        q = (reward[None, :] - dist[:, mdp.dst]) / alpha  # -inf where the next state cannot reach d
    flat = (np.arange(D)[:, None] * n + mdp.src[None, :]).ravel()
    qmax = np.full(D * n, -np.inf)
    np.maximum.at(qmax, flat, q.ravel())
    shift = np.where(np.isfinite(qmax), qmax, 0.0)[flat].reshape(D, -1)
    ex = np.exp(q - shift)  # 0 where q = -inf
    tot = np.bincount(flat, ex.ravel(), minlength=D * n)[flat].reshape(D, -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        # tot = 0: every action leads where d cannot be reached; -inf, not -inf + inf = NaN
        return np.where(tot > 0, q - shift - np.log(tot), -np.inf)


def _subtree_sums(values: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """For a forest given by ``parent`` ``(m,)`` (-1 at roots): each node's sum of ``values`` over its subtree.

    Doubling: ``S_{i+1}(s) = S_i(s) + sum of S_i(t)`` over the ``t`` exactly ``2^i`` levels
    below ``s``, so depth ``h`` needs ``log2 h`` scalar bincounts instead of a walk per node.
    """
    m = parent.size
    jump = np.where(parent >= 0, parent, m)  # m: above the root
    total = values.astype(np.float64, copy=True)
    while True:
        live = jump < m
        if not live.any():
            return total
        total = total + np.bincount(jump[live], total[live], minlength=m)
        jump = np.where(live, np.append(jump, m)[jump], m)


class ActionBasedModel(BaseEstimator):
    """The locally normalized action model ``P(a | s, d) ∝ exp(Q*(s, a) / alpha)``, fitted by maximum likelihood.

    ``Q*(s, a) = theta . f(a) + V*(s')``, ``V*`` the best (hard) reward-to-go to
    ``d``. The likelihood is not concave in ``theta`` (``V*`` is piecewise linear);
    SLSQP runs on its exact gradient where it is differentiable, keeping every
    transition's cost at least ``min_cost``.

    Parameters: ``alpha`` temperature (default 1), ``l2`` regularization on the
    per-trip average (default 0), ``theta0`` start (default: all ``-1``),
    ``max_iter`` SLSQP iterations per round (default 200), ``min_cost`` the least cost a
    transition may have (default 1e-3, as in max margin planning), ``callback`` a
    :class:`~maxent_irl.base.FitProgress` after every likelihood evaluation (``iteration``
    counts them; SLSQP has no per-iteration hook); returning ``False`` stops the fit.

    Learned attributes: ``theta_``, ``n_iter_``, ``n_evaluations_``, ``message_``, ``converged_``,
    ``n_at_min_cost_`` (transitions where the cost bound binds).
    """

    def __init__(self, alpha: float = 1.0, l2: float = 0.0, theta0: np.ndarray | None = None,
                 max_iter: int = 200, min_cost: float = 1e-3, callback: FitCallback | None = None) -> None:
        self.alpha = alpha
        self.l2 = l2
        self.theta0 = theta0
        self.max_iter = max_iter
        self.min_cost = min_cost
        self.callback = callback

    def _reward(self, mdp: RouteMDP, theta: np.ndarray) -> np.ndarray:
        r = mdp.features @ theta
        if np.any(r >= 0):
            raise InvalidParameterError("the action-based model needs strictly negative rewards (positive costs)")
        return r

    def _log_policy(self, mdp: RouteMDP, theta: np.ndarray, destinations: np.ndarray) -> np.ndarray:
        """``log P(a | s, d)`` ``(len(destinations), T)``."""
        r = self._reward(mdp, theta)
        dist, _ = _hard_values(mdp, -r, destinations)
        return _local_log_policy(mdp, r, dist, self.alpha)

    def _ll_grad(self, mdp: RouteMDP, trips, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Log-likelihood of the trips and its gradient, batched over destinations.

        With ``c_d(t)`` the trips' uses of transition ``t`` toward ``d`` and ``N_d(s)`` their
        departures from ``s``, the gradient is ``F^T sum_d (w_d + z_d) / alpha`` where
        ``w_d(t) = c_d(t) - N_d(src t) P(t | src t, d)`` weighs each transition's own features
        and ``z_d`` carries ``sum_t w_d(t) dV*(dst t)/dtheta`` down the optimal-path tree: the
        features to go of ``s'`` are those of its tree path, so each tree transition gets
        the sum of ``w`` over its subtree. No ``(T, k)`` array per destination.
        """
        r = self._reward(mdp, theta)
        n, T = mdp.n_states, mdp.n_transitions
        dests, dest_row = np.unique(trips.destinations, return_inverse=True)
        lens = np.array([t.size for t in trips.path_transitions])
        used = np.concatenate(trips.path_transitions) if lens.sum() else np.zeros(0, dtype=np.int64)
        counts = sp.csr_matrix((np.ones(used.size), (np.repeat(dest_row, lens), used)), shape=(dests.size, T))
        ll, weight = 0.0, np.zeros(T)
        step = _block_size(T)
        for b in range(0, dests.size, step):
            block = dests[b: b + step]
            D = block.size
            dist, pred = _hard_values(mdp, -r, block)
            logp = _local_log_policy(mdp, r, dist, self.alpha)
            c = counts[b: b + D].toarray()
            hit = c > 0
            if np.any(np.isneginf(logp[hit])):
                return -np.inf, np.zeros(mdp.n_features)
            ll += float(np.sum(c[hit] * logp[hit]))
            rows = np.arange(D)[:, None]
            departures = np.bincount((rows * n + mdp.src).ravel(), c.ravel(), minlength=D * n).reshape(D, n)
            w = c - departures[:, mdp.src] * np.exp(logp)
            weight += w.sum(axis=0)
            # dV*(s')/dtheta = features along the tree path from s' to d: push w up the tree
            u = np.bincount((rows * n + mdp.dst).ravel(), w.ravel(), minlength=D * n)
            has = pred >= 0
            parent = np.where(has, rows * n + pred, -1).ravel()
            sub = _subtree_sums(u, parent).reshape(D, n)
            s_idx = np.broadcast_to(np.arange(n), (D, n))[has]
            tree_t = mdp._key_order[np.searchsorted(mdp._sorted_keys, s_idx * n + pred[has])]
            weight += np.bincount(tree_t, sub[has], minlength=T)
        return ll, mdp.features.T @ weight / self.alpha

    def fit(self, mdp: RouteMDP, paths: Sequence[Sequence[int] | np.ndarray]) -> ActionBasedModel:
        """Maximum likelihood subject to every transition costing at least ``min_cost``.

        ``V*`` is a shortest-path value, so costs must stay positive. Under label bias the
        unconstrained optimum can want a per-segment *bonus* (a locally normalized model
        gives routes through many branchings less probability than the data do), so the
        constraint may bind: the fit is a constrained one (SLSQP on linear constraints).
        The constraints are :func:`positive_cost_rows`; transitions that still violate them
        are added and the fit resumed (cutting planes, up to ``_MAX_CUTS`` rounds of up to
        ``max_iter`` iterations each). An infeasible ``theta0`` is projected by the first step.

        Raises ``InvalidParameterError`` if ``min_cost`` is not positive or a transition has
        no features (its cost would be 0 whatever ``theta``).
        """
        with single_threaded_blas():  # small dense products per evaluation: BLAS threads would only spin
            return self._fit(mdp, paths)

    def _fit(self, mdp: RouteMDP, paths: Sequence[Sequence[int] | np.ndarray]) -> ActionBasedModel:
        if not (np.isfinite(self.min_cost) and self.min_cost > 0):
            raise InvalidParameterError(f"min_cost must be positive, got {self.min_cost}")
        featureless = np.flatnonzero(~np.any(mdp.features != 0, axis=1))
        if featureless.size:
            raise InvalidParameterError(f"transitions {featureless[:5].tolist()} have no features: their cost is 0 "
                                        "for every theta, and the action model needs positive costs")
        trips = make_trip_set(mdp, paths)
        k = mdp.n_features
        x0 = -np.ones(k) if self.theta0 is None else np.asarray(self.theta0, dtype=np.float64)
        scale = 1.0 / trips.n_trips
        feature_scale = feature_rms(mdp, trips)  # the solver works on u = theta * feature_scale, as MaxEntIRL
        out_of_bounds = 1e12  # objective where V* is undefined (a cost <= 0, off the constraint rows)
        start, evaluations = time.perf_counter(), [0]

        def objective(u: np.ndarray) -> tuple[float, np.ndarray]:
            theta = u / feature_scale
            try:
                ll, g = self._ll_grad(mdp, trips, theta)
            except InvalidParameterError:  # some cost <= 0: a transition the constraint rows do not cover yet
                return out_of_bounds, np.zeros(k)
            if not np.isfinite(ll):
                return out_of_bounds, np.zeros(k)
            f = -ll * scale + 0.5 * self.l2 * theta @ theta
            grad = -g * scale + self.l2 * theta
            evaluations[0] += 1
            if self.callback is not None:
                progress = FitProgress(evaluations[0], float(ll), float(np.linalg.norm(grad)), theta.copy(),
                                       time.perf_counter() - start, objective=float(f))
                if self.callback(progress) is False:
                    raise _Stop(u)
            return f, grad / feature_scale

        rows = positive_cost_rows(mdp.features)
        tol = self.min_cost * (1 - 1e-6)  # the solver meets the bound to rounding
        u = x0 * feature_scale
        n_iter, message, success, fun = 0, "", False, out_of_bounds
        for _ in range(_MAX_CUTS):
            A = rows / feature_scale  # the cost of row i at u is -(A @ u)[i]
            try:
                res = minimize(objective, u, jac=True, method="SLSQP",
                               constraints=[{"type": "ineq", "fun": lambda v, A=A: -(A @ v) - self.min_cost,
                                             "jac": lambda v, A=A: -A}],
                               options={"maxiter": self.max_iter, "ftol": 1e-10})
            except _Stop as stop:
                u, message, success = stop.u, "stopped by callback", False
                break
            u, n_iter = res.x, n_iter + int(res.nit)
            message, success, fun = str(res.message), bool(res.success), float(res.fun)
            bad = np.flatnonzero(-(mdp.features @ (u / feature_scale)) < tol)
            new = np.unique(mdp.features[bad], axis=0)
            new = new[~(new[:, None, :] == rows[None, :, :]).all(axis=2).any(axis=1)]
            if new.size == 0:  # feasible, or the violated rows are constraints already: cutting cannot help
                break
            rows = np.vstack([rows, new])
        self.theta_ = u / feature_scale
        cost = -(mdp.features @ self.theta_)
        self.mdp_ = mdp
        self.n_iter_ = n_iter
        self.n_evaluations_ = evaluations[0]
        self.message_ = message
        self.converged_ = success and bool(np.all(cost >= tol)) and fun < out_of_bounds
        self.n_at_min_cost_ = int(np.sum((cost >= tol) & (cost < 1.01 * self.min_cost)))
        if self.converged_:
            logger.info("action-based model: %d iterations (%s); %d transitions at the least cost", n_iter,
                        self.message_, self.n_at_min_cost_)
        else:
            logger.warning("action-based model did not converge: %s; %d iterations, least transition cost %.3g "
                           "(bound %.3g)", self.message_, n_iter, float(cost.min()), self.min_cost)
        return self

    def _check(self) -> RouteMDP:
        check_is_fitted(self)
        return self.mdp_

    def path_log_prob(self, paths: Sequence[Sequence[int] | np.ndarray]) -> np.ndarray:
        """``(n,)`` log-probability of each path under the local policy toward its destination."""
        mdp = self._check()
        trips = make_trip_set(mdp, paths)
        out = np.empty(trips.n_trips)
        dests = np.unique(trips.destinations)
        step = _block_size(mdp.n_transitions)
        for b in range(0, dests.size, step):
            block = dests[b: b + step]
            logp = self._log_policy(mdp, self.theta_, block)
            for row, d in enumerate(block.tolist()):
                for i in np.flatnonzero(trips.destinations == d):
                    out[i] = logp[row, trips.path_transitions[i]].sum()
        return out

    def log_likelihood(self, paths: Sequence[Sequence[int] | np.ndarray]) -> float:
        return float(self.path_log_prob(paths).sum())

    def most_likely_path(self, origin: int, destination: int) -> np.ndarray:
        """The path maximizing the product of local action probabilities ("Action")."""
        mdp = self._check()
        logp = self._log_policy(mdp, self.theta_, np.array([int(destination)]))[0]
        return shortest_path(mdp, np.where(np.isfinite(logp), -logp, np.inf).clip(0), origin, destination)

    def lowest_cost_path(self, origin: int, destination: int) -> np.ndarray:
        """The path of least cost ``-theta_ . f`` ("Action (costs)")."""
        mdp = self._check()
        return shortest_path(mdp, -(mdp.features @ self.theta_), origin, destination)
