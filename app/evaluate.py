"""``routeirl evaluate``: the evaluation of Ziebart et al. (2008) as one command.

Users trust a route-choice model when it beats simple baselines on held-out trips, so this
reproduces the paper's evaluation and writes it to a report folder:

* ``report.md`` and ``metrics.json``: Table 1 (share of a held-out route's distance matched by
  the model's most likely path, share of trips matched to >= 90 %, mean held-out
  log-probability) for MaxEnt, the time-based shortest path, max-margin planning and the
  action-based model; the learned weights with standard errors and, for simulated trips, the
  true ones; destination accuracy versus the fraction of the trip observed;
* ``costs.png`` (Fig. 3: learned costs in seconds next to the true ones),
  ``destinations.png`` (Fig. 5: top-1 / top-3 destination accuracy).

Trips are simulated on a network with a known ``theta`` that is not travel time
(:func:`maxent_irl.roads.default_true_theta`) or read, read-only, from the service's SQLite
database. Heavy modules are imported inside the functions: ``app.cli`` imports this module
for every subcommand, and ``routeirl serve`` should not pay for matplotlib.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.cli import command

if TYPE_CHECKING:
    from maxent_irl import MaxEntIRL, RouteMDP
    from maxent_irl.roads import RoadNetwork

__all__ = [
    "FRACTIONS",
    "EvalConfig",
    "EvaluationError",
    "MaxMarginPlanning",
    "check_config",
    "destination_regions",
    "information_matrix",
    "paired_difference",
    "read_database_paths",
    "region_accuracy",
    "run_evaluation",
    "split_train_test",
    "theta_recovery",
    "travel_time_costs",
    "usable_paths",
]

log = logging.getLogger("app.evaluate")


class EvaluationError(ValueError):
    """The evaluation cannot run on what it was given (bad flag, too few trips, diverging drivers...)."""


#: Fractions of a trip's distance observed before predicting its destination (Fig. 5).
FRACTIONS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
TOP_K: tuple[int, ...] = (1, 3)
MAXENT, ORACLE = "MaxEnt", "True θ (reference)"
TIME, MMP, ACTION, ACTION_COSTS = "Time-based", "Max margin", "Action", "Action (costs)"


@dataclass
class EvalConfig:
    """Everything ``routeirl evaluate`` can be told (the CLI flags, one to one)."""

    simulate: int = 50000
    database: str | None = None
    network: str | None = None
    seed: int = 0
    noise_m: float = 10.0
    map_match: bool = False
    od: str = "random"
    temperature: float | None = None  # None: calibrated to target_match90
    target_match90: float = 0.5
    out: str | None = None
    test_fraction: float = 0.2
    destinations: int = 5
    destination_trips: int = 500
    max_iter: int = 500
    action_trips: int = 0
    action_max_iter: int = 500
    action_warm_trips: int = 2000
    mmp: bool = True
    mmp_iter: int = 200
    mmp_batch: int = 100
    rel_se_max: float = 0.015
    tolerance: float = 0.05
    progress: bool = True


# --------------------------------------------------------------------------- progress
@contextmanager
def progress_bar(enabled: bool, **kwargs: Any) -> Iterator[Any]:
    """A tqdm bar on stderr (a no-op object when disabled), closed on exit."""
    from tqdm import tqdm

    bar = tqdm(file=sys.stderr, disable=not enabled, dynamic_ncols=True, leave=False, **kwargs)
    try:
        yield bar
    finally:
        bar.close()


@contextmanager
def timed(timings: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = round(time.perf_counter() - start, 3)


# --------------------------------------------------------------------------- data
def usable_paths(mdp: RouteMDP, paths: Sequence[Sequence[int]]) -> tuple[list[np.ndarray], dict[str, int]]:
    """Paths the likelihood accepts, and why the others were dropped.

    A path needs two states, valid transitions, and must not pass its destination before
    its end (the destination is absorbing: the trip would have ended there).
    """
    kept, dropped = [], Counter()
    for p in paths:
        path = np.asarray(p, dtype=np.int64)
        if path.size < 2:
            dropped["too_short"] += 1
            continue
        if np.any(path[:-1] == path[-1]):
            dropped["passes_destination"] += 1
            continue
        try:
            mdp.transition_indices(path)
        except (ValueError, IndexError):
            dropped["invalid"] += 1
            continue
        kept.append(path)
    return kept, dict(dropped)


def read_database_paths(database: str | Path, fingerprint: str) -> list[list[int]]:
    """Matched paths of the trips stored for network ``fingerprint``, opened read-only.

    Read-only (``mode=ro``) so an evaluation can never modify the service's database, even
    while the service runs.
    """
    path = Path(database).expanduser().resolve()
    if not path.is_file():
        raise EvaluationError(f"no database at {path}")
    con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        try:
            rows = con.execute("SELECT path FROM trips WHERE network = ? ORDER BY id", (fingerprint,)).fetchall()
            others = [] if rows else con.execute("SELECT network, COUNT(*) FROM trips GROUP BY network").fetchall()
        except sqlite3.DatabaseError as exc:  # not SQLite, or no trips table
            raise EvaluationError(f"{path} is not a routeirl database ({exc})") from exc
        if not rows:
            known = ", ".join(f"{n} ({c} trips)" for n, c in others) or "none"
            raise EvaluationError(
                f"{path} holds no trips for network {fingerprint}; networks with trips: {known}. "
                "Pass --network with the network the service used."
            )
    finally:
        con.close()
    return [json.loads(r[0]) for r in rows]


def split_train_test(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split ``(train, test)`` of ``n`` trips; both sides keep at least one trip."""
    if not 0 < test_fraction < 1:
        raise EvaluationError(f"test fraction must be in (0, 1), got {test_fraction}")
    if n < 2:
        raise EvaluationError(f"need at least 2 trips to split, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = min(max(1, round(test_fraction * n)), n - 1)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def travel_time_costs(net: RoadNetwork) -> np.ndarray:
    """``(T,)`` seconds to drive the entered segment at its speed: the paper's "time-based" costs."""
    dst = net.mdp.dst
    return net.segment_length_m[dst] / (np.maximum(net.segment_speed_kph[dst], 1.0) / 3.6)


# --------------------------------------------------------------------------- max-margin planning
def _project_feasible(w: np.ndarray, A: np.ndarray, eps: float, interior: np.ndarray) -> np.ndarray:
    """Euclidean projection of ``w`` onto ``{A w >= eps}`` (dual: bound-constrained QP).

    Shortest-path planning needs positive costs. A tiny residual violation of the dual
    solution is removed by moving toward ``interior`` (strictly feasible).
    """
    from scipy.optimize import minimize

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


class MaxMarginPlanning:
    """Maximum margin planning (Ratliff, Bagnell & Zinkevich 2006) for route MDPs.

    Learns transition costs ``c = F w`` minimizing
    ``lambda/2 |w|^2 + mean_i [c(y_i) - min_y (c(y) - L(y_i, y))]`` by projected stochastic
    subgradient descent (step ``eta0 / sqrt(t)``, minibatches, Polyak averaging of the second
    half), keeping every cost >= ``eps`` so plans are shortest paths. The loss ``L`` is the
    demonstrated distance (km) the plan misses, the quantity Table 1 measures; then
    ``c(y) - L(y_i, y) = c(y) + km(y ∩ y_i) - km(y_i)``, so loss-augmented planning is a
    shortest path with each demonstrated segment's length added to its cost. ``lam`` is
    chosen on a validation split of the training trips when several are given. It is no
    density model: it gives no path probabilities.
    """

    def __init__(self, lams: Sequence[float] = (1e-3, 1e-2, 1e-1), n_iter: int = 200, batch: int = 100,
                 eta0: float = 1.0, eps: float = 1e-3, validation_fraction: float = 0.2, seed: int = 0,
                 progress: bool = False) -> None:
        self.lams = tuple(lams)
        self.n_iter = n_iter
        self.batch = batch
        self.eta0 = eta0
        self.eps = eps
        self.validation_fraction = validation_fraction
        self.seed = seed
        self.progress = progress

    def fit(self, mdp: RouteMDP, paths: Sequence[np.ndarray], state_length_m: np.ndarray) -> MaxMarginPlanning:
        from maxent_irl.baselines import positive_cost_rows
        from maxent_irl.metrics import route_match_fraction

        self.mdp_ = mdp
        self._km = state_length_m[mdp.dst] / 1000.0
        self._A = positive_cost_rows(mdp.features)
        self._interior = self._interior_point(mdp.features)
        paths = list(paths)
        self.validation_ = {}
        lam = self.lams[0]
        if len(self.lams) > 1:
            train_idx, val_idx = split_train_test(len(paths), self.validation_fraction, self.seed + 1)
            for cand in self.lams:
                w = self._fit_one(mdp, [paths[i] for i in train_idx], cand)
                cost = mdp.features @ w
                match = [route_match_fraction(self._plan(cost, p), p, state_length_m)
                         for p in (paths[i] for i in val_idx)]
                self.validation_[cand] = float(np.mean(match))
                log.info("max margin: lambda=%g, validation matching %.4f", cand, self.validation_[cand])
            lam = max(self.validation_, key=lambda k: self.validation_[k])
        self.lam_ = lam
        self.w_ = self._fit_one(mdp, paths, lam)
        self.costs_ = mdp.features @ self.w_
        return self

    def most_likely_path(self, origin: int, destination: int) -> np.ndarray:
        from maxent_irl.baselines import shortest_path

        return shortest_path(self.mdp_, self.costs_, origin, destination)

    def _plan(self, cost: np.ndarray, path: np.ndarray) -> np.ndarray:
        from maxent_irl.baselines import shortest_path

        return shortest_path(self.mdp_, cost, int(path[0]), int(path[-1]))

    def _interior_point(self, features: np.ndarray) -> np.ndarray:
        """A strictly feasible ``w``: 1 per segment entered, if a ``segment`` feature exists; else 1 per km."""
        names = list(self.mdp_.feature_names)
        w = np.zeros(features.shape[1])
        if "segment" in names:
            w[names.index("segment")] = 1.0
        else:
            w[:] = 1.0
        if (features @ w).min() < self.eps:
            raise EvaluationError("max margin planning: found no feature weights that make every cost positive")
        return w

    def _project(self, w: np.ndarray) -> np.ndarray:
        """Project onto positive costs; rows of ``F`` the reduced constraints miss are added (cutting planes)."""
        F = self.mdp_.features
        while True:
            x = _project_feasible(w, self._A, self.eps, self._interior)
            violated = np.flatnonzero(F @ x < self.eps * (1 - 1e-9))
            if violated.size == 0:
                return x
            self._A = np.vstack([self._A, F[violated]])

    def _fit_one(self, mdp: RouteMDP, paths: list[np.ndarray], lam: float) -> np.ndarray:
        from maxent_irl.baselines import shortest_path

        F = mdp.features
        demo_t = [mdp.transition_indices(p) for p in paths]
        demo = np.array([F[t].sum(axis=0) for t in demo_t])
        demo_km = np.array([self._km[t].sum() for t in demo_t])
        rng = np.random.default_rng(self.seed)
        w = self._interior.copy()
        avg, n_avg = np.zeros_like(w), 0
        batch = min(self.batch, len(paths))
        with progress_bar(self.progress, total=self.n_iter, desc=f"max margin (λ={lam:g})") as bar:
            for t in range(1, self.n_iter + 1):
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
                w = self._project(w - self.eta0 / math.sqrt(t) * grad)
                if t > self.n_iter // 2:
                    avg += w
                    n_avg += 1
                bar.update(1)
                bar.set_postfix(hinge=f"{hinge:.3f}")
        return avg / max(n_avg, 1)


# --------------------------------------------------------------------------- fitting
def fit_maxent(mdp: RouteMDP, paths: Sequence[np.ndarray], max_iter: int, progress: bool) -> MaxEntIRL:
    """MaxEnt IRL by maximum likelihood (unregularized, as the paper), with a progress bar."""
    from maxent_irl import MaxEntIRL

    with progress_bar(progress, total=max_iter, desc="MaxEnt fit") as bar:

        def tick(p: Any) -> None:
            bar.update(1)
            bar.set_postfix(ll=f"{p.log_likelihood:.2f}", grad=f"{p.grad_norm:.1e}")

        return MaxEntIRL(max_iter=max_iter, callback=tick).fit(mdp, list(paths))


def fit_action_model(
    mdp: RouteMDP, paths: Sequence[np.ndarray], max_trips: int, max_iter: int, warm_trips: int, seed: int,
    progress: bool,
) -> tuple[Any, int]:
    """The action-based baseline, fitted on at most ``max_trips`` training trips (0: all, the default).

    It starts from the class's default weights, independently of MaxEnt: started from the
    MaxEnt weights it stays so close to them that "Action (costs)" plans MaxEnt's routes and
    the comparison measures nothing. With more than ``warm_trips`` trips it is first fitted
    on a seeded subsample of ``warm_trips`` and then refined on all of them: each likelihood
    evaluation costs a Dijkstra per distinct destination, and the subsample gets most of the
    way there in fewer of them. The optimizer then runs to convergence on all the trips.
    The likelihood is not concave, so this is a local maximum near the subsample's, which
    need not be the one a cold start would find.
    """
    from maxent_irl.baselines import ActionBasedModel

    rng = np.random.default_rng(seed)
    paths = list(paths)
    if 0 < max_trips < len(paths):
        keep = np.sort(rng.choice(len(paths), max_trips, replace=False))
        paths = [paths[i] for i in keep]
    with progress_bar(progress, desc="action-based fit (likelihood evaluations)") as bar:

        class _Tracked(ActionBasedModel):
            def _ll_grad(self, *args: Any, **kwargs: Any) -> tuple[float, np.ndarray]:
                out = super()._ll_grad(*args, **kwargs)
                bar.update(1)
                return out

        theta0, n_iter, warm_used = None, 0, 0
        if 0 < warm_trips < len(paths):
            keep = np.sort(rng.choice(len(paths), warm_trips, replace=False))
            warm = _Tracked(max_iter=max_iter).fit(mdp, [paths[i] for i in keep])
            theta0, n_iter, warm_used = warm.theta_, warm.n_iter_, warm_trips
            log.info("action-based model: warm start from %d trips (%d iterations)", warm_trips, n_iter)
        model = _Tracked(max_iter=max_iter, theta0=theta0).fit(mdp, paths)
    model.n_iter_ += n_iter
    model.warm_start_trips_ = warm_used
    return model, len(paths)


def information_matrix(
    mdp: RouteMDP, paths: Sequence[np.ndarray], theta: np.ndarray, alpha: float = 1.0,
    ordering: np.ndarray | None = None, step: float = 1e-4, progress: bool = False,
) -> np.ndarray:
    """Observed Fisher information ``-d²loglik/dθ²`` ``(k, k)`` by central differences of the exact gradient.

    ``2 k`` gradient evaluations; features absent from every transition get zero rows.
    Its inverse is the asymptotic covariance of the maximum-likelihood ``theta``.
    """
    from maxent_irl.objective import log_likelihood_and_gradient, make_trip_set

    trips = make_trip_set(mdp, list(paths))
    k = mdp.n_features
    present = np.any(mdp.features != 0, axis=0)
    H = np.zeros((k, k))

    def grad(th: np.ndarray) -> np.ndarray:
        return log_likelihood_and_gradient(mdp, trips, mdp.features @ th / alpha, alpha, ordering)[1]

    with progress_bar(progress, total=int(present.sum()), desc="Hessian (finite differences)") as bar:
        for j in np.flatnonzero(present):
            h = step * max(1.0, abs(float(theta[j])))
            e = np.zeros(k)
            e[j] = h
            H[:, j] = (grad(theta + e) - grad(theta - e)) / (2 * h)
            bar.update(1)
    return -(H + H.T) / 2


def covariance(info: np.ndarray) -> np.ndarray:
    """Inverse of the information on the identifiable features; ``inf`` variance elsewhere.

    A feature is dropped when its information is ~0 (absent from the network, or never
    preferred: its weight runs off to -inf). The inverse is a pseudo-inverse of the rest.
    """
    d = np.diag(info)
    ok = d > 1e-9 * max(float(d.max()), 1e-300)
    cov = np.full(info.shape, np.nan)
    cov[np.diag_indices_from(cov)] = np.inf
    if ok.any():
        cov[np.ix_(ok, ok)] = np.linalg.pinv(info[np.ix_(ok, ok)], hermitian=True)
    return cov


# --------------------------------------------------------------------------- Table 1
def evaluate_routes(
    predict: Callable[[int, int], np.ndarray], paths: Sequence[np.ndarray], state_length: np.ndarray,
    desc: str, progress: bool,
) -> np.ndarray:
    """Per-trip share of the held-out route's distance matched by ``predict(origin, destination)``."""
    from maxent_irl.metrics import route_match_fraction

    out = np.empty(len(paths))
    with progress_bar(progress, total=len(paths), desc=desc) as bar:
        for i, p in enumerate(paths):
            out[i] = route_match_fraction(predict(int(p[0]), int(p[-1])), p, state_length)
            bar.update(1)
    return out


def table1_summary(match: np.ndarray, log_prob: np.ndarray | None) -> dict[str, float | None]:
    """The three Table-1 numbers from per-trip values (fractions, and nats per trip)."""
    return {
        "matching": float(match.mean()),
        "match90": float(np.mean(match >= 0.9 - 1e-12)),
        "log_prob": None if log_prob is None else float(np.mean(log_prob)),
        "n_trips": int(match.size),
    }


def paired_difference(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Mean of ``a - b`` over the same trips with a normal 95 % interval (paired: trips differ a lot)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    half = 1.96 * float(d.std(ddof=1)) / math.sqrt(d.size) if d.size > 1 else math.inf
    return {"diff": float(d.mean()), "ci95_low": float(d.mean() - half), "ci95_high": float(d.mean() + half)}


def _ceiling(per_trip: dict[str, dict[str, np.ndarray]], baselines: Sequence[str]) -> dict[str, Any]:
    """Paired ``true θ - baseline`` differences, and per matching metric the baselines the true θ does not beat.

    The most likely path is not the prediction that maximizes expected matched distance (a bundle of
    similar, individually less likely routes can carry more probability than the single best one), so
    a biased model can match held-out routes as well as the true θ, or better. Where the true θ's own
    most likely path does not beat a baseline (same point-estimate comparison as the MaxEnt check),
    MaxEnt, whose most likely path converges to the true θ's, cannot be expected to beat it either.
    """
    differences = {b: {m: paired_difference(per_trip[ORACLE][m], per_trip[b][m]) for m in ("match", "match90")}
                   for b in baselines}
    at_ceiling = {metric: [b for b in baselines if differences[b][key]["diff"] <= 0]
                  for metric, key in (("matching", "match"), ("match90", "match90"))}
    return {"differences": differences, "at_ceiling": at_ceiling}


# --------------------------------------------------------------------------- theta recovery
def theta_recovery(
    names: Sequence[str], fitted: np.ndarray, cov: np.ndarray, true: np.ndarray | None,
    trips_using: np.ndarray, present: np.ndarray, rel_se_max: float, tolerance: float,
) -> dict[str, Any]:
    """Per-feature table and verdict: which features are *exercised*, and are those within ``tolerance``?

    A feature is exercised when the data pin its weight down: relative standard error
    ``se / |fitted|`` <= ``rel_se_max``, decided from the training trips alone (not from the
    truth). With the default 1.5 %, a 5 % error would be a > 3 sigma deviation, so
    "exercised and off by > 5 %" means a biased estimator, not bad luck.
    """
    from maxent_irl.roads import FEATURE_TABLE

    group = {f.name: f.group for f in FEATURE_TABLE}
    se = np.sqrt(np.where(np.isfinite(np.diag(cov)), np.maximum(np.diag(cov), 0.0), np.inf))
    rows = []
    for j, name in enumerate(names):
        rel_se = float(se[j] / abs(fitted[j])) if fitted[j] != 0 else math.inf
        row: dict[str, Any] = {
            "feature": name, "group": group.get(name, ""), "fitted": float(fitted[j]),
            "se": float(se[j]), "rel_se": rel_se, "train_trips_using": int(trips_using[j]),
            "present_in_network": bool(present[j]),
            "exercised": bool(present[j] and rel_se <= rel_se_max),
        }
        if true is not None:
            row["true"] = float(true[j])
            row["rel_error"] = float(abs(fitted[j] - true[j]) / abs(true[j])) if true[j] != 0 else math.inf
            row["z"] = float((fitted[j] - true[j]) / se[j]) if np.isfinite(se[j]) and se[j] > 0 else None
            row["within_tolerance"] = bool(row["rel_error"] <= tolerance)
        rows.append(row)
    exercised = [r["feature"] for r in rows if r["exercised"]]
    out: dict[str, Any] = {
        "criterion": f"relative standard error (Hessian) <= {rel_se_max:g}",
        "rel_se_max": rel_se_max, "tolerance": tolerance, "features": rows, "exercised": exercised,
    }
    if true is not None:
        zs = [abs(r["z"]) for r in rows if r["z"] is not None and r["train_trips_using"] > 0]
        # None: no feature is pinned down well enough to test the claim at this sample size
        out["all_exercised_within_tolerance"] = (
            all(r["within_tolerance"] for r in rows if r["exercised"]) if exercised else None)
        out["n_identified"] = len(zs)
        out["n_abs_z_gt_2"] = int(sum(z > 2 for z in zs))
        out["n_abs_z_gt_3"] = int(sum(z > 3 for z in zs))
    return out


def seconds_with_se(theta: np.ndarray, cov: np.ndarray, names: Sequence[str]) -> tuple[dict, dict]:
    """Weights as seconds (Fig. 3) and their standard errors by the delta method.

    The seconds are ratios to the anchor road's weight, so the anchor's own uncertainty
    counts; the Jacobian of :func:`weights_as_seconds` is taken numerically.
    """
    from maxent_irl.roads import weights_as_seconds

    base = weights_as_seconds(theta, names)
    keys = list(base)
    ok = np.isfinite(np.diag(cov))
    J = np.zeros((len(keys), len(theta)))
    for j in np.flatnonzero(ok):
        h = 1e-6 * max(1.0, abs(float(theta[j])))
        e = np.zeros(len(theta))
        e[j] = h
        hi, lo = weights_as_seconds(theta + e, names), weights_as_seconds(theta - e, names)
        J[:, j] = [(hi[n] - lo[n]) / (2 * h) for n in keys]
    sub = J[:, ok]
    var = np.einsum("ij,jk,ik->i", sub, cov[np.ix_(ok, ok)], sub) if ok.any() else np.zeros(len(keys))
    se = {n: float(math.sqrt(max(v, 0.0))) if ok[keys.index(n)] else math.inf for n, v in zip(keys, var, strict=True)}
    return base, se


# --------------------------------------------------------------------------- Fig. 5
def destination_regions(xy: np.ndarray, k: int, seed: int) -> np.ndarray:
    """``(k', 2)`` centres of ``k`` destination regions: k-means of destination positions (metres).

    The paper predicts among 5 destination regions; here they are where the training trips
    end (for clustered simulated demand, the hubs). Empty clusters are dropped.
    """
    from scipy.cluster.vq import kmeans2

    k = min(k, len(np.unique(xy, axis=0)))
    if k < 2:
        raise EvaluationError("destination prediction needs at least 2 distinct training destinations")
    centres, labels = kmeans2(xy.astype(float), k, minit="++", seed=np.random.default_rng(seed))
    return centres[np.unique(labels)]


def nearest_region(xy: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return np.argmin(((xy[:, None, :] - centres[None, :, :]) ** 2).sum(axis=-1), axis=1)


def region_accuracy(
    posterior: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    paths: Sequence[np.ndarray], true_region: np.ndarray, candidates: np.ndarray, candidate_region: np.ndarray,
    prior: np.ndarray, n_regions: int, state_length: np.ndarray, fractions: Sequence[float] = FRACTIONS,
    top_k: Sequence[int] = TOP_K, progress: bool = False,
) -> dict[int, np.ndarray]:
    """Top-k accuracy ``(len(fractions),)`` of the region posterior given the first fraction of each trip.

    ``P(region | partial path) = sum of P(d | partial path)`` over the candidate states
    ``d`` of the region (the training destinations, prior = their training frequency).
    Ties count against the true region.
    """
    from maxent_irl.exceptions import UnreachableDestinationError
    from maxent_irl.metrics import partial_path

    hits = {k: np.zeros(len(fractions)) for k in top_k}
    with progress_bar(progress, total=len(paths), desc="destination prediction") as bar:
        for p, r in zip(paths, true_region, strict=True):
            for f_i, f in enumerate(fractions):
                try:
                    post = posterior(partial_path(p, f, state_length), candidates, prior)
                except UnreachableDestinationError:
                    continue  # every candidate was passed: a miss
                by_region = np.bincount(candidate_region, post, minlength=n_regions)
                rank = int(np.sum(by_region >= by_region[r])) - 1
                for k in top_k:
                    hits[k][f_i] += rank < k
            bar.update(1)
    return {k: v / max(len(paths), 1) for k, v in hits.items()}


# --------------------------------------------------------------------------- plots
def plot_costs(path: Path, names: Sequence[str], learned: dict, learned_se: dict, true: dict | None,
               present: np.ndarray) -> None:
    """Fig. 3: learned costs in seconds per km / per turn, with 1.96 SE bars, next to the true costs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from maxent_irl.roads import FEATURE_TABLE

    group = {f.name: f.group for f in FEATURE_TABLE}
    panels = [
        ("road class (s/km at 30-50 km/h, 1 lane)", ("road_class",)),
        ("speed and lane adjustments (s/km)", ("speed", "lanes")),
        ("turns and segment (s each)", ("turn", "constant")),
    ]
    shown = [n for j, n in enumerate(names) if present[j]]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5), gridspec_kw={"width_ratios": [1.2, 0.9, 1.3]})
    for ax, (title, groups) in zip(axes, panels, strict=True):
        feats = [n for n in shown if group.get(n, "constant") in groups]
        x = np.arange(len(feats))
        width = 0.4 if true is not None else 0.7
        err = [1.96 * learned_se[n] if np.isfinite(learned_se[n]) else 0.0 for n in feats]
        ax.bar(x - (width / 2 if true is not None else 0), [learned[n] for n in feats], width, yerr=err,
               capsize=3, label="learned (MaxEnt, ±1.96 SE)", color="tab:blue")
        if true is not None:
            ax.bar(x + width / 2, [true[n] for n in feats], width, label="true (simulation)", color="tab:orange")
        values = [abs(learned[n]) for n in feats] + ([abs(true[n]) for n in feats] if true is not None else [])
        if values:  # huge error bars of barely identified weights are cut at 2x the largest bar
            lim = 2.0 * max(max(values), 1e-9)
            ax.set_ylim(max(ax.get_ylim()[0], -lim), min(ax.get_ylim()[1], lim))
        ax.set_xticks(x, [n.removeprefix("km_").removeprefix("turn_") for n in feats], rotation=45, ha="right")
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_title(title)
        ax.set_ylabel("cost (s)")
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle("Learned costs in seconds (1 km of residential road at 30-50 km/h := 72 s, i.e. 50 km/h)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_destinations(path: Path, fractions: Sequence[float], acc: dict[int, np.ndarray],
                      prior_acc: dict[int, float], n_regions: int) -> None:
    """Fig. 5: top-1 / top-3 destination-region accuracy versus the fraction of the trip observed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for k, color in zip(sorted(acc), ("tab:blue", "tab:green", "tab:red"), strict=False):
        ax.plot(fractions, 100 * acc[k], "o-", color=color, label=f"MaxEnt top-{k}")
        ax.axhline(100 * prior_acc[k], color=color, linestyle=":", label=f"prior only top-{k}")
    ax.set_xlabel("fraction of the trip observed (distance)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Destination prediction among {n_regions} regions")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- the run
def _load_network(cfg: EvalConfig) -> RoadNetwork:
    from maxent_irl.roads import RoadNetwork

    if cfg.network is None:
        return RoadNetwork.default()
    from maxent_irl.roads import RoadsError

    path = Path(cfg.network).expanduser()
    if not path.is_file():
        raise EvaluationError(f"no network file at {cfg.network}")
    try:
        return RoadNetwork.load(path)
    except (RoadsError, OSError) as exc:
        raise EvaluationError(f"cannot read a road network from {cfg.network}: {exc}") from exc


def _get_trips(cfg: EvalConfig, net: RoadNetwork, info: dict[str, Any]) -> tuple[list, np.ndarray | None]:
    """Raw paths and the true ``theta`` (None for stored trips)."""
    if cfg.database is not None:
        paths = read_database_paths(cfg.database, net.fingerprint)
        info.update(source="database", database=str(cfg.database))
        return paths, None
    from maxent_irl.exceptions import PartitionFunctionDivergedError
    from maxent_irl.roads import default_true_theta, simulate_trips

    # drivers with temperature T choose routes with probability ∝ exp(theta . f / T): in the units of the
    # fitted model (alpha = 1) the true weights are theta / T
    extra = {"n_clusters": cfg.destinations} if cfg.od == "clustered" else {}
    temperature = cfg.temperature
    if temperature is None:
        temperature = _calibrated_temperature(cfg, net, extra, info)
    theta = default_true_theta(net.feature_names) / temperature
    try:
        sims = simulate_trips(net, theta, n_trips=cfg.simulate, seed=cfg.seed, noise_m=cfg.noise_m, od=cfg.od,
                              **extra)
    except PartitionFunctionDivergedError as exc:
        raise EvaluationError(f"drivers at temperature {temperature:g} do not converge on {net.name}: the sum "
                              f"over routes is infinite (long detours are not penalized enough); use a lower "
                              f"--temperature ({exc})") from exc
    except ValueError as exc:  # e.g. walks that never arrive, an unreachable destination
        raise EvaluationError(f"cannot simulate trips on {net.name} at temperature {temperature:g}: {exc}") from exc
    info.update(source="simulated", od=cfg.od, temperature=temperature, noise_m=cfg.noise_m,
                map_matched=cfg.map_match)
    if not cfg.map_match:
        return [s.path for s in sims], theta
    from maxent_irl.metrics import route_match_fraction
    from maxent_irl.roads import MapMatcher

    matcher, paths, failed, recall = MapMatcher(net), [], 0, []
    with progress_bar(cfg.progress, total=len(sims), desc="map matching") as bar:
        for s in sims:
            try:
                states = matcher.match(s.trace).states
            except ValueError:
                failed += 1
            else:
                paths.append(states)
                recall.append(route_match_fraction(states, s.path, net.segment_length_m))
            bar.update(1)
    info.update(map_match_failed=failed, map_match_recall=float(np.mean(recall)) if recall else None)
    return paths, theta


def _calibrated_temperature(cfg: EvalConfig, net: RoadNetwork, od_kwargs: dict[str, Any],
                            info: dict[str, Any]) -> float:
    """The drivers' temperature whose routes are as varied as the paper's (see ``calibrate_temperature``)."""
    from maxent_irl.roads import calibrate_temperature

    try:
        cal = calibrate_temperature(net, cfg.target_match90, seed=np.random.default_rng([cfg.seed, 1]), od=cfg.od,
                                    **od_kwargs)
    except ValueError as exc:
        raise EvaluationError(f"cannot calibrate the drivers' temperature on {net.name}: {exc}; give --temperature"
                              ) from exc
    info["temperature_calibration"] = {"target_match90": cal.target_match90, "match90": cal.match90,
                                       "n_trips": cal.n_trips, "capped": cal.capped}
    log.info("drivers' temperature %.3f: the true most likely path matches >= 90%% of the route on %.1f%% of %d "
             "calibration trips (target %.0f%%%s)", cal.temperature, 100 * cal.match90, cal.n_trips,
             100 * cal.target_match90, ", capped below divergence" if cal.capped else "")
    return cal.temperature


def check_config(cfg: EvalConfig) -> None:
    """Refuse flags that cannot work before any trip is simulated or read (:class:`EvaluationError`)."""
    if cfg.database is None and cfg.simulate < 2:
        raise EvaluationError(f"--simulate needs at least 2 trips (a training and a held-out one), got {cfg.simulate}")
    if not 0 < cfg.test_fraction < 1:
        raise EvaluationError(f"test fraction must be in (0, 1), got {cfg.test_fraction}")
    if cfg.temperature is not None and not cfg.temperature > 0:
        raise EvaluationError(f"temperature must be positive, got {cfg.temperature}")
    if not 0 < cfg.target_match90 < 1:
        raise EvaluationError(f"--target-match90 must be in (0, 1), got {cfg.target_match90}")
    if cfg.destinations < 2:
        raise EvaluationError(f"--destinations needs at least 2 regions, got {cfg.destinations}")
    for name in ("destination_trips", "action_trips", "action_warm_trips"):
        if getattr(cfg, name) < 0:
            raise EvaluationError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(cfg, name)}")
    for name in ("max_iter", "action_max_iter", "mmp_iter", "mmp_batch"):
        if getattr(cfg, name) < 1:
            raise EvaluationError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(cfg, name)}")
    if not (cfg.noise_m >= 0 and math.isfinite(cfg.noise_m)):
        raise EvaluationError(f"--noise-m must be >= 0, got {cfg.noise_m}")
    if not (cfg.rel_se_max > 0 and cfg.tolerance > 0):
        raise EvaluationError("--rel-se-max and --tolerance must be positive")
    if cfg.out is not None and Path(cfg.out).exists() and not Path(cfg.out).is_dir():
        raise EvaluationError(f"--out {cfg.out} exists and is not a folder")


def run_evaluation(cfg: EvalConfig) -> dict[str, Any]:
    """Run the whole evaluation and write the report folder; returns what ``metrics.json`` holds."""
    from maxent_irl import RouteModel
    from maxent_irl.baselines import ShortestPathBaseline

    check_config(cfg)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    out = Path(cfg.out) if cfg.out else Path("reports") / datetime.now().strftime("evaluate-%Y%m%d-%H%M%S")
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(cfg.seed).spawn(4)]

    with timed(timings, "network"):
        net = _load_network(cfg)
    mdp, L, names = net.mdp, net.segment_length_m, net.feature_names
    data: dict[str, Any] = {"network": net.name, "fingerprint": net.fingerprint, "n_states": net.n_states,
                            "n_transitions": int(mdp.n_transitions)}
    with timed(timings, "trips"):
        raw, true_theta = _get_trips(cfg, net, data)
        paths, dropped = usable_paths(mdp, raw)
    train_idx, test_idx = split_train_test(len(paths), cfg.test_fraction, seeds[0])
    out.mkdir(parents=True, exist_ok=True)  # only once there is something to evaluate
    train, test = [paths[i] for i in train_idx], [paths[i] for i in test_idx]
    data.update(n_trips=len(paths), n_dropped=dropped, n_train=len(train), n_test=len(test),
                test_fraction=cfg.test_fraction, mean_segments=float(np.mean([p.size for p in paths])),
                mean_km=float(np.mean([L[p].sum() for p in paths]) / 1000))
    log.info("%d usable trips (%s dropped): %d train, %d test", len(paths), dropped or "none", len(train), len(test))

    # -- fitting
    with timed(timings, "fit_maxent"):
        maxent = fit_maxent(mdp, train, cfg.max_iter, cfg.progress)
    log.info("MaxEnt: %d iterations, %s", maxent.n_iter_, maxent.message_)
    with timed(timings, "hessian"):
        info = information_matrix(mdp, train, maxent.theta_, ordering=maxent.model_.ordering, progress=cfg.progress)
        cov = covariance(info)
    time_based = ShortestPathBaseline(travel_time_costs(net)).fit(mdp, train)
    with timed(timings, "fit_action"):
        action, n_action = fit_action_model(mdp, train, cfg.action_trips, cfg.action_max_iter, cfg.action_warm_trips,
                                            seeds[1],
                                            cfg.progress)
    log.info("action-based model: %d iterations on %d trips", action.n_iter_, n_action)
    mmp = None
    if cfg.mmp:
        with timed(timings, "fit_mmp"):
            mmp = MaxMarginPlanning(n_iter=cfg.mmp_iter, batch=cfg.mmp_batch, seed=seeds[2],
                                    progress=cfg.progress).fit(mdp, train, L)
        log.info("max margin planning: lambda %g", mmp.lam_)
    oracle = RouteModel(mdp, true_theta) if true_theta is not None else None

    # -- Table 1
    predictors: list[tuple[str, Callable[[int, int], np.ndarray], Callable | None]] = [
        (TIME, time_based.most_likely_path, None)]
    if mmp is not None:
        predictors.append((MMP, mmp.most_likely_path, None))
    predictors += [(ACTION, action.most_likely_path, action.path_log_prob),
                   (ACTION_COSTS, action.lowest_cost_path, None),
                   (MAXENT, maxent.most_likely_path, maxent.path_log_prob)]
    if oracle is not None:
        predictors.append((ORACLE, oracle.most_likely_path, oracle.path_log_prob))
    per_trip: dict[str, dict[str, np.ndarray]] = {}
    with timed(timings, "table1"):
        for name, predict, log_prob in predictors:
            match = evaluate_routes(predict, test, L, f"Table 1: {name}", cfg.progress)
            per_trip[name] = {"match": match, "match90": (match >= 0.9 - 1e-12).astype(float)}
            if log_prob is not None:
                per_trip[name]["log_prob"] = np.asarray(log_prob(test), dtype=float)
    table1 = {n: table1_summary(v["match"], v.get("log_prob")) for n, v in per_trip.items()}
    baselines = [n for n, _, _ in predictors if n not in (MAXENT, ORACLE)]
    comparisons = {
        b: {m: paired_difference(per_trip[MAXENT][m], per_trip[b][m]) for m in ("match", "match90", "log_prob")
            if m in per_trip[b]} for b in baselines
    }
    beats = {
        metric: all(table1[MAXENT][metric] > table1[b][metric] for b in baselines if table1[b][metric] is not None)
        for metric in ("matching", "match90", "log_prob")
    }
    ceiling = _ceiling(per_trip, baselines) if ORACLE in per_trip else None

    # -- theta recovery (Fig. 3)
    present = np.any(mdp.features != 0, axis=0)
    F_train = np.array([(mdp.features[mdp.transition_indices(p)] != 0).any(axis=0) for p in train])
    recovery = theta_recovery(names, maxent.theta_, cov, true_theta, F_train.sum(axis=0), present,
                              cfg.rel_se_max, cfg.tolerance)
    seconds: dict[str, Any] = {}
    try:
        learned_s, learned_se = seconds_with_se(maxent.theta_, cov, names)
        true_s = None
        if true_theta is not None:
            from maxent_irl.roads import weights_as_seconds

            true_s = weights_as_seconds(true_theta, names)
        seconds = {"learned": learned_s, "learned_se": learned_se, "true": true_s}
        plot_costs(out / "costs.png", names, learned_s, learned_se, true_s, present)
    except ValueError as exc:  # the anchor road has no cost: weights cannot be put in seconds
        log.warning("no cost chart: %s", exc)

    # -- Fig. 5
    with timed(timings, "destinations"):
        dest = _destination_prediction(cfg, net, maxent, train, test, seeds[3])
    plot_destinations(out / "destinations.png", FRACTIONS, {k: np.array(v) for k, v in dest["accuracy"].items()},
                      dest["prior_accuracy"], dest["n_regions"])

    timings["total"] = round(time.perf_counter() - t_start, 3)
    checks = {
        "maxent_beats_every_baseline": beats,
        "theta_within_tolerance_on_exercised": recovery.get("all_exercised_within_tolerance"),
        "destination_accuracy_rises": dest["rises"],
        "baselines_at_true_theta_ceiling": None if ceiling is None else ceiling["at_ceiling"],
    }
    metrics = {
        "config": asdict(cfg),
        "data": data,
        "table1": table1,
        "paired_differences_maxent_minus": comparisons,
        "paired_differences_true_theta_minus": None if ceiling is None else ceiling["differences"],
        "checks": checks,
        "theta": recovery,
        "seconds": seconds,
        "destinations": dest,
        "models": {
            MAXENT: {"theta": maxent.theta_.tolist(), "n_iter": maxent.n_iter_, "converged": maxent.converged_,
                     "message": maxent.message_, "train_log_likelihood": maxent.log_likelihood_},
            ACTION: {"theta": np.asarray(action.theta_).tolist(), "n_iter": action.n_iter_, "n_train_trips": n_action,
                     "converged": action.converged_, "n_at_min_cost": action.n_at_min_cost_,
                     "max_iter": cfg.action_max_iter, "message": action.message_,
                     "warm_trips": action.warm_start_trips_},
            **({MMP: {"w": mmp.w_.tolist(), "lambda": mmp.lam_, "validation_matching": mmp.validation_,
                      "n_iter": cfg.mmp_iter, "batch": cfg.mmp_batch}} if mmp is not None else {}),
        },
        "feature_names": names,
        "timings_s": timings,
    }
    (out / "metrics.json").write_text(json.dumps(_jsonable(metrics), indent=2, allow_nan=False) + "\n")
    (out / "report.md").write_text(render_report(metrics, out))
    metrics["out"] = str(out)
    return metrics


