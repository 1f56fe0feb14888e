"""Destination prediction on real Porto taxi trips: posterior vs "last point", "prior only", "nearest trip".

Pipeline (every choice is printed with its counts):

1. Network: ``porto_center_drive.graphml.gz`` through ``RoadNetwork.load``.
2. Trips: ``train.1k.csv`` (999 trips, one fix every 15 s). Each is map-matched whole with the
   default ``MapMatcher`` (times = TIMESTAMP + 15 s per fix). Kept: trips with >= 3 fixes whose
   first *and* last fix match a routable segment (both ends inside the network area) and whose
   matched path has >= 2 segments with different first and last ones. Dropped ones are counted
   by reason.
3. Split by time: trips sorted by TIMESTAMP, the last ``--test-fraction`` (30 %) are the test
   set. All 999 trips are from 9 hours of one Monday, so this is the only honest split: the
   model is judged on trips after everything it learned from, as in service; a random split
   would let a trip's twin from the same minute and stand teach the answer.
4. Route model: ``MaxEntIRL(l2=--l2)`` on the training trips' matched paths, each cut at its
   first visit of its destination segment (counted; 11 of 383 here), as in the runs before the
   core modelled trips that pass their destination (the service trains on whole paths). The
   small L2 keeps weights of road classes no trip uses finite.
5. Priors, all fitted on the training trips only; their hyper-parameters by 5-fold
   cross-validation within the training set, folds = 5 blocks of consecutive start times
   (held-out mean log-likelihood of the destination segment): a Gaussian kernel on metres
   over the training destinations (bandwidth, floor), the same conditioned on the origin
   (kernel-weighted trips: origin bandwidth, mixing weight), on the time of day, and a
   distance-decay ("gravity") prior: the kernel prior reshaped by a fitted profile of the
   straight-line trip length. The kernel prior itself is multi-scale: the weights of kernels of
   7 bandwidths (25 m .. 1.6 km) and of a uniform floor are fitted by EM on out-of-fold scores.
6. Queries: for each test trip and each fraction f in 20/40/60/80 %, the first
   ``max(2, round(f n))`` fixes (by points, as the ECML/PKDD 2015 challenge; at most n - 1)
   are map-matched *on their own* (as the service would: no future fixes), A = the first
   matched segment, B = the last. The posterior over every segment d is
   ``P(d | A->B) ∝ P(d) (M[B, d] / M[A, d])^gamma`` with ``M = (I - W)^-1`` (two transposed
   solves with one factorization; gamma = 1 is the model, other values are tried). Choices on the
   training trips' partial paths (priors built without the trip's fold; theta in-sample): gamma
   per prior and the prior by the mean error of the expected-distance point, the clustering radius
   by top-5 hits within 500 m. Then a "stop model": a profile over the distance from the last fix
   (bins), pooled or per class of speed / elapsed time / GPS length driven so far (speed and
   time need GPS times; the service's queries have none, so the core fits pooled or by driven
   length), multiplying the posterior (the route model says
   where a trip can go efficiently, not when it stops), fitted by maximum likelihood on the
   training queries; its variant is chosen by out-of-fold error of the expected-distance point.
7. Answers (maxent_irl.destination_summaries): the expected-distance point (weighted
   geometric median of segment midpoints), the top-k clusters (non-maximum suppression with a
   radius), scored against the trip's last GPS fix (the challenge's truth).

Baselines: "last point" (the last observed fix); "prior only" (the prior's own answers:
geometric median and clusters); "nearest trip" (the training trip whose fixes are closest to the
observed ones, mean over observed fixes of the distance to that trip's nearest fix; top-k:
the ends of the closest trips, clustered the same way).

    .venv/bin/python benchmarks/bench_porto_destinations.py                  # 10-25 min on 2 shared cores
    .venv/bin/python benchmarks/bench_porto_destinations.py --json out.json --cache /tmp/porto_cache
    .venv/bin/python benchmarks/bench_porto_destinations.py --split random --seed 0   # a random split instead
    .venv/bin/python benchmarks/bench_porto_destinations.py --large 276   # CPU time per query, ~300k segments
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import math
import os
import pickle
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small products only: threads would just spin (set before numpy)

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maxent_irl import MaxEntIRL, RouteModel
from maxent_irl.destination_priors import (
    DistanceDecayPrior,
    conditional_prior,
    cross_validate_bandwidth,
    cross_validate_multiscale,
    destination_kernel,
    kernel_weights,
    smoothed_prior,
    with_floor,
)
from maxent_irl.destination_summaries import DestinationSummarizer, geometric_median, heat_map
from maxent_irl.roads import InvalidTraceError, MapMatcher, MapMatchingError, RoadNetwork, Trace

_REPO = Path(__file__).resolve().parents[1]
#: ``../shared/data/porto`` beside the repository (a worktree under ``wt/`` looks one level higher too).
DATA = next((p for p in (_REPO.parent / "shared/data/porto", _REPO.parents[1] / "shared/data/porto") if p.exists()),
            _REPO.parent / "shared/data/porto")
FRACTIONS = (0.2, 0.4, 0.6, 0.8)
TOP_K = (1, 3, 5)
HIT_M = 500.0
INTERVAL_S = 15.0

logger = logging.getLogger("bench_porto_destinations")


# ----------------------------------------------------------------------------------- data
@dataclass
class Trip:
    trip_id: str
    start: int  # TIMESTAMP, UNIX s
    call_type: str
    lonlat: np.ndarray  # (n, 2)
    xy: np.ndarray  # (n, 2) metres
    path: np.ndarray  # matched states


def read_trips(path: Path) -> list[dict[str, Any]]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for r in rows:
        pts = np.array(json.loads(r["POLYLINE"]), dtype=float).reshape(-1, 2)
        out.append({"id": r["TRIP_ID"], "start": int(r["TIMESTAMP"]), "call": r["CALL_TYPE"], "lonlat": pts})
    return out


def match_trips(net: RoadNetwork, rows: list[dict[str, Any]]) -> tuple[list[Trip], Counter]:
    matcher = MapMatcher(net)
    kept, dropped = [], Counter()
    for r in rows:
        pts = r["lonlat"]
        if len(pts) < 3:
            dropped["fewer than 3 fixes"] += 1
            continue
        try:
            res = matcher.match(Trace(pts, r["start"] + INTERVAL_S * np.arange(len(pts)), r["id"]))
        except (InvalidTraceError, MapMatchingError) as exc:
            dropped[f"match failed: {exc.reason}"] += 1
            continue
        if res.point_states[-1] < 0:
            dropped["last fix off the network (ends outside the area)"] += 1
            continue
        if res.point_states[0] < 0:
            dropped["first fix off the network (starts outside the area)"] += 1
            continue
        if res.states.size < 2 or res.states[0] == res.states[-1]:
            dropped["matched path of one segment"] += 1
            continue
        kept.append(Trip(r["id"], r["start"], r["call"], pts, net.projection.forward(pts), res.states))
    return kept, dropped


def trim_at_destination(path: np.ndarray) -> np.ndarray:
    """Cut a path at its first visit of its last segment (today's core needs absorbing destinations)."""
    first = int(np.flatnonzero(path == path[-1])[0])
    return path[: first + 1]


def n_observed(n: int, fraction: float) -> int:
    return int(min(n - 1, max(2, round(fraction * n))))


def hour_of_day(ts: np.ndarray | int) -> np.ndarray:
    """Local (Lisbon, UTC+1 in July) hour of day."""
    return ((np.asarray(ts, dtype=float) / 3600.0) + 1.0) % 24.0


# ----------------------------------------------------------------------------------- model
class Posterior:
    """``P(d | A->B) ∝ prior(d) (M[B, d] / M[A, d])^gamma`` over every segment, from one factorization."""

    def __init__(self, model: RouteModel) -> None:
        self.model = model
        self.system = model.system
        self.n = model.mdp.n_states
        self.underflows = 0

    def log_ratio(self, a: int, b: int) -> np.ndarray:
        E = np.zeros((self.n, 2))
        E[a, 0] = E[b, 1] = 1.0
        rows = self.system.lu.solve(E, trans=True)  # rows M[a, :], M[b, :]
        tiny = (rows[:, 0] <= 1e-280) | (rows[:, 1] <= 1e-280)
        if tiny.any():  # not met on Porto (smallest entry ~1e-16); flagged rather than handled
            self.underflows += int(tiny.sum())
        with np.errstate(divide="ignore"):
            return np.log(rows[:, 1]) - np.log(rows[:, 0])

    @staticmethod
    def combine(log_prior: np.ndarray, log_ratio: np.ndarray, gamma: float) -> np.ndarray:
        s = log_prior + gamma * log_ratio
        s = np.where(np.isfinite(s), s, -np.inf)
        p = np.exp(s - s.max())
        return p / p.sum()


# ----------------------------------------------------------------------------------- priors
PRIOR_KINDS = ("flat", "counts", "kernel", "multiscale", "origin", "time", "gravity", "gravity+origin")


@dataclass
class Priors:
    """Every prior variant, from one set of stored trips (the training set, or part of it for out-of-fold scores)."""

    xy: np.ndarray  # (n, 2) segment midpoints, metres
    length: np.ndarray  # (n,) support weights (segment lengths)
    dest_idx: np.ndarray  # (N,) destination segments
    single: Any  # (n, N) kernel of the single cross-validated bandwidth
    single_floor: float
    multi: Any  # (n, N) multi-scale kernel
    multi_floor: float
    origins: np.ndarray  # (N, 2)
    hours: np.ndarray  # (N,)
    hp: dict[str, float]  # conditional hyper-parameters
    gravity: DistanceDecayPrior | None = None

    def subset(self, keep: np.ndarray) -> Priors:
        cols = np.flatnonzero(keep)
        return Priors(self.xy, self.length, self.dest_idx[cols], self.single[:, cols], self.single_floor,
                      self.multi[:, cols], self.multi_floor, self.origins[cols], self.hours[cols], self.hp,
                      self.gravity)

    def marginal(self, multiscale: bool = True) -> np.ndarray:
        K, fl = (self.multi, self.multi_floor) if multiscale else (self.single, self.single_floor)
        return smoothed_prior(K, fl, self.length)

    def prior(self, kind: str, origin_xy: np.ndarray, hour: float, marginal: np.ndarray | None = None,
              hp: dict[str, float] | None = None) -> np.ndarray:
        hp = self.hp if hp is None else hp
        if kind == "flat":
            return self.length / self.length.sum()
        if kind == "counts":  # the old prior: training frequency of each destination segment, with the floor
            c = np.bincount(self.dest_idx, minlength=self.length.size).astype(float)
            return with_floor(c, self.single_floor, self.length)
        if kind == "kernel":
            return self.marginal(multiscale=False)
        base = self.marginal() if marginal is None else marginal
        if kind == "multiscale":
            return base
        if kind == "origin":
            return conditional_prior(self.multi, kernel_weights(origin_xy, self.origins, hp["origin_bw"]), base,
                                     hp["origin_mix"])
        if kind == "time":
            return conditional_prior(self.multi, kernel_weights(hour, self.hours, hp["time_bw"], period=24.0), base,
                                     hp["time_mix"])
        if kind in ("gravity", "gravity+origin"):
            assert self.gravity is not None
            g = self.gravity(self.xy, base, origin_xy)
            if kind == "gravity":
                return g
            return conditional_prior(self.multi, kernel_weights(origin_xy, self.origins, hp["origin_bw"]), g,
                                     hp["origin_mix"])
        raise ValueError(kind)


def time_blocks(starts: np.ndarray, k: int) -> np.ndarray:
    """Fold of each trip: ``k`` blocks of consecutive start times (``starts`` need not be sorted)."""
    rank = np.argsort(np.argsort(starts, kind="stable"), kind="stable")
    return rank * k // starts.size


def fit_priors(net: RoadNetwork, train: list[Trip], folds: np.ndarray) -> tuple[Priors, dict[str, Any]]:
    """Fit every prior on ``train``; hyper-parameters by cross-validation over ``folds`` (held-out log-likelihood)."""
    xy = net.projection.forward(net.segment_midpoints)
    length = np.asarray(net.segment_length_m, dtype=float)
    dest_xy = np.array([t.xy[-1] for t in train])
    dest_idx = np.array([t.path[-1] for t in train])
    origins = np.array([t.xy[0] for t in train])
    hours = hour_of_day(np.array([t.start for t in train]))
    bws = (25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0)
    floors = (0.0, 0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 0.7)
    sel = cross_validate_bandwidth(xy, dest_xy, dest_idx, bws, floors, support_weights=length, folds=folds)
    ms = cross_validate_multiscale(xy, dest_xy, dest_idx, bws, folds, support_weights=length)
    report: dict[str, Any] = {
        "single": {"bandwidth_m": sel.bandwidth, "floor": sel.floor, "cv_loglik": float(sel.scores.max()),
                   "table": {f"{h:g} m": dict(zip([f"{f:g}" for f in floors], r.round(3).tolist(), strict=True))
                             for h, r in zip(bws, sel.scores, strict=True)}},
        "multiscale": {"weights": {f"{h:g} m": round(float(w), 3) for h, w in zip(bws, ms.weights, strict=True)},
                       "floor": round(ms.floor, 3), "cv_loglik": ms.heldout_loglik},
        "flat_loglik": float(np.mean(np.log(length[dest_idx] / length.sum()))),
    }
    pri = Priors(xy, length, dest_idx, destination_kernel(xy, dest_xy, sel.bandwidth, length), sel.floor,
                 ms.kernel(xy, dest_xy, length), ms.floor, origins, hours, {})

    # out-of-fold scores of the conditional priors (kernel columns of the other folds; same bandwidths)
    parts = {int(f): (pri.subset(folds != f), np.flatnonzero(folds == f)) for f in np.unique(folds)}
    marg = {f: p.marginal() for f, (p, _) in parts.items()}

    def oof(kind: str, hp: dict[str, float]) -> float:
        tot = 0.0
        for f, (p, te) in parts.items():
            for i in te:
                tot += math.log(p.prior(kind, origins[i], hours[i], marg[f], hp)[dest_idx[i]])
        return tot / len(train)

    grid: dict[str, list] = {"origin": [], "time": []}
    for bw in (250.0, 500.0, 1000.0, 2000.0):
        for mix in (0.1, 0.25, 0.5):
            grid["origin"].append((bw, mix, oof("origin", {"origin_bw": bw, "origin_mix": mix})))
    for bw in (0.5, 1.0, 2.0, 4.0):
        for mix in (0.1, 0.25, 0.5):
            grid["time"].append((bw, mix, oof("time", {"time_bw": bw, "time_mix": mix})))
    ob = max(grid["origin"], key=lambda g: g[2])
    tb = max(grid["time"], key=lambda g: g[2])
    pri.hp = {"origin_bw": ob[0], "origin_mix": ob[1], "time_bw": tb[0], "time_mix": tb[1]}
    for p, _ in parts.values():
        p.hp = pri.hp
    # distance decay: beta fitted on out-of-fold marginals (a trip's own destination would inflate the fit)
    bases = [marg[int(folds[i])] for i in range(len(train))]
    pri.gravity = DistanceDecayPrior().fit(xy, bases, origins, dest_idx)
    for p, _ in parts.values():
        p.gravity = pri.gravity
    report.update(
        multiscale_oof=oof("multiscale", pri.hp),
        origin={"bandwidth_m": ob[0], "mix": ob[1], "cv_loglik": ob[2], "grid": grid["origin"]},
        time={"bandwidth_h": tb[0], "mix": tb[1], "cv_loglik": tb[2], "grid": grid["time"]},
        gravity={"edges_m": pri.gravity.edges.tolist(), "beta": pri.gravity.beta_.round(3).tolist(),
                 "cv_loglik_beta_in_sample": oof("gravity", pri.hp)},
        gravity_origin_cv_loglik=oof("gravity+origin", pri.hp),
    )
    return pri, report


# ----------------------------------------------------------------------------------- baselines
class NearestTrip:
    """Training trips ranked by the mean distance from the observed fixes to each trip's nearest fix."""

    def __init__(self, train: list[Trip]) -> None:
        self.pts = np.concatenate([t.xy for t in train])
        self.starts = np.concatenate([[0], np.cumsum([len(t.xy) for t in train])[:-1]])
        self.ends = np.array([t.xy[-1] for t in train])

    def rank(self, observed_xy: np.ndarray) -> np.ndarray:
        sel = np.linspace(0, len(observed_xy) - 1, min(len(observed_xy), 30)).round().astype(int)
        obs = observed_xy[np.unique(sel)]
        d = np.hypot(obs[:, None, 0] - self.pts[None, :, 0], obs[:, None, 1] - self.pts[None, :, 1])
        per_trip = np.minimum.reduceat(d, self.starts, axis=1).mean(axis=0)
        return np.argsort(per_trip, kind="stable")

    def answers(self, observed_xy: np.ndarray, radius: float, k: int) -> np.ndarray:
        """The ends of the closest trips, skipping any within ``radius`` of one already named: ``(k, 2)``."""
        out: list[np.ndarray] = []
        for j in self.rank(observed_xy):
            e = self.ends[j]
            if all(np.hypot(*(e - o)) >= radius for o in out):
                out.append(e)
                if len(out) == k:
                    break
        return np.array(out)


# ----------------------------------------------------------------------------------- queries
@dataclass
class Query:
    trip: int
    fraction: float
    a: int
    b: int
    last_xy: np.ndarray
    observed_xy: np.ndarray


_QUERY_CACHE: Path | None = None


def make_queries(net: RoadNetwork, trips: list[Trip], fractions: tuple[float, ...]) -> tuple[list[Query], Counter]:
    """Partial trips, each prefix map-matched on its own (no future fixes), as a service would see them."""
    if _QUERY_CACHE is not None:
        key = hashlib.sha1(("|".join(t.trip_id for t in trips) + str(fractions) + net.fingerprint).encode())
        f = _QUERY_CACHE / f"queries_{key.hexdigest()[:12]}.pkl"
        if f.exists():
            return pickle.loads(f.read_bytes())
        out = _make_queries(net, trips, fractions)
        f.write_bytes(pickle.dumps(out))
        return out
    return _make_queries(net, trips, fractions)


def _make_queries(net: RoadNetwork, trips: list[Trip], fractions: tuple[float, ...]) -> tuple[list[Query], Counter]:
    matcher = MapMatcher(net)
    out, failed = [], Counter()
    for i, t in enumerate(trips):
        for f in fractions:
            k = n_observed(len(t.lonlat), f)
            try:
                res = matcher.match(Trace(t.lonlat[:k], t.start + INTERVAL_S * np.arange(k), t.trip_id))
            except (InvalidTraceError, MapMatchingError) as exc:
                failed[exc.reason] += 1
                continue
            out.append(Query(i, f, int(res.states[0]), int(res.states[-1]), t.xy[k - 1], t.xy[:k]))
    return out, failed


def paired(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Mean of a - b with a paired t 95 % interval."""
    d = np.asarray(a, float) - np.asarray(b, float)
    half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size)
    return {"diff": float(d.mean()), "lo": float(d.mean() - half), "hi": float(d.mean() + half)}


def score(point: np.ndarray, centres: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    dc = np.hypot(*(np.atleast_2d(centres) - truth).T)
    out = {"gm_km": float(np.hypot(*(point - truth))) / 1000.0, "top1_km": float(dc[0]) / 1000.0}
    for k in TOP_K:
        out[f"top{k}"] = float(np.any(dc[:k] <= HIT_M))
    return out


def summarize(summ: DestinationSummarizer, p: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    gm = geometric_median(summ.xy, p, mass=0.999)
    cl = summ.top_destinations(p, radius, k=max(TOP_K))
    return gm.point, np.array([c.xy for c in cl])


GAMMAS = (0.25, 0.5, 1.0, 1.5, 2.0)
RADII = (250.0, 500.0, 750.0, 1000.0)
POSTERIOR_KINDS = ("flat", "counts", "kernel", "multiscale", "origin", "time", "gravity", "gravity+origin")


STOP_EDGES = (0.0, 100.0, 200.0, 350.0, 500.0, 750.0, 1000.0, 1500.0, 2000.0, 3000.0, 4000.0)


def query_speed(q: Query) -> float:
    """Mean speed (m/s) over the last two observed 15 s steps (one if only two fixes are observed)."""
    tail = q.observed_xy[-3:]
    return float(np.hypot(*np.diff(tail, axis=0).T).sum() / (INTERVAL_S * (len(tail) - 1)))


def query_traveled(q: Query) -> float:
    """Length of the observed GPS polyline (m): what a query without times still tells about the trip so far."""
    return float(np.hypot(*np.diff(q.observed_xy, axis=0).T).sum())


#: What a stop-model group can be conditioned on: speed and elapsed time need GPS times, traveled does not.
STOP_FEATURES = {"speed": query_speed, "elapsed": lambda q: float(len(q.observed_xy)), "traveled": query_traveled}


def stop_groups(queries: list[Query], spec: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """Group of each query: the product of its classes of the features in ``spec`` (edges from the training queries)."""
    g = np.zeros(len(queries), dtype=np.int64)
    for name, edges in spec:
        g = g * (edges.size + 1) + np.searchsorted(edges, [STOP_FEATURES[name](q) for q in queries], side="right")
    return g


def fit_stop_model(xy: np.ndarray, posts: list[np.ndarray], queries: list[Query], train: list[Trip],
                   folds: np.ndarray) -> dict[str, Any]:
    """A distance profile from the last fix to the destination, per speed and/or elapsed-time class, on top of
    the posterior: the route model says where a trip can go efficiently, not when it stops. Variants are
    compared out of fold over the training queries (folds = the trips' time blocks), by log-likelihood of the
    destination segment and by the error of the expected-distance point; the latter picks (it is what counts)."""
    last = np.array([q.last_xy for q in queries])
    dest = np.array([train[q.trip].path[-1] for q in queries])
    truth = np.array([train[q.trip].xy[-1] for q in queries])
    qfold = np.array([folds[q.trip] for q in queries])

    def gm_err(p: np.ndarray, i: int) -> float:
        return float(np.hypot(*(geometric_median(xy, p, mass=0.99, tol_m=5.0).point - truth[i])))

    variants: dict[str, Any] = {"none": {
        "cv_loglik": float(np.mean([math.log(max(float(p[d]), 1e-300)) for p, d in zip(posts, dest, strict=True)])),
        "cv_gm_km": float(np.mean([gm_err(p, i) for i, p in enumerate(posts)])) / 1000}}
    values = {name: np.array([fn(q) for q in queries]) for name, fn in STOP_FEATURES.items()}
    terciles = {name: np.quantile(v, [1 / 3, 2 / 3]) for name, v in values.items()}
    specs: dict[str, list[tuple[str, np.ndarray]]] = {
        "pooled": [],
        "speed": [("speed", terciles["speed"])],
        "elapsed": [("elapsed", np.quantile(values["elapsed"], [0.2, 0.4, 0.6, 0.8]))],
        "traveled": [("traveled", np.quantile(values["traveled"], [0.2, 0.4, 0.6, 0.8]))],
        "speed x elapsed": [("speed", terciles["speed"]), ("elapsed", terciles["elapsed"])],
        "speed x traveled": [("speed", terciles["speed"]), ("traveled", terciles["traveled"])],
    }
    for name, spec in specs.items():
        groups = stop_groups(queries, spec)
        n_groups = int(np.prod([e.size + 1 for _, e in spec])) if spec else 1
        ll, err = 0.0, 0.0
        for f in np.unique(qfold):
            tr, ho = np.flatnonzero(qfold != f), np.flatnonzero(qfold == f)
            m = DistanceDecayPrior(STOP_EDGES, l2=1e-3, n_groups=n_groups).fit(
                xy, [posts[i] for i in tr], last[tr], dest[tr], groups[tr])
            for i in ho:
                ps = m(xy, posts[i], last[i], groups[i])
                ll += math.log(max(float(ps[dest[i]]), 1e-300))
                err += gm_err(ps, i)
        model = DistanceDecayPrior(STOP_EDGES, l2=1e-3, n_groups=n_groups).fit(xy, posts, last, dest, groups)
        variants[name] = {"cv_loglik": ll / len(queries), "cv_gm_km": err / len(queries) / 1000, "model": model,
                          "spec": spec, "beta": model.beta_.round(2).tolist()}
    best = min(variants, key=lambda k: variants[k]["cv_gm_km"])
    return {"variants": variants, "best": best}


def select_on_training(net: RoadNetwork, post: Posterior, pri: Priors, train: list[Trip], folds: np.ndarray,
                       summ: DestinationSummarizer) -> dict[str, Any]:
    """gamma per prior kind (mean error of the expected-distance point), and the clustering radius (top-5 hits),
    on the training trips' partial paths, each with priors built without its own fold (theta is in-sample)."""
    queries, failed = make_queries(net, train, FRACTIONS)
    parts = {int(f): pri.subset(folds != f) for f in np.unique(folds)}
    marg = {f: p.marginal() for f, p in parts.items()}
    err = {(k, g): [] for k in POSTERIOR_KINDS for g in GAMMAS}
    ll = {(k, g): [] for k in POSTERIOR_KINDS for g in GAMMAS}
    hits = {r: [] for r in RADII}
    cache: dict[int, dict[str, np.ndarray]] = {}
    for q in queries:
        t = train[q.trip]
        f = int(folds[q.trip])
        if q.trip not in cache:
            cache = {q.trip: {k: np.log(parts[f].prior(k, t.xy[0], hour_of_day(t.start), marg[f]))
                              for k in POSTERIOR_KINDS}}
        lr = post.log_ratio(q.a, q.b)
        truth = t.xy[-1]
        for k in POSTERIOR_KINDS:
            for g in GAMMAS:
                p = Posterior.combine(cache[q.trip][k], lr, g)
                ll[(k, g)].append(math.log(max(p[t.path[-1]], 1e-300)))
                gm = geometric_median(summ.xy, p, mass=0.99, tol_m=5.0)
                err[(k, g)].append(float(np.hypot(*(gm.point - truth))))
    gamma = {k: min(GAMMAS, key=lambda g, k=k: np.mean(err[(k, g)])) for k in POSTERIOR_KINDS}
    table = {k: {f"{g:g}": {"gm_km": round(float(np.mean(err[(k, g)])) / 1000, 4),
                            "loglik": round(float(np.mean(ll[(k, g)])), 4)} for g in GAMMAS}
             for k in POSTERIOR_KINDS}
    best = min(POSTERIOR_KINDS, key=lambda k: np.mean(err[(k, gamma[k])]))
    posts: list[np.ndarray] = []
    for q in queries:  # radius for the recommended posterior (and its posteriors, for the stop model)
        t = train[q.trip]
        f = int(folds[q.trip])
        lp = np.log(parts[f].prior(best, t.xy[0], hour_of_day(t.start), marg[f]))
        p = Posterior.combine(lp, post.log_ratio(q.a, q.b), gamma[best])
        for r in RADII:
            cl = summ.top_destinations(p, r, k=5)
            hits[r].append(float(np.any(np.hypot(*(np.array([c.xy for c in cl]) - t.xy[-1]).T) <= HIT_M)))
        posts.append(p.astype(np.float32))
    radius = max(RADII, key=lambda r: np.mean(hits[r]))
    stop = fit_stop_model(summ.xy, posts, queries, train, folds)
    return {"queries": len(queries), "failed": dict(failed), "gamma": gamma, "table": table, "best": best,
            "radius_m": radius, "radius_top5": {f"{r:g}": round(float(np.mean(h)), 4) for r, h in hits.items()},
            "stop": stop}


def time_large(side: int, seed: int = 0) -> dict[str, float]:
    """Per-query cost on a ``side x side`` synthetic grid (276: about 300k segments), the size of a large city.

    The two rows of M (one transposed solve of two right-hand sides), a multi-scale kernel prior from 2,000
    stored destinations mixed with an origin-conditional part, the posterior, and its three summaries.
    """
    from maxent_irl.synthetic import grid_route_mdp

    mdp = grid_route_mdp(side)
    theta = np.array([-5.0, -3.0, -0.9, -0.4, -4.5, -0.4])  # the likelihood benchmark's grid weights
    idx = np.arange(side * side).reshape(side, side)
    u = np.concatenate([idx[:, :-1].ravel(), idx[:, 1:].ravel(), idx[:-1, :].ravel(), idx[1:, :].ravel()])
    v = np.concatenate([idx[:, 1:].ravel(), idx[:, :-1].ravel(), idx[1:, :].ravel(), idx[:-1, :].ravel()])
    node = np.column_stack(np.divmod(np.arange(side * side), side))[:, ::-1] * 100.0
    xy = (node[u] + node[v]) / 2.0
    rng = np.random.default_rng(seed)
    t = time.process_time()
    post = Posterior(RouteModel(mdp, theta))
    out = {"segments": float(mdp.n_states), "factorize_cpu_s": time.process_time() - t}
    dest = xy[rng.integers(0, mdp.n_states, 2000)] + rng.normal(0, 50, (2000, 2))
    origins = xy[rng.integers(0, mdp.n_states, 2000)]
    t = time.process_time()
    K = destination_kernel(xy, dest, 200.0) * 0.7 + destination_kernel(xy, dest, 800.0) * 0.3
    marginal = smoothed_prior(K, 0.05)
    out["prior_build_cpu_s"] = time.process_time() - t
    times: dict[str, list[float]] = {k: [] for k in ("rows", "prior", "posterior", "median", "median_exact",
                                                     "clusters", "heat")}
    summ = DestinationSummarizer(xy)
    clock = time.process_time  # CPU time of this process: wall time is meaningless on a shared, loaded machine
    for _ in range(5):
        a = int(rng.integers(0, mdp.n_states))
        b = int(mdp.successors(int(mdp.successors(a)[1][0]))[1][0])
        s0 = clock()
        lr = post.log_ratio(a, b)
        s1 = clock()
        pr = conditional_prior(K, kernel_weights(xy[a], origins, 1000.0), marginal, 0.25)
        s2 = clock()
        p = Posterior.combine(np.log(pr), lr, 0.5)
        s3 = clock()
        geometric_median(xy, p, mass=0.999)
        s4 = clock()
        geometric_median(xy, p)
        s5 = clock()
        summ.top_destinations(p, 500.0)
        s6 = clock()
        heat_map(p, mass=0.9)
        s7 = clock()
        for k, v in zip(times, (s1 - s0, s2 - s1, s3 - s2, s4 - s3, s5 - s4, s6 - s5, s7 - s6), strict=True):
            times[k].append(v)
    out.update({f"{k}_cpu_ms": 1e3 * float(np.median(v)) for k, v in times.items()})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--test-fraction", type=float, default=0.3)
    ap.add_argument("--l2", type=float, default=1e-3)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--split", choices=("time", "random"), default="time")
    ap.add_argument("--seed", type=int, default=0, help="for --split random")
    ap.add_argument("--cache", type=Path, default=None, help="cache matched trips and theta here")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--large", type=int, default=0, metavar="SIDE",
                    help="only time one query on a SIDE x SIDE synthetic grid (276: ~300k segments) and exit")
    args = ap.parse_args()
    if args.large:
        print(json.dumps({k: round(v, 3) for k, v in time_large(args.large).items()}, indent=1))
        return
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    out: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    t0 = time.perf_counter()
    net = RoadNetwork.load(args.data / "porto_center_drive.graphml.gz")
    print(f"network: {net!r}")

    rows = read_trips(args.data / "train.1k.csv")
    cache = args.cache
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
        global _QUERY_CACHE
        _QUERY_CACHE = cache
    mfile = cache / f"matched_{net.fingerprint}.pkl" if cache else None
    if mfile and mfile.exists():
        trips, dropped = pickle.loads(mfile.read_bytes())
    else:
        t = time.perf_counter()
        trips, dropped = match_trips(net, rows)
        print(f"map matching: {time.perf_counter() - t:.1f} s")
        if mfile:
            mfile.write_bytes(pickle.dumps((trips, dropped)))
    print(f"trips: {len(rows)} read, {len(trips)} kept; dropped: {dict(dropped)}")
    out["data"] = {"read": len(rows), "kept": len(trips), "dropped": dict(dropped)}

    trips.sort(key=lambda t: t.start)
    n_test = round(args.test_fraction * len(trips))
    if args.split == "time":
        train, test = trips[:-n_test], trips[-n_test:]
        cut = time.strftime("%H:%M", time.gmtime(test[0].start))
        print(f"split by start time: {len(train)} training trips before {cut} UTC, {len(test)} test trips from then on")
    else:
        perm = np.random.default_rng(args.seed).permutation(len(trips))
        test = [trips[i] for i in np.sort(perm[:n_test])]
        train = [trips[i] for i in np.sort(perm[n_test:])]
        cut = None
        print(f"random split (seed {args.seed}): {len(train)} training trips, {len(test)} test trips")
    out["split"] = {"kind": args.split, "train": len(train), "test": len(test), "cut_utc": cut}

    paths = [trim_at_destination(t.path) for t in train]
    n_trim = sum(p.size < t.path.size for p, t in zip(paths, train, strict=True))
    keep_paths = [p for p in paths if p.size >= 2]
    key = hashlib.sha1(np.concatenate(keep_paths).tobytes() + str(args.l2).encode()).hexdigest()[:12]
    tfile = cache / f"theta_{key}.npy" if cache else None
    t = time.perf_counter()
    if tfile and tfile.exists():
        theta = np.load(tfile)
    else:
        est = MaxEntIRL(l2=args.l2).fit(net.mdp, keep_paths)
        theta = est.theta_
        print(f"MaxEnt fit: {est.n_iter_} iterations, {time.perf_counter() - t:.1f} s, {est.message_}")
        if tfile:
            np.save(tfile, theta)
    print(f"route model: {len(keep_paths)} training paths ({n_trim} cut at their first visit of the destination, "
          f"{len(paths) - len(keep_paths)} left with one segment and dropped), l2 = {args.l2}")
    out["route_model"] = {"paths": len(keep_paths), "cut": n_trim,
                          "theta": dict(zip(net.mdp.feature_names, theta.round(3).tolist(), strict=True))}
    post = Posterior(RouteModel(net.mdp, theta))

    t = time.perf_counter()
    folds = time_blocks(np.array([t.start for t in train]), args.folds)
    pri, prior_report = fit_priors(net, train, folds)
    out["priors"] = prior_report
    print(f"priors fitted in {time.perf_counter() - t:.1f} s (cross-validated log-likelihood of the destination "
          f"segment, {args.folds} time blocks of the training trips; flat {prior_report['flat_loglik']:.3f}):")
    print(f"  kernel: {prior_report['single']['bandwidth_m']:g} m, floor {prior_report['single']['floor']:g}: "
          f"{prior_report['single']['cv_loglik']:.3f}")
    print(f"  multi-scale: weights {prior_report['multiscale']['weights']}, floor {prior_report['multiscale']['floor']}"
          f": {prior_report['multiscale']['cv_loglik']:.3f} (weights fitted on these scores)")
    for k in ("origin", "time"):
        r = prior_report[k]
        print(f"  {k}: bandwidth {r.get('bandwidth_m', r.get('bandwidth_h'))}, mix {r['mix']}: {r['cv_loglik']:.3f}")
    print(f"  gravity: beta {prior_report['gravity']['beta']} on edges {prior_report['gravity']['edges_m']}: "
          f"{prior_report['gravity']['cv_loglik_beta_in_sample']:.3f} (beta in-sample); gravity+origin "
          f"{prior_report['gravity_origin_cv_loglik']:.3f}")

    summ = DestinationSummarizer(pri.xy)
    t = time.perf_counter()
    sel = select_on_training(net, post, pri, train, folds, summ)
    out["selection"] = {k: v for k, v in sel.items() if k != "stop"}
    out["selection"]["stop"] = {
        "edges_m": list(STOP_EDGES), "best": sel["stop"]["best"],
        "variants": {k: {kk: (vv.tolist() if isinstance(vv, np.ndarray) else vv) for kk, vv in v.items()
                         if kk in ("cv_loglik", "cv_gm_km", "beta")}
                     for k, v in sel["stop"]["variants"].items()}}
    print("stop model (out of fold on training queries: log-likelihood, expected-distance point error km): "
          + ", ".join(f"{k} {v['cv_loglik']:.3f} {v['cv_gm_km']:.3f}" for k, v in sel["stop"]["variants"].items())
          + f"; chosen: {sel['stop']['best']}")
    print(f"selection on training trips ({sel['queries']} partial trips, {time.perf_counter() - t:.0f} s): "
          f"gamma {sel['gamma']}; best prior for the posterior: {sel['best']}; radius {sel['radius_m']:g} m "
          f"(top-5 hits {sel['radius_top5']})")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float))
    evaluate_test(net, post, pri, train, test, sel, summ, out)
    print(f"elapsed {time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float))


def evaluate_test(net: RoadNetwork, post: Posterior, pri: Priors, train: list[Trip], test: list[Trip],
                  sel: dict[str, Any], summ: DestinationSummarizer, out: dict[str, Any]) -> None:
    queries, failed = make_queries(net, test, FRACTIONS)
    print(f"test queries: {len(queries)} ({dict(failed)} prefixes failed to match)")
    radius = sel["radius_m"]
    nearest = NearestTrip(train)
    marginal = pri.marginal()
    rec: dict[str, list[dict[str, float]]] = {}
    prior_cache: dict[int, dict[str, Any]] = {}
    timing: dict[str, list[float]] = {"solve": [], "prior": [], "posterior": [], "median": [], "clusters": [],
                                      "heat": []}

    def add(name: str, q: Query, r: dict[str, float]) -> None:
        rec.setdefault(name, []).append({"trip": q.trip, "fraction": q.fraction, **r})

    for q in queries:
        t = test[q.trip]
        truth = t.xy[-1]
        if q.trip not in prior_cache:
            prior_cache = {q.trip: {}}
            for k in POSTERIOR_KINDS:
                c0 = time.process_time()
                p = pri.prior(k, t.xy[0], hour_of_day(t.start), marginal)
                if k == sel["best"]:
                    timing["prior"].append(time.process_time() - c0)
                pt, cen = summarize(summ, p, radius)
                prior_cache[q.trip][k] = (np.log(p), p, pt, cen)
        # baselines
        add("last point", q, score(q.last_xy, q.last_xy[None, :], truth) | {"loglik": float("nan")})
        add("nearest trip", q, score(nearest.answers(q.observed_xy, radius, 1)[0],
                                     nearest.answers(q.observed_xy, radius, max(TOP_K)), truth)
            | {"loglik": float("nan")})
        for k in POSTERIOR_KINDS:
            lp, p, pt, cen = prior_cache[q.trip][k]
            add(f"prior only: {k}", q, score(pt, cen, truth) | {"loglik": float(lp[t.path[-1]])})
        s0 = time.process_time()
        lr = post.log_ratio(q.a, q.b)
        s1 = time.process_time()
        timing["solve"].append(s1 - s0)
        for k in POSTERIOR_KINDS:
            s1 = time.process_time()  # CPU time: the machine is shared
            lp = prior_cache[q.trip][k][0]
            p = Posterior.combine(lp, lr, sel["gamma"][k])
            s2 = time.process_time()
            gm = geometric_median(summ.xy, p, mass=0.999)
            s3 = time.process_time()
            cl = summ.top_destinations(p, radius, k=max(TOP_K))
            s4 = time.process_time()
            heat_map(p, mass=0.9)
            s5 = time.process_time()
            if k == sel["best"]:
                timing["posterior"].append(s2 - s1)
                timing["median"].append(s3 - s2)
                timing["clusters"].append(s4 - s3)
                timing["heat"].append(s5 - s4)
            add(f"posterior: {k}", q, score(gm.point, np.array([c.xy for c in cl]), truth)
                | {"loglik": math.log(max(p[t.path[-1]], 1e-300))})
            if k == sel["best"]:  # with the stop model's distance profile from the last fix
                for vname, v in sel["stop"]["variants"].items():
                    if vname == "none":
                        continue
                    grp = int(stop_groups([q], v["spec"])[0])
                    ps = v["model"](summ.xy, p, q.last_xy, grp)
                    cl = summ.top_destinations(ps, radius, k=max(TOP_K))
                    add(f"posterior: {k} + stop ({vname})", q,
                        score(geometric_median(summ.xy, ps, mass=0.999).point, np.array([c.xy for c in cl]), truth)
                        | {"loglik": math.log(max(ps[t.path[-1]], 1e-300))})
            if k == sel["best"]:  # the model as written (gamma = 1), for reference
                p1 = Posterior.combine(lp, lr, 1.0)
                add(f"posterior: {k}, gamma 1", q, score(geometric_median(summ.xy, p1, mass=0.999).point,
                                                         np.array([c.xy for c in summ.top_destinations(p1, radius)]),
                                                         truth) | {"loglik": math.log(max(p1[t.path[-1]], 1e-300))})
    out["timing_ms"] = {k: round(1e3 * float(np.median(v)), 3) for k, v in timing.items()}
    out["underflows"] = post.underflows
    report(rec, sel, out)


def report(rec: dict[str, list[dict[str, float]]], sel: dict[str, Any], out: dict[str, Any]) -> None:
    best = f"posterior: {sel['best']}"
    metrics = ("gm_km", "top1_km", "top1", "top3", "top5", "loglik")
    table: dict[str, Any] = {}
    print(f"\nper-query CPU time (median ms): {out['timing_ms']}; underflowed entries of M: {out['underflows']}")
    for f in FRACTIONS:
        print(f"\n== {round(100 * f)} % observed ==")
        print(f"{'method':34s} {'n':>4s} {'gm mean':>8s} {'gm med':>7s} {'top1 mean':>9s} {'top1 med':>8s} "
              f"{'hit@1':>6s} {'hit@3':>6s} {'hit@5':>6s} {'loglik':>7s}   gm - last point [95 % CI] km")
        base = {r["trip"]: r for r in rec["last point"] if r["fraction"] == f}
        table[f] = {}
        for name, rows in rec.items():
            rs = [r for r in rows if r["fraction"] == f]
            arr = {m: np.array([r[m] for r in rs]) for m in metrics}
            ref = np.array([base[r["trip"]]["gm_km"] for r in rs])
            d = paired(arr["gm_km"], ref)
            row = {"n": len(rs), "gm_mean_km": arr["gm_km"].mean(), "gm_median_km": float(np.median(arr["gm_km"])),
                   "top1_mean_km": arr["top1_km"].mean(), "top1_median_km": float(np.median(arr["top1_km"])),
                   **{f"hit{k}": arr[f"top{k}"].mean() for k in TOP_K}, "loglik": float(np.mean(arr["loglik"])),
                   "gm_minus_last_point": d,
                   "top1_minus_last_point": paired(arr["top1_km"], ref)}
            table[f][name] = row
            print(f"{name:34s} {len(rs):4d} {row['gm_mean_km']:8.3f} {row['gm_median_km']:7.3f} "
                  f"{row['top1_mean_km']:9.3f} {row['top1_median_km']:8.3f} {row['hit1']:6.3f} {row['hit3']:6.3f} "
                  f"{row['hit5']:6.3f} {row['loglik']:7.3f}   {d['diff']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]")
        for name in (best, f"{best} + stop ({sel['stop']['best']})"):
            if name not in rec:
                continue
            mine = {r["trip"]: r for r in rec[name] if r["fraction"] == f}
            for other in ("last point", f"prior only: {sel['best']}", "prior only: multiscale", "nearest trip", best):
                if other == name:
                    continue
                theirs = {r["trip"]: r for r in rec[other] if r["fraction"] == f}
                trips = sorted(mine)
                for m in ("gm_km", "top1_km", "top5"):
                    d = paired([mine[i][m] for i in trips], [theirs[i][m] for i in trips])
                    table[f].setdefault("paired", {})[f"{name} - {other}: {m}"] = d
                    print(f"  {name} - {other}: {m} {d['diff']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]")
    out["table"] = {f"{round(100 * f)}%": v for f, v in table.items()}

if __name__ == "__main__":
    main()
