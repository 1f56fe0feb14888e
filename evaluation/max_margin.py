"""Maximum margin planning (Ratliff, Bagnell & Zinkevich 2006): the "Max Margin" row of Table 1.

It learns transition costs ``c = F w`` under which each demonstrated route is cheaper
than every other route by a margin that grows with how much of it they miss. It is no
density model (no path probabilities), and it needs every cost positive so that its
plans are shortest paths: the weights are projected onto ``{F w >= eps}`` after each
step, with the constraint rows of :func:`~evaluation.baselines.positive_cost_rows` plus
any transition found violating (cutting planes).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize

from evaluation.baselines import ShortestPathBaseline, positive_cost_rows, shortest_path
from evaluation.metrics import route_match_fraction
from maxent_irl.base import BaseEstimator, FitCallback, FitProgress, RandomState, check_is_fitted
from maxent_irl.exceptions import InvalidParameterError
from maxent_irl.mdp import RouteMDP
from maxent_irl.model_selection import train_test_split
from maxent_irl.parallel import single_threaded_blas

__all__ = ["MaxMarginPlanning", "project_onto_positive_costs"]

logger = logging.getLogger(__name__)


#: Rounds of cutting planes per projection before falling back to the interior point.
_MAX_CUTS = 5


def project_onto_positive_costs(w: np.ndarray, A: np.ndarray, eps: float, interior: np.ndarray) -> np.ndarray:
    """Euclidean projection ``(k,)`` of ``w`` onto ``{A w >= eps}`` (``A`` ``(m, k)``); ``w`` itself if feasible.

    Solved through its dual, a bound-constrained QP in ``m`` multipliers. The dual solution
    can leave a tiny violation; it is removed by moving toward ``interior`` (strictly
    feasible), so the result is always feasible.
    """
    slack = A @ w - eps
    if slack.min() >= 0:
        return w
    AAt = A @ A.T

    def dual(lam: np.ndarray) -> tuple[float, np.ndarray]:
        g = AAt @ lam + slack
        return 0.5 * float(lam @ (g + slack)), g

    res = minimize(dual, np.zeros(len(A)), jac=True, method="L-BFGS-B", bounds=[(0, None)] * len(A))
    x = w + A.T @ res.x
    ax, a0 = A @ x, A @ interior
    bad = ax < eps
    if bad.any():
        s = float(np.max((eps - ax[bad]) / (a0[bad] - ax[bad])))
        x = (1 - s) * x + s * interior
    return x


class MaxMarginPlanning(BaseEstimator):
    """Maximum margin planning for route MDPs, by projected stochastic subgradient descent.

    Minimizes ``lam/2 |w|^2 + mean_i [c(y_i) - min_y (c(y) - L(y_i, y))]`` over weights
    ``w`` of costs ``c = F w``, with step ``min(eta0 / sqrt(t), 1 / lam)`` (beyond
    ``1 / lam`` the weight decay alone would overshoot zero and the iterates diverge),
    minibatches of ``batch`` trips and the average of the second half of the iterates,
    keeping every cost >= ``eps``. The loss ``L`` is the demonstrated distance (km) the plan misses, the
    quantity Table 1 measures; then ``c(y) - L(y_i, y) = c(y) + km(y ∩ y_i) - km(y_i)``,
    so loss-augmented planning is a shortest path with each demonstrated segment's length
    added to its cost. With several ``lams``, the one whose plans match a seeded
    ``validation_fraction`` of the training trips best is refitted on all of them.

    ``callback`` gets a :class:`~maxent_irl.base.FitProgress` after every subgradient step:
    ``stage`` names the ``lam`` being fitted (``"lam=0.01"``; ``"final"`` for the refit on all
    trips), ``iteration`` the step (1-based) of ``total``, ``objective`` the minibatch's mean
    hinge loss at the weights the step started from (km + cost units), ``theta`` the weights
    after the step; returning ``False`` stops the fit after that step.

    Learned attributes: ``w_`` ``(k,)``, ``costs_`` ``(T,)``, ``lam_``, ``validation_``
    (``{lam: mean matched share}``, empty with one ``lam``), ``planner_`` (the shortest
    path under ``costs_``, a :class:`~evaluation.baselines.ShortestPathBaseline`).
    """

    def __init__(self, lams: Sequence[float] = (1e-3, 1e-2, 1e-1), n_iter: int = 200, batch: int = 100,
                 eta0: float = 1.0, eps: float = 1e-3, validation_fraction: float = 0.2,
                 random_state: RandomState = 0, callback: FitCallback | None = None) -> None:
        self.lams = lams
        self.n_iter = n_iter
        self.batch = batch
        self.eta0 = eta0
        self.eps = eps
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.callback = callback

    def fit(self, mdp: RouteMDP, paths: Sequence[np.ndarray], state_length_m: np.ndarray) -> MaxMarginPlanning:
        """Fit on demonstrated ``paths`` (state sequences); ``state_length_m`` ``(S,)`` weighs the loss.

        BLAS runs on one thread: the steps are small dense products (see ``single_threaded_blas``).
        """
        with single_threaded_blas():
            return self._fit(mdp, paths, state_length_m)

    def _fit(self, mdp: RouteMDP, paths: Sequence[np.ndarray], state_length_m: np.ndarray) -> MaxMarginPlanning:
        lams = tuple(float(x) for x in self.lams)
        if not lams or not all(math.isfinite(x) and x >= 0 for x in lams):
            raise InvalidParameterError(f"lams must be finite nonnegative numbers, got {self.lams!r}")
        if self.n_iter < 1 or self.batch < 1 or not self.eta0 > 0 or not self.eps > 0:
            raise InvalidParameterError("n_iter and batch must be >= 1, eta0 and eps positive")
        if len(lams) > 1 and not 0 < self.validation_fraction < 1:
            raise InvalidParameterError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")
        paths = [np.asarray(p) for p in paths]
        if len(paths) < (2 if len(lams) > 1 else 1):
            raise InvalidParameterError(f"too few paths to fit ({len(paths)})")
        for p in paths:
            mdp.transition_indices(p)  # InvalidPathError for a path the MDP cannot drive
        length = np.asarray(state_length_m, dtype=float)
        if length.shape != (mdp.n_states,):
            raise InvalidParameterError(f"state_length_m must have shape ({mdp.n_states},)")
        self._F = mdp.features
        self._km = length[mdp.dst] / 1000.0
        self._A = positive_cost_rows(mdp.features)
        self._interior = self._interior_point(mdp)

        rs = self.random_state
        # an int seeds the minibatches (seed) and the validation split (seed + 1); a generator draws one seed
        self._seed = int(rs) if isinstance(rs, int | np.integer) else int(np.random.default_rng(rs).integers(2**62))
        self._start = time.perf_counter()
        self._stopped = False
        self.validation_: dict[float, float] = {}
        if len(lams) > 1:
            fit_idx, val_idx = train_test_split(len(paths), self.validation_fraction, self._seed + 1)
            val = [paths[i] for i in val_idx]
            train = [paths[i] for i in fit_idx]
            for lam in lams:
                cost = mdp.features @ self._fit_one(mdp, train, lam, f"lam={lam:g}")
                self.validation_[lam] = float(np.mean(
                    [route_match_fraction(shortest_path(mdp, cost, int(p[0]), int(p[-1])), p, length) for p in val]))
                logger.info("max margin: lambda=%g, validation matching %.4f", lam, self.validation_[lam])
        self.lam_ = max(self.validation_, key=self.validation_.__getitem__) if self.validation_ else lams[0]
        self.w_ = self._fit_one(mdp, paths, self.lam_, "final")
        self.costs_ = mdp.features @ self.w_
        self.planner_ = ShortestPathBaseline(self.costs_).fit(mdp, paths)
        return self

    def most_likely_path(self, origin: int, destination: int) -> np.ndarray:
        """The plan: the cheapest path under the learned costs (the name matches the other models')."""
        check_is_fitted(self, "planner_")
        return self.planner_.most_likely_path(origin, destination)

    def _interior_point(self, mdp: RouteMDP) -> np.ndarray:
        """A strictly feasible ``w``: 1 per segment entered if a ``segment`` feature exists, else all ones."""
        names = list(mdp.feature_names)
        w = np.zeros(mdp.n_features)
        if "segment" in names:
            w[names.index("segment")] = 1.0
        else:
            w[:] = 1.0
        if (mdp.features @ w).min() < self.eps:
            raise InvalidParameterError("max margin planning: found no feature weights that make every cost positive")
        return w

    def _project(self, w: np.ndarray) -> np.ndarray:
        """Project onto positive costs; rows of ``F`` the reduced constraints miss are added (cutting planes).

        Always feasible: if a few rounds of cuts do not reach every transition (features
        without the road structure :func:`positive_cost_rows` relies on), the point is moved
        toward the interior point just far enough, over all rows of ``F``.
        """
        F, floor = self._F, self.eps * (1 - 1e-9)
        x = w
        for _ in range(_MAX_CUTS):
            x = project_onto_positive_costs(w, self._A, self.eps, self._interior)
            violated = np.flatnonzero(F @ x < floor)
            if violated.size == 0:
                return x
            new = positive_cost_rows(F[violated])  # a few rows per feature pattern, not every transition
            known = {row.tobytes() for row in self._A}
            new = new[[row.tobytes() not in known for row in new]]
            if len(new) == 0:
                break
            self._A = np.vstack([self._A, new])
        fx, f0 = F @ x, F @ self._interior
        bad = fx < self.eps
        if bad.any():
            s = float(np.max((self.eps - fx[bad]) / (f0[bad] - fx[bad])))
            x = (1 - s) * x + s * self._interior
        return x

    def _fit_one(self, mdp: RouteMDP, paths: list[np.ndarray], lam: float, stage: str) -> np.ndarray:
        F = self._F
        demo_t = [mdp.transition_indices(p) for p in paths]
        demo = np.array([F[t].sum(axis=0) for t in demo_t])
        demo_km = np.array([self._km[t].sum() for t in demo_t])
        rng = np.random.default_rng(self._seed)
        w = self._interior.copy()
        avg, n_avg = np.zeros_like(w), 0
        batch = min(self.batch, len(paths))
        for t in range(1, self.n_iter + 1):
            if self._stopped:
                break
            cost = F @ w
            grad = lam * w
            hinge = 0.0
            for i in rng.choice(len(paths), batch, replace=False):
                p = paths[i]
                on_demo = np.isin(mdp.dst, p[1:])
                y = shortest_path(mdp, cost + self._km * on_demo, int(p[0]), int(p[-1]))
                ty = mdp.transition_indices(y)
                fy = F[ty].sum(axis=0)
                missed_km = demo_km[i] - float(self._km[ty][on_demo[ty]].sum())
                hinge += (float((demo[i] - fy) @ w) + missed_km) / batch
                grad += (demo[i] - fy) / batch
            step = self.eta0 / math.sqrt(t) if lam == 0 else min(self.eta0 / math.sqrt(t), 1.0 / lam)
            w = self._project(w - step * grad)
            if t > self.n_iter // 2:
                avg += w
                n_avg += 1
            if self.callback is not None:
                progress = FitProgress(t, None, float(np.linalg.norm(grad)), w.copy(),
                                       time.perf_counter() - self._start, objective=hinge, stage=stage,
                                       total=self.n_iter)
                self._stopped = self.callback(progress) is False
        return avg / max(n_avg, 1) if n_avg else w