def _destination_prediction(cfg: EvalConfig, net: RoadNetwork, maxent: MaxEntIRL, train: list[np.ndarray],
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
    acc = region_accuracy(maxent.destination_posterior, sample, true_region, candidates, cand_region, prior,
                          len(centres), L, progress=cfg.progress)
    region_prior = np.bincount(cand_region, prior, minlength=len(centres))
    order = np.argsort(-region_prior, kind="stable")
    prior_acc = {k: float(np.isin(true_region, order[:k]).mean()) for k in TOP_K}
    top1 = acc[1]
    return {
        "n_regions": len(centres), "n_trips": len(sample), "n_candidates": int(candidates.size),
        "fractions": list(FRACTIONS), "accuracy": {k: v.tolist() for k, v in acc.items()},
        "prior_accuracy": prior_acc, "region_prior": region_prior.tolist(),
        "region_centres_lonlat": net.projection.inverse(centres).tolist(),
        "rises": bool(top1[-1] > top1[0] and acc[3][-1] >= acc[3][0]),
    }


def _jsonable(obj: Any) -> Any:
    """JSON without NaN/inf (as null) and with numpy scalars and int keys converted."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# --------------------------------------------------------------------------- report
def _pct(x: float | None) -> str:
    return "N/A" if x is None else f"{100 * x:.2f}%"


def _rel(x: float | None) -> str:
    return "N/A" if x is None or not math.isfinite(x) else f"{100 * x:.2f}%"


def _num(x: float | None, fmt: str = ".3f") -> str:
    return "N/A" if x is None or not math.isfinite(x) else format(x, fmt)


def render_report(m: dict[str, Any], out: Path) -> str:
    """``report.md``: Table 1, the paired differences, the weights, Fig. 3 and Fig. 5."""
    d, cfg, t1 = m["data"], m["config"], m["table1"]
    lines = ["# routeirl evaluation (Ziebart et al. 2008, Table 1 / Fig. 3 / Fig. 5)", ""]
    if d["source"] == "simulated":
        how = "true simulated paths"
        if d.get("map_matched"):
            how = (f"paths map-matched from simulated GPS (noise {d['noise_m']:g} m; the matched paths cover "
                   f"{_pct(d.get('map_match_recall'))} of the true routes' distance; {d['map_match_failed']} failed)")
        temp = f" divided by the drivers' temperature {d['temperature']:.4f}" if d["temperature"] != 1 else ""
        cal = d.get("temperature_calibration")
        if cal:
            temp += (f" (calibrated: at this temperature the true model's most likely path matches ≥ 90 % of the "
                     f"route on {100 * cal['match90']:.1f} % of {cal['n_trips']} calibration trips, for a target of "
                     f"{100 * cal['target_match90']:g} %; the paper's models did so on 43-53 % of real trips"
                     f"{'; capped below the temperature where Z diverges' if cal['capped'] else ''})")
        lines.append(f"Data: {d['n_trips']} trips simulated on **{d['network']}** ({d['n_states']} segments, "
                     f"fingerprint `{d['fingerprint']}`) with the default true θ (not travel time){temp}, "
                     f"origin-destination demand `{d['od']}`, seed {cfg['seed']}; {how}.")
    else:
        lines.append(f"Data: {d['n_trips']} stored trips from `{d['database']}` on **{d['network']}** "
                     f"(fingerprint `{d['fingerprint']}`); true θ unknown.")
    lines += [
        f"Split: {d['n_train']} training / {d['n_test']} held-out trips (test fraction {d['test_fraction']:g}; "
        f"the paper trained on 20 % and tested on 80 %). Mean trip: {d['mean_segments']:.1f} segments, "
        f"{d['mean_km']:.2f} km. Dropped: {d['n_dropped'] or 'none'}.", "",
        "## Table 1: held-out route prediction", "",
        "| Model | Matching | 90% Match | Log Prob |", "|---|---:|---:|---:|",
    ]
    for name, row in t1.items():
        label = f"**{name}**" if name == MAXENT else name
        lines.append(f"| {label} | {_pct(row['matching'])} | {_pct(row['match90'])} | {_num(row['log_prob'])} |")
    lines += [
        "",
        "Matching: mean share of a held-out route's distance that the model's most likely path also drives "
        "(given origin and destination). 90% Match: share of held-out trips matched to at least 90 %. "
        "Log Prob: mean natural-log probability of the held-out route given its origin and destination "
        "(N/A for models that are not distributions over routes). "
        f"{ORACLE} is the simulator's own model: the ceiling, not a competitor.", "",
        "MaxEnt minus each baseline, paired over the same held-out trips (mean, 95 % interval):", "",
        "| Baseline | Matching | 90% Match | Log Prob |", "|---|---:|---:|---:|",
    ]
    for b, comp in m["paired_differences_maxent_minus"].items():
        lines.append(f"| {b} | " + " | ".join(_diff_cell(comp.get(k), k != "log_prob")
                                            for k in ("match", "match90", "log_prob")) + " |")
    beats = m["checks"]["maxent_beats_every_baseline"]
    lines += ["", "MaxEnt beats every baseline on: " + ", ".join(
        f"{k} {'yes' if v else '**no**'}" for k, v in beats.items()) + ".", ""]
    lines += _ceiling_section(m)
    lines += _theta_section(m)
    lines += _destination_section(m)
    models = m["models"]
    n_act = models[ACTION]["n_train_trips"]
    action_trips = f"all {n_act}" if n_act == d["n_train"] else f"a seeded subsample of {n_act}"
    converged = " to convergence" if models[ACTION].get("converged") else ""
    at_min = models[ACTION].get("n_at_min_cost") or 0
    binding = (f"; positive costs bind: {at_min} transitions at the least cost allowed" if at_min else "")
    lines += ["## Models and run", "",
              f"- MaxEnt: unregularized maximum likelihood, {models[MAXENT]['n_iter']} L-BFGS iterations "
              f"({models[MAXENT]['message']}).",
              "- Time-based: shortest path with travel time (entered segment length / its speed) as the cost.",
              f"- Action: locally normalized model P(a|s) ∝ exp(Q*(s,a)), fitted on {action_trips} "
              f"training trips{converged} ({models[ACTION]['n_iter']} SLSQP iterations in all, "
              f"{models[ACTION]['message']}{binding}), from its default start, independent of MaxEnt"
              + (f" (first fitted on a subsample of {models[ACTION]['warm_trips']} of them)"
                 if models[ACTION]["warm_trips"] else "") + "; "
              "Action (costs): the shortest path under its learned costs."]
    if MMP in models:
        mm = models[MMP]
        val = ", ".join(f"λ={k}: {_pct(v)}" for k, v in mm["validation_matching"].items())
        lines.append(f"- Max margin planning: projected stochastic subgradient, {mm['n_iter']} steps of "
                     f"{mm['batch']} trips, loss = missed demonstrated distance (km); λ = {mm['lambda']:g} chosen "
                     f"on a 20 % validation split of the training trips (validation matching {val}).")
    else:
        lines.append("- Max margin planning: not run (--no-mmp).")
    lines += ["", "Run times (s): " + ", ".join(f"{k} {v:.1f}" for k, v in m["timings_s"].items()), ""]
    return "\n".join(lines)


def _diff_cell(c: dict[str, float] | None, pct: bool) -> str:
    """A paired difference with its 95 % interval, in percentage points or in nats."""
    if c is None:
        return "N/A"
    if pct:
        return f"{100 * c['diff']:+.2f} pp [{100 * c['ci95_low']:+.2f}, {100 * c['ci95_high']:+.2f}]"
    return f"{c['diff']:+.3f} [{c['ci95_low']:+.3f}, {c['ci95_high']:+.3f}]"


def _ceiling_section(m: dict[str, Any]) -> list[str]:
    """How far each baseline is below the true θ's own most likely path (simulated data only)."""
    diffs = m.get("paired_differences_true_theta_minus")
    if not diffs:
        return []
    lines = [f"{ORACLE} minus each baseline (the ceiling; paired, mean, 95 % interval):", "",
             "| Baseline | Matching | 90% Match |", "|---|---:|---:|"]
    lines += [f"| {b} | {_diff_cell(c['match'], True)} | {_diff_cell(c['match90'], True)} |" for b, c in diffs.items()]
    at = m["checks"]["baselines_at_true_theta_ceiling"]
    tied = {metric: names for metric, names in at.items() if names}
    if tied:
        lines += ["", "The true θ's own most likely path does not beat: " + "; ".join(
            f"{metric}: {', '.join(names)}" for metric, names in tied.items()) + ". MaxEnt's most likely path "
            "converges to the true θ's, so it cannot be expected to beat these baselines on these metrics and "
            "data: the most likely path is not the route that maximizes the expected matched distance (see "
            "docs/evaluation.md)."]
    return [*lines, ""]


def _theta_section(m: dict[str, Any]) -> list[str]:
    rec, sec = m["theta"], m["seconds"]
    has_true = any("true" in r for r in rec["features"])
    lines = ["## Learned weights (Fig. 3)", ""]
    if sec:
        lines += ["![learned costs in seconds](costs.png)", ""]
    lines += [
        f"A feature is **exercised** when the training trips pin its weight down: relative standard error "
        f"≤ {100 * rec['rel_se_max']:g} % (standard errors from the inverse Hessian of the log-likelihood, by "
        "central differences of the exact gradient), so that a "
        f"{100 * rec['tolerance']:g} % error would be a > {rec['tolerance'] / rec['rel_se_max']:.1f} σ deviation. "
        "This is decided from the training data alone, not from the truth.", "",
    ]
    if has_true:
        ex = rec["exercised"]
        if ex:
            verdict = "all within" if rec["all_exercised_within_tolerance"] else "**not all within**"
            claim = (f"Exercised: {len(ex)} feature(s) ({', '.join(ex)}): {verdict} "
                     f"{100 * rec['tolerance']:g} % of the truth.")
        else:
            claim = (f"No feature is exercised at this sample size (every relative SE > "
                     f"{100 * rec['rel_se_max']:g} %): these trips cannot confirm a "
                     f"{100 * rec['tolerance']:g} % recovery; use more trips.")
        lines += [
            f"{claim} Over all {rec['n_identified']} identified features, "
            f"{rec['n_abs_z_gt_2']} have |z| > 2 and {rec['n_abs_z_gt_3']} have |z| > 3 "
            "(z = (fitted - true) / SE; an unbiased estimator gives ≈ 5 % and ≈ 0.3 %).", "",
            "| Feature | True | Fitted | SE | Rel. SE | Rel. error | z | Train trips | Exercised | s (true) "
            "| s (learned ± SE) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|:---:|---:|---:|",
        ]
    else:
        lines += ["| Feature | Fitted | SE | Rel. SE | Train trips | Exercised | s (learned ± SE) |",
                  "|---|---:|---:|---:|---:|:---:|---:|"]
    for r in rec["features"]:
        name = r["feature"]
        if not r["present_in_network"]:
            name += " (absent)"
        s_l = sec.get("learned", {}).get(r["feature"]) if sec else None
        s_se = sec.get("learned_se", {}).get(r["feature"]) if sec else None
        s_cell = "N/A" if s_l is None or not r["present_in_network"] else f"{s_l:.1f} ± {_num(s_se, '.1f')}"
        ex = "yes" if r["exercised"] else ""
        if has_true:
            s_t = (sec.get("true") or {}).get(r["feature"]) if sec else None
            z = r.get("z")
            lines.append(
                f"| {name} | {r['true']:.3f} | {r['fitted']:.3f} | {_num(r['se'])} | {_rel(r['rel_se'])} | "
                f"{_pct(r['rel_error'])} | {_num(z, '+.2f') if z is not None else 'N/A'} | "
                f"{r['train_trips_using']} | {ex} | {_num(s_t, '.1f')} | {s_cell} |")
        else:
            lines.append(f"| {name} | {r['fitted']:.3f} | {_num(r['se'])} | {_rel(r['rel_se'])} | "
                         f"{r['train_trips_using']} | {ex} | {s_cell} |")
    lines += ["", "Weights are rewards (negative = cost) per km or per turn; seconds: every weight divided by the "
              "weight of 1 km of residential road at 30-50 km/h on one lane, which is set to 72 s (50 km/h), like "
              "the paper's Fig. 3 fixes interstate driving at 65 mph. (absent): the feature is on no transition of "
              "this network.", ""]
    return lines


def _destination_section(m: dict[str, Any]) -> list[str]:
    dest = m["destinations"]
    fr = dest["fractions"]
    lines = [
        "## Destination prediction (Fig. 5)", "", "![destination accuracy](destinations.png)", "",
        f"{dest['n_trips']} held-out trips; {dest['n_regions']} destination regions (k-means of the training "
        f"trips' destinations; {dest['n_candidates']} candidate destination segments, prior = their training "
        "frequency). The posterior of a region sums the MaxEnt posterior P(d | partial path) ∝ P(d) Z(B,d)/Z(A,d) "
        "over its candidates.", "",
        "| Fraction observed | " + " | ".join(f"{f:.1f}" for f in fr) + " | prior only |",
        "|---|" + "---:|" * (len(fr) + 1),
    ]
    for k, acc in dest["accuracy"].items():
        lines.append(f"| top-{k} | " + " | ".join(f"{100 * a:.1f}%" for a in acc)
                     + f" | {100 * dest['prior_accuracy'][k]:.1f}% |")
    lines += ["", f"Accuracy rises with the fraction observed: {'yes' if dest['rises'] else '**no**'}.", ""]
    return lines


# --------------------------------------------------------------------------- CLI
def _temperature_arg(text: str) -> float | None:
    """``auto`` (None: calibrated) or a positive number."""
    if text.strip().lower() == "auto":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None


def _configure(p: argparse.ArgumentParser) -> None:
    d = EvalConfig()
    src = p.add_mutually_exclusive_group()
    src.add_argument("--simulate", type=int, default=d.simulate, metavar="N",
                     help=f"simulate N trips with the default true theta (default {d.simulate})")
    src.add_argument("--database", metavar="PATH", help="evaluate the trips stored in the service's SQLite (read-only)")
    p.add_argument("--network", metavar="PATH", help="OSM file or .npz (default: the bundled Andorra network)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the simulation, split and subsamples")
    p.add_argument("--noise-m", type=float, default=d.noise_m, help="GPS noise of simulated traces (m)")
    p.add_argument("--map-match", action="store_true",
                   help="learn from map-matched simulated GPS instead of the true simulated paths")
    p.add_argument("--od", choices=("random", "clustered"), default=d.od,
                   help="simulated demand: uniform origins/destinations or --destinations hubs (default random)")
    p.add_argument("--temperature", type=_temperature_arg, default=d.temperature, metavar="T|auto",
                   help="simulated drivers pick routes with probability ∝ exp(θ·f / T): higher = more varied "
                        "routes. auto (default): the T at which the true model's most likely path matches >= 90 %% "
                        "of the route on --target-match90 of the trips (see docs/evaluation.md)")
    p.add_argument("--target-match90", type=float, default=d.target_match90, metavar="SHARE",
                   help=f"route variety for --temperature auto, unused otherwise (default {d.target_match90:g}: "
                        "the paper's models matched 43-53 %% of real trips to >= 90 %%)")
    p.add_argument("--out", metavar="DIR", help="report folder (default reports/evaluate-<timestamp>)")
    p.add_argument("--test-fraction", type=float, default=d.test_fraction,
                   help=f"share of trips held out (default {d.test_fraction}; the paper held out 0.8)")
    p.add_argument("--destinations", type=int, default=d.destinations, metavar="K",
                   help=f"destination regions for Fig. 5 (default {d.destinations}, as the paper)")
    p.add_argument("--destination-trips", type=int, default=d.destination_trips, metavar="N",
                   help=f"held-out trips used for Fig. 5, 0 = all (default {d.destination_trips})")
    p.add_argument("--max-iter", type=int, default=d.max_iter, help="MaxEnt L-BFGS iterations")
    p.add_argument("--action-trips", type=int, default=d.action_trips, metavar="N",
                   help=f"training trips for the action-based model, 0 = all (default {d.action_trips})")
    p.add_argument("--action-max-iter", type=int, default=d.action_max_iter,
                   help=f"action-based model iterations per stage (default {d.action_max_iter})")
    p.add_argument("--action-warm-trips", type=int, default=d.action_warm_trips, metavar="N",
                   help="fit the action-based model on N trips first, then refine on all; 0 = no warm start "
                        f"(default {d.action_warm_trips})")
    p.add_argument("--no-mmp", dest="mmp", action="store_false", help="skip max margin planning")
    p.add_argument("--mmp-iter", type=int, default=d.mmp_iter, help="max margin subgradient steps")
    p.add_argument("--mmp-batch", type=int, default=d.mmp_batch, help="trips per max margin step")
    p.add_argument("--rel-se-max", type=float, default=d.rel_se_max,
                   help="a feature is 'exercised' if its relative standard error is at most this (default 0.015)")
    p.add_argument("--tolerance", type=float, default=d.tolerance, help="allowed relative error of exercised weights")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--check", action="store_true", help="exit with status 1 if a must-show check fails")


@command("evaluate", help="evaluation report: Table 1, Fig. 3 and Fig. 5 of Ziebart et al. (2008)",
         configure=_configure)
def evaluate(args: argparse.Namespace) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                            stream=sys.stderr)
    fields = {f for f in EvalConfig.__dataclass_fields__}
    cfg = EvalConfig(**{k: v for k, v in vars(args).items() if k in fields and v is not None})
    if cfg.database is not None:
        cfg.simulate = 0
    try:
        m = run_evaluation(cfg)
    except EvaluationError as exc:
        print(f"routeirl evaluate: error: {exc}", file=sys.stderr)
        return 2
    t1, checks = m["table1"], m["checks"]
    best = {metric: max((r[metric] for n, r in t1.items() if n not in (MAXENT, ORACLE) and r[metric] is not None),
                        default=None) for metric in ("matching", "match90", "log_prob")}
    acc = m["destinations"]["accuracy"][1]
    rec = m["theta"]
    verdict = rec.get("all_exercised_within_tolerance", "unknown")
    theta_msg = {"unknown": "true theta unknown", None: "no weight exercised enough to test recovery",
                 True: f"all {len(rec['exercised'])} exercised weights within {100 * cfg.tolerance:g}% of the truth",
                 False: f"NOT all {len(rec['exercised'])} exercised weights within {100 * cfg.tolerance:g}%"}[verdict]
    print(f"report in {m['out']}: MaxEnt matching {_pct(t1[MAXENT]['matching'])} (best baseline "
          f"{_pct(best['matching'])}), 90% match {_pct(t1[MAXENT]['match90'])} ({_pct(best['match90'])}), "
          f"log prob {_num(t1[MAXENT]['log_prob'])} ({_num(best['log_prob'])}); {theta_msg}; "
          f"destination top-1 {100 * acc[0]:.0f}% -> {100 * acc[-1]:.0f}% ({m['timings_s']['total']:.0f} s)")
    failed = not all(checks["maxent_beats_every_baseline"].values()) or not checks["destination_accuracy_rises"] \
        or (m["data"]["source"] == "simulated" and not checks["theta_within_tolerance_on_exercised"])
    return 1 if args.check and failed else 0


if __name__ == "__main__":  # ``python -m app.evaluate ...`` = ``routeirl evaluate ...`` without installing
    from app.cli import main

    sys.exit(main(["evaluate", *sys.argv[1:]]))
