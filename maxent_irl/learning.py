"""Maximum-likelihood fitting of the MaxEnt route model with L-BFGS-B (a thin learner class)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult, minimize

from maxent_irl.base import BaseEstimator, FitCallback, FitProgress, RandomState, check_is_fitted
from maxent_irl.exceptions import (
    InvalidParameterError,
    InvalidPathError,
    PartitionFunctionDivergedError,
)
from maxent_irl.inference import RouteModel, Visits, validate_reference_policy
from maxent_irl.linsolve import fill_reducing_ordering
from maxent_irl.mdp import RouteMDP
from maxent_irl.objective import TripSet, feature_rms, log_likelihood_and_gradient, make_trip_set, relevant_states
from maxent_irl.parallel import solver_threads_limit
from maxent_irl.soft_values import global_system, transition_log_weights

__all__ = ["FitProgress", "MaxEntIRL"]

logger = logging.getLogger(__name__)


class MaxEntIRL(BaseEstimator):
    """Maximum-Entropy IRL (Ziebart et al. 2008) for deterministic route MDPs.

    Maximizes ``sum log P(path | o, d; theta) - l1 |theta|_1 - l2/2 |theta|^2``, a
    concave objective, so every start reaches the same optimum. Where the partition
    function diverges the objective is ``-inf``; the optimizer is made to back off
    from there, and the start is moved into the convergent region if needed.

    Parameters
    ----------
    alpha: temperature of the soft Bellman backup (default 1).
    reference_policy: optional ``(T,)`` transition prior ``pi0`` (default none).
    l1, l2: regularization strengths on the *per-trip average* log-likelihood (default 0).
    bounds: optional sequence of ``(low, high)`` per feature (``None`` for unbounded).
    nonpositive_rewards: keep every transition's reward ``theta · f`` of the MDP at most 0 (default
        False): every segment and turn is a cost, as in Ziebart et al., whose exponentiated gradient
        kept costs positive. A feature seen on a few kilometres can otherwise learn a gain
        (driving on it pays), which no driver means and which makes queries take the slow exact
        path for positive rewards. When the unconstrained optimum breaks it, the fit is refined
        by SLSQP under the linear constraints of the violated transitions, added until none is.
    theta0: initial weights (default zeros, moved to convergence if they diverge).
    tol: gradient tolerance on the per-trip average gradient (default 1e-7).
    max_iter: maximum L-BFGS iterations (default 500).
    callback: called with a :class:`~maxent_irl.base.FitProgress` after every iteration; return ``False`` to stop.
    n_jobs: solver threads during ``fit`` (default None: the process's policy, :mod:`maxent_irl.parallel`).
    client: a Dask cluster for the likelihood's solves: a ``distributed.Client`` or a scheduler address
        such as ``"tcp://host:8786"`` (default None: everything runs in this process and Dask is not
        imported). Each worker factorizes ``I - W`` per ``theta`` and solves its share of the destinations
        (:mod:`maxent_irl.distributed`); the results equal the one-process ones. A cluster that cannot be
        reached or is lost raises :class:`~maxent_irl.exceptions.DistributedError`.

    Learned attributes: ``theta_`` ``(k,)``, ``model_`` (a :class:`RouteModel` for ``theta_``), ``n_iter_``,
    ``converged_``, ``message_``, ``log_likelihood_`` (total, training trips), ``n_trips_``,
    ``feature_scale_``, ``absent_features_`` (names of the features no training path's transition has:
    there are no data behind them, so their weights are fixed at 0 rather than "learned").
    """

    def __init__(
        self,
        alpha: float = 1.0,
        reference_policy: np.ndarray | None = None,
        l1: float = 0.0,
        l2: float = 0.0,
        bounds: Sequence[tuple[float | None, float | None]] | None = None,
        nonpositive_rewards: bool = False,
        theta0: np.ndarray | None = None,
        tol: float = 1e-7,
        max_iter: int = 500,
        callback: FitCallback | None = None,
        n_jobs: int | None = None,
        client: Any = None,
    ) -> None:
        self.alpha = alpha
        self.reference_policy = reference_policy
        self.l1 = l1
        self.l2 = l2
        self.bounds = bounds
        self.nonpositive_rewards = nonpositive_rewards
        self.theta0 = theta0
        self.tol = tol
        self.max_iter = max_iter
        self.callback = callback
        self.n_jobs = n_jobs
        self.client = client

    # -- fitting -----------------------------------------------------------------------
    def fit(self, mdp: RouteMDP, paths: Sequence[Sequence[int] | np.ndarray]) -> MaxEntIRL:
        """Learn ``theta_`` from observed ``paths`` (origin first, destination last)."""
        with solver_threads_limit(self.n_jobs):
            return self._fit(mdp, paths)

    def _fit(self, mdp: RouteMDP, paths: Sequence[Sequence[int] | np.ndarray]) -> MaxEntIRL:
        self._validate_params()
        k = mdp.n_features
        log_pi0 = validate_reference_policy(mdp, self.reference_policy)
        trips = make_trip_set(mdp, paths)
        if log_pi0 is not None and np.any(np.isinf(log_pi0[trips.transition_counts > 0])):
            raise InvalidPathError("a path uses a transition whose reference probability pi0 is 0")
        if not np.any(trips.transition_counts > 0):
            raise InvalidPathError("no path uses a transition (each starts at its destination): nothing to learn from")
        ordering = fill_reducing_ordering(mdp.adjacency())
        lo, hi = self._feature_bounds(k)
        # a feature no path's transition has carries no data: its weight is fixed at 0, reported as absent
        used = np.any(mdp.features[trips.transition_counts > 0] != 0, axis=0)
        lo, hi = np.where(used, lo, 0.0), np.where(used, hi, 0.0)
        theta0 = np.zeros(k) if self.theta0 is None else np.asarray(self.theta0, dtype=np.float64)
        if theta0.shape != (k,) or not np.all(np.isfinite(theta0)):
            raise InvalidParameterError(f"theta0 must be {k} finite numbers")
        theta0 = np.clip(theta0, lo, hi)
        theta0 = self._convergent_start(mdp, theta0, lo, hi, log_pi0, ordering, relevant_states(mdp, trips))

        evaluate = self._evaluator(mdp, trips, log_pi0, ordering)
        try:
            return self._minimize(mdp, trips, theta0, lo, hi, used, ordering, evaluate)
        finally:
            close = getattr(evaluate, "close", None)
            if close is not None:
                close()

    def _evaluator(
        self, mdp: RouteMDP, trips: TripSet, log_pi0: np.ndarray | None, ordering: np.ndarray
    ) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
        """``theta -> (log-likelihood, gradient)``: in this process, or on the Dask cluster ``client``."""
        if self.client is None:
            def local(theta: np.ndarray) -> tuple[float, np.ndarray]:
                logw = transition_log_weights(mdp.features, theta, self.alpha, log_pi0)
                return log_likelihood_and_gradient(mdp, trips, logw, self.alpha, ordering)

            return local
        from maxent_irl.distributed import DaskObjective  # Dask only when a cluster is configured

        return DaskObjective(self.client, mdp, trips, self.alpha, log_pi0, ordering)

    def _minimize(
        self, mdp: RouteMDP, trips: TripSet, theta0: np.ndarray, lo: np.ndarray, hi: np.ndarray, used: np.ndarray,
        ordering: np.ndarray, evaluate: Callable[[np.ndarray], tuple[float, np.ndarray]],
    ) -> MaxEntIRL:
        k = mdp.n_features
        scale = 1.0 / trips.n_trips
        # L-BFGS works on u = theta * s (see feature_rms)
        self.feature_scale_ = feature_rms(mdp, trips)
        best: dict[str, Any] = {"f": np.inf}
        last_eval: list[Any] = []  # (x, log-likelihood, |grad|) of the latest evaluation, for the progress callback
        start = time.perf_counter()

        def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
            theta = self._theta_from_x(x, k)
            try:
                ll, g = evaluate(theta)
            except PartitionFunctionDivergedError:
                # Z is infinite here: report a value worse than any seen, with a gradient
                # pointing back along the step, so the line search shrinks the step.
                last = best.get("x")
                direction = x - last if last is not None else np.ones_like(x)
                f_bad = abs(best["f"]) * 10 + 1e6 if np.isfinite(best["f"]) else 1e12
                return f_bad, direction / max(float(np.linalg.norm(direction)), 1e-12) * 1e6
            f = -ll * scale + 0.5 * self.l2 * float(theta @ theta)
            g_theta = -g * scale + self.l2 * theta
            g_u = g_theta / self.feature_scale_
            if self.l1 > 0:
                f += self.l1 * float(np.abs(theta).sum())
                g_x = np.concatenate([g_u + self.l1 / self.feature_scale_, -g_u + self.l1 / self.feature_scale_])
            else:
                g_x = g_u
            if f < best["f"]:
                best.update(f=f, x=x.copy(), ll=ll, gnorm=float(np.linalg.norm(g_theta)))
            last_eval[:] = [x.copy(), ll, float(np.linalg.norm(g_theta))]
            return f, g_x

        iteration = {"n": 0}
        stop = {"flag": False}

        def on_iteration(intermediate_result: OptimizeResult) -> None:
            iteration["n"] += 1
            x = intermediate_result.x
            ll, gnorm = best.get("ll", np.nan), best.get("gnorm", np.nan)
            if last_eval and np.array_equal(last_eval[0], x):
                ll, gnorm = last_eval[1], last_eval[2]
            progress = FitProgress(iteration["n"], ll, gnorm, self._theta_from_x(x, k), time.perf_counter() - start,
                                   objective=float(best["f"]))
            logger.debug("iteration %d: log-likelihood %.6f, |grad| %.3g", progress.iteration, ll, gnorm)
            if self.callback is not None and self.callback(progress) is False:
                stop["flag"] = True
                raise StopIteration

        sc = self.feature_scale_
        x0, xbounds = self._x_and_bounds(theta0 * sc, lo * sc, hi * sc)
        try:
            res = minimize(
                objective,
                x0,
                jac=True,
                method="L-BFGS-B",
                bounds=xbounds,
                callback=on_iteration,
                options={"maxiter": self.max_iter, "gtol": self.tol, "ftol": 1e-15, "maxcor": 20},
            )
            x_final, message, success = res.x, str(res.message), bool(res.success)
            if stop["flag"]:  # scipy >= 1.11 catches the StopIteration itself and reports it in its own words
                message, success = "stopped by callback", False
        except StopIteration:
            x_final, message, success = best["x"], "stopped by callback", False
        if best.get("x") is not None:  # the best point evaluated (L-BFGS-B returns it too, unless stopped)
            x_final = best["x"]
        if self.nonpositive_rewards and not stop["flag"]:
            x_costs, message, success = self._costs_only(mdp, x_final, xbounds, objective, on_iteration,
                                                         message, success)
            if x_costs is not x_final:  # refined: report the constrained point's likelihood, not the best seen
                x_final = x_costs
                objective(x_final)
                best["ll"] = last_eval[1]
        self.theta_ = self._theta_from_x(x_final, k)
        self.model_ = RouteModel(mdp, self.theta_, self.alpha, self.reference_policy, ordering)
        self.n_iter_ = iteration["n"]
        self.converged_ = success
        self.message_ = message
        self.mdp_ = mdp
        self.log_likelihood_ = float(best["ll"])
        self.n_trips_ = trips.n_trips
        self.absent_features_ = [name for name, u in zip(mdp.feature_names, used, strict=True) if not u]
        logger.info("fit: %d iterations, log-likelihood %.4f (%s)", self.n_iter_, self.log_likelihood_, message)
        return self

    def _costs_only(
        self, mdp: RouteMDP, x: np.ndarray, xbounds: list[tuple[float | None, float | None]],
        objective: Callable[[np.ndarray], tuple[float, np.ndarray]], on_iteration: Callable[[Any], None],
        message: str, success: bool,
    ) -> tuple[np.ndarray, str, bool]:
        """Refine ``x`` so that no transition's reward is positive: cutting planes of the violated transitions, SLSQP.

        The likelihood is concave in ``theta`` and the constraints are linear, so the refined
        point is the constrained optimum; transitions are added as constraints only once
        violated (a few rounds), not all of them at once.
        """
        F = np.asarray(mdp.features, dtype=np.float64) / self.feature_scale_  # reward = F @ u
        if self.l1 > 0:
            F = np.hstack([F, -F])  # u = p - m
        margin = 1e-9  # rewards stay below 0 by a hair, so rounding never makes one positive
        active = np.zeros(F.shape[0], dtype=bool)
        for _ in range(20):
            violated = F @ x > 0
            if not np.any(violated & ~active):
                break
            active |= violated
            A = F[active]
            try:
                res = minimize(objective, x, jac=True, method="SLSQP", bounds=xbounds,
                               constraints=[{"type": "ineq", "fun": lambda z, A=A: -margin - A @ z,
                                             "jac": lambda z, A=A: -A}],
                               callback=lambda xk: on_iteration(OptimizeResult(x=xk)),
                               options={"maxiter": self.max_iter, "ftol": 1e-12})
            except StopIteration:
                return x, "stopped by callback", False
            message = f"{res.message} (no positive reward: {int(active.sum())} transitions constrained)"
            x, success = res.x, bool(res.success)
        if np.any(F @ x > 0):
            logger.warning("%d transitions keep a positive reward after 20 rounds of constraints",
                           int(np.sum(F @ x > 0)))
            message, success = f"{message}; some rewards are still positive", False
        logger.info("costs only: %d transitions constrained (%s)", int(active.sum()), message)
        return x, message, success

    def _validate_params(self) -> None:
        if not (np.isfinite(self.alpha) and self.alpha > 0):
            raise InvalidParameterError(f"alpha must be positive, got {self.alpha!r}")
        for name in ("l1", "l2"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise InvalidParameterError(f"{name} must be >= 0, got {v!r}")
        if not (self.tol > 0) or int(self.max_iter) < 1:
            raise InvalidParameterError("tol must be > 0 and max_iter >= 1")

    def _feature_bounds(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = np.full(k, -np.inf), np.full(k, np.inf)
        if self.bounds is not None:
            if len(self.bounds) != k:
                raise InvalidParameterError(f"bounds must have one (low, high) pair per feature ({k})")
            for i, (a, b) in enumerate(self.bounds):
                lo[i] = -np.inf if a is None else a
                hi[i] = np.inf if b is None else b
            if np.any(lo > hi):
                raise InvalidParameterError("a lower bound exceeds its upper bound")
        return lo, hi

    def _x_and_bounds(self, theta0: np.ndarray, lo: np.ndarray, hi: np.ndarray
                      ) -> tuple[np.ndarray, list[tuple[float | None, float | None]]]:
        """L1 is made smooth by splitting ``theta = p - m`` with ``p, m >= 0``."""
        if self.l1 <= 0:
            pairs = zip(lo, hi, strict=True)
            return theta0, [(None if np.isinf(a) else a, None if np.isinf(b) else b) for a, b in pairs]
        p0, m0 = np.maximum(theta0, 0), np.maximum(-theta0, 0)
        pb = [(max(a, 0.0), None if np.isinf(b) else max(b, 0.0)) for a, b in zip(lo, hi, strict=True)]
        mb = [(max(-b, 0.0), None if np.isinf(a) else max(-a, 0.0)) for a, b in zip(lo, hi, strict=True)]
        return np.concatenate([p0, m0]), pb + mb

    def _theta_from_x(self, x: np.ndarray, k: int) -> np.ndarray:
        u = x[:k] - x[k:] if self.l1 > 0 else np.array(x, dtype=np.float64)
        theta: np.ndarray = u / self.feature_scale_
        return theta

    def _convergent_start(
        self,
        mdp: RouteMDP,
        theta0: np.ndarray,
        lo: np.ndarray,
        hi: np.ndarray,
        log_pi0: np.ndarray | None,
        ordering: np.ndarray,
        relevant: np.ndarray,
    ) -> np.ndarray:
        """Move ``theta0`` along ``-sign(mean feature)`` until the partition function converges.

        Only on the ``relevant`` states (:func:`~maxent_irl.objective.relevant_states`): a loop elsewhere
        is never driven, so it does not have to converge.
        """
        direction = -np.sign(mdp.features.mean(axis=0))
        direction[direction == 0] = -1.0
        step = 0.0
        for _ in range(60):
            theta: np.ndarray = np.clip(theta0 + step * direction, lo, hi)
            try:  # the factorization alone certifies convergence (M-matrix pivots)
                global_system(mdp, transition_log_weights(mdp.features, theta, self.alpha, log_pi0), ordering,
                              relevant=relevant)
                if step:
                    logger.info("theta0 diverges; starting from theta0 %+g * direction instead", step)
                return theta
            except PartitionFunctionDivergedError:
                step = 0.5 if step == 0 else step * 2
        raise PartitionFunctionDivergedError(
            "found no theta within the bounds for which the partition function converges: some cycle of "
            "transitions has features that no weights can make costly (e.g. all-zero features)"
        )

    # -- queries (delegated to the fitted RouteModel) ----------------------------------
    def _model(self) -> RouteModel:
        check_is_fitted(self, "model_")
        return self.model_

    def log_likelihood(self, paths: Sequence[Sequence[int] | np.ndarray]) -> float:
        """Total natural-log likelihood of ``paths`` under ``theta_``."""
        return self._model().log_likelihood(paths)

    def path_log_prob(self, paths: Sequence[Sequence[int] | np.ndarray]) -> np.ndarray:
        return self._model().path_log_prob(paths)

    def most_likely_path(self, origin: int, destination: int) -> np.ndarray:
        return self._model().most_likely_path(origin, destination)

    def expected_visits(self, origin: int, destination: int) -> Visits:
        return self._model().expected_visits(origin, destination)

    def sample_paths(self, origin: int, destination: int, n: int, random_state: RandomState = None) -> list[np.ndarray]:
        return self._model().sample_paths(origin, destination, n, random_state)

    def next_transition_probs(self, state: int, destination: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._model().next_transition_probs(state, destination)

    def destination_posterior(
        self,
        partial_path: Sequence[int] | np.ndarray,
        candidates: Sequence[int] | np.ndarray | None = None,
        prior: Sequence[float] | np.ndarray | None = None,
    ) -> np.ndarray:
        """Posterior ``P(d | partial path)`` over every state (or over ``candidates``), summing to 1."""
        return self._model().destination_posterior(partial_path, candidates, prior)
