"""Does the core reproduce the recursive logit (RL) estimates on the Borlänge GPS routes?

The RL model (Fosgerau, Frejinger & Karlström 2013, TR-B 56) was estimated on 1,832 car
routes in Borlänge, Sweden, with the files of the public repository
``maitien86/RecursiveLogit.Classical.V2`` (folder ``Input/``). This script reads those four
files, builds a :class:`maxent_irl.RouteMDP`, fits :class:`maxent_irl.MaxEntIRL` (``l2=0``)
with standard errors, and prints them next to the published values, with the
log-likelihood checked against a direct RL computation written from the paper's equations.

The data (its licence is unclear, so it is never copied into the repository)::

    DIR/linkIncidence.txt           (k, a, 1): link a may follow link k; columns > rows are RL's
                                    dummy destination links (the matrix is L x n, L real links)
    DIR/ATTRIBUTEestimatedtime.txt  (k, a, t): travel time of the turn k -> a (that of link a)
    DIR/ATTRIBUTEturnangles.txt     (k, a, angle): turn angle in radians, left negative, U-turn +-pi
    DIR/observationsForEstimBAI.txt (route, column, link): column 1 the destination (a dummy
                                    link), columns 2.. the route from its origin link to that dummy

How RL's model maps onto the core (the RL code's conventions, Mai's ``loadData.m``/``getLL``):

* states = all ``n`` links, RL's dummy destination links included; transitions = the
  incidence's entries; a transition's features are those of the turn ``k -> a``:
  travel time ``t(k, a)``, left turn ``1[-3.1 < angle < -0.5236]`` (sharper than 30°, not a
  U-turn), link constant ``1[t(k, a) > 0]``, U-turn ``1[|angle| > 3.1]``. A transition into a
  dummy has no time and no angle, so all four features are 0: weight 1.
* a route is ``[origin, ..., last real link, dummy]``, its destination the dummy. A dummy has
  no exits, so ``Z(o, dummy) = M[o, dummy]`` is RL's ``z(o) = [(I - M)^-1 b](o)``: the
  likelihoods are the same function of theta (printed at the published theta and at the
  estimate; ``tests/benchmarks`` checks it on synthetic sets). With explicit dummies the
  destination has no exits, so the absorbing-destination core gives the same numbers.
* A Borlänge dummy is entered from the links into a destination node (2 to 4 links for 35
  of the 38 dummies 7717-7754 that end the incidence file), so RL's destination is a node
  and the route's last real link is part of the choice. Taking the last real link as the
  destination (``--destination last-link``) is another model: its ``Z`` sums only the paths
  that end on that link, so its likelihood is higher than RL's wherever a dummy has several
  entries. Where every dummy has one entry (RL's destination *link*), it is RL's model
  under the current core (a trip may pass its destination, and stops there), not under the
  absorbing one (first passage).

Without the data, ``--make-synthetic DIR`` writes a Borlänge-sized network in the same four
formats (jittered grid, dummies entered from every link into a destination node, 1,832
routes sampled from RL at the published weights by a sampler independent of the core), so
the whole pipeline can be run and checked.

    python benchmarks/bench_borlange.py                          # --data /work/scratch/borlange
    python benchmarks/bench_borlange.py --data DIR --tol 1e-7 1e-10   # and a tighter re-fit
    python benchmarks/bench_borlange.py --make-synthetic /tmp/rl-synth && \\
        python benchmarks/bench_borlange.py --data /tmp/rl-synth
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph
from scipy.sparse.linalg import splu

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import maxent_irl
from maxent_irl import InvalidPathError, MaxEntIRL, RouteMDP
from maxent_irl.linsolve import fill_reducing_ordering
from maxent_irl.objective import log_likelihood_and_gradient, make_trip_set
from maxent_irl.uncertainty import covariance, information_matrix

DEFAULT_DATA = Path("/work/scratch/borlange")
FILES = {
    "incidence": "linkIncidence.txt",
    "time": "ATTRIBUTEestimatedtime.txt",
    "angles": "ATTRIBUTEturnangles.txt",
    "observations": "observationsForEstimBAI.txt",
}
SOURCE = "github.com/maitien86/RecursiveLogit.Classical.V2, folder Input/"
FEATURES = ("travel_time", "left_turn", "link_constant", "u_turn")
#: RL without link size, Borlänge, 1,832 routes, as the task quotes Fosgerau et al. (2013); the same four
#: numbers are the start values of main.m in the repository above (``Op.x = [-2.494 -0.933 -0.411 -4.459]``).
PUBLISHED = np.array([-2.494, -0.933, -0.411, -4.459])
#: The final log-likelihood as quoted in the task (not found in a retrievable source): about -6,856.
PUBLISHED_LL = -6856.0
LEFT_LIMIT = -0.5236  # radians (30 degrees): a sharper left turn is a "left turn"
UTURN_LIMIT = 3.1  # radians: |angle| beyond this is a U-turn


class DataError(Exception):
    """The RL files are missing or not what the RL code expects."""


@dataclass
class RLData:
    """RL's network and routes, links numbered from 0 (RL's link ``i`` is ``i - 1`` here).

    Links ``0 .. n_real - 1`` are real, ``n_real .. n_links - 1`` RL's dummy destination links.
    ``src``/``dst`` ``(T,)`` are the incidence's entries, ``time``/``angle`` ``(T,)`` their
    attributes (0 where the attribute file has no entry, as in RL's sparse matrices).
    ``routes[i]`` is route ``i``'s links, origin first, its dummy destination last.
    """

    n_real: int
    n_links: int
    src: np.ndarray
    dst: np.ndarray
    time: np.ndarray
    angle: np.ndarray
    routes: list[np.ndarray]
    notes: list[str]


def _triplets(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(i, j, v)`` of a MATLAB ``spconvert`` file, 1-based indices as integers."""
    a = np.loadtxt(path, ndmin=2)
    if a.shape[1] != 3:
        raise DataError(f"{path}: expected 3 columns (row, column, value), found {a.shape[1]}")
    i, j = np.rint(a[:, 0]).astype(np.int64), np.rint(a[:, 1]).astype(np.int64)
    if np.any(i < 1) or np.any(j < 1) or np.any(np.abs(a[:, :2] - np.stack([i, j], 1)) > 1e-9):
        raise DataError(f"{path}: row and column indices must be integers >= 1")
    return i, j, a[:, 2]


def _lookup(path: Path, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Values of a sparse attribute file at the transitions (duplicates summed, as ``spconvert`` does)."""
    i, j, v = _triplets(path)
    shape = (max(int(i.max()), int(src.max()) + 1), max(int(j.max()), int(dst.max()) + 1))
    m = sp.csr_matrix((v, (i - 1, j - 1)), shape=shape)
    return np.asarray(m[src, dst]).ravel()


def load_rl_data(data_dir: Path) -> RLData:
    """Read the four RL files; raise :class:`DataError` saying what is missing or malformed."""
    missing = [name for name in FILES.values() if not (data_dir / name).is_file()]
    if missing:
        raise DataError(
            f"{data_dir}: missing {', '.join(missing)}. The Borlänge files come from {SOURCE} "
            f"(copy them there unchanged; they stay out of this repository), or make a synthetic set "
            f"in the same format with --make-synthetic DIR."
        )
    notes: list[str] = []
    k, a, val = _triplets(data_dir / FILES["incidence"])
    n_real, n_links = int(k.max()), int(a.max())  # spconvert's size: L x n
    if np.any(val != 1):
        raise DataError(f"incidence: {int(np.sum(val != 1))} entries are not 1 (RL would weight those turns)")
    keys = (k - 1) * n_links + (a - 1)
    if np.unique(keys).size != keys.size:
        raise DataError("incidence: a (k, a) pair appears twice (spconvert would sum it to 2)")
    src, dst = k - 1, a - 1
    tt = _lookup(data_dir / FILES["time"], src, dst)
    ang = _lookup(data_dir / FILES["angles"], src, dst)

    t, c, link = _triplets(data_dir / FILES["observations"])
    order = np.lexsort((c, t))
    t, c, link = t[order], c[order], link[order]
    starts = np.flatnonzero(np.r_[True, t[1:] != t[:-1]])
    routes: list[np.ndarray] = []
    known = np.sort(keys)
    bad = {"gaps": 0, "end": 0, "dummy inside": 0, "short": 0, "turn not in the incidence": 0}
    for lo, hi in zip(starts, np.r_[starts[1:], t.size], strict=True):
        row_c, row = c[lo:hi], np.rint(link[lo:hi]).astype(np.int64)
        nz = row != 0
        row_c, row = row_c[nz], row[nz]
        if not np.array_equal(row_c, np.arange(1, row.size + 1)):
            bad["gaps"] += 1  # RL reads the first nnz columns of the row; a gap would shift the route
            continue
        if row.size < 3:
            bad["short"] += 1
            continue
        dest, route = row[0], row[1:]
        if route[-1] != dest or dest <= n_real:
            bad["end"] += 1
            continue
        if np.any(route[:-1] > n_real):
            bad["dummy inside"] += 1
            continue
        turn = (route[:-1] - 1) * n_links + (route[1:] - 1)
        pos = np.minimum(np.searchsorted(known, turn), known.size - 1)
        if np.any(known[pos] != turn):
            bad["turn not in the incidence"] += 1  # RL's U(k, a) would be 0 there: no model of ours matches
            continue
        routes.append(route - 1)
    n_rows = starts.size
    if any(bad.values()):
        notes.append(f"observations: {n_rows} rows, set aside: {', '.join(f'{v} {k}' for k, v in bad.items() if v)}")
    else:
        notes.append(f"observations: {n_rows} rows, each [destination dummy, origin, ..., destination dummy]")
    if np.any(ang[dst >= n_real] != 0) or np.any(tt[dst >= n_real] != 0):
        notes.append("note: some transitions into dummy links have a time or an angle (RL uses them as given)")
    return RLData(n_real, n_links, src, dst, tt, ang, routes, notes)


def rl_features(data: RLData) -> np.ndarray:
    """``(T, 4)`` travel time, left turn, link constant, U-turn of every transition (``loadData.m``'s rules)."""
    uturn = (data.angle > UTURN_LIMIT) | (data.angle < -UTURN_LIMIT)
    left = (data.angle < LEFT_LIMIT) & (data.angle > -UTURN_LIMIT)
    const = data.time > 0
    return np.column_stack([data.time, left, const, uturn]).astype(np.float64)


def build_mdp(data: RLData, destination: str) -> tuple[RouteMDP, list[np.ndarray]]:
    """The core's MDP and paths: ``dummy`` is RL's model; ``last-link`` ends each route on its last real link."""
    feats = rl_features(data)
    if destination == "dummy":
        return RouteMDP(data.n_links, data.src, data.dst, feats, FEATURES), list(data.routes)
    real = data.dst < data.n_real
    mdp = RouteMDP(data.n_real, data.src[real], data.dst[real], feats[real], FEATURES)
    return mdp, [r[:-1] for r in data.routes]


class DirectRL:
    """RL's log-likelihood straight from the paper's equations, independently of the core.

    ``z = (I - M)^-1 b`` on the real links, with ``M[k, a] = exp(v(a | k))`` and ``b[k]`` the
    weight of the turn from ``k`` into the route's dummy: one LU of ``I - M`` serves every
    destination. ``ln P(route) = sum v(a | k) - ln z(origin)``.
    """

    def __init__(self, data: RLData) -> None:
        self.data = data
        self.feats = rl_features(data)
        n = data.n_links
        keys = data.src * n + data.dst
        self._order = np.argsort(keys)
        self._keys = keys[self._order]
        self.real = data.dst < data.n_real
        self.dests = np.unique([r[-1] for r in data.routes])
        self._col = {int(d): i for i, d in enumerate(self.dests)}

    def transitions(self, route: np.ndarray) -> np.ndarray:
        keys = route[:-1] * self.data.n_links + route[1:]
        pos = np.searchsorted(self._keys, keys)
        if np.any(pos >= self._keys.size) or np.any(self._keys[np.minimum(pos, self._keys.size - 1)] != keys):
            raise DataError("a route uses a turn the incidence does not have")
        out: np.ndarray = self._order[pos]
        return out

    def z(self, theta: np.ndarray) -> np.ndarray:
        """``(L, D)`` RL's ``z`` on the real links for each destination dummy of the routes."""
        d, L = self.data, self.data.n_real
        w = np.exp(self.feats @ theta)
        M = sp.csc_matrix((w[self.real], (d.src[self.real], d.dst[self.real])), shape=(L, L))
        into = ~self.real & np.isin(d.dst, self.dests)
        cols = np.array([self._col[int(x)] for x in d.dst[into]], dtype=np.int64)
        b = sp.csc_matrix((w[into], (d.src[into], cols)), shape=(L, self.dests.size)).toarray()
        z: np.ndarray = splu((sp.identity(L, format="csc") - M).tocsc()).solve(b)
        return z

    def log_likelihood(self, theta: np.ndarray, routes: list[np.ndarray] | None = None) -> float:
        """Total ``ln P`` of ``routes`` (default all the data's routes, each ending at its dummy)."""
        z = self.z(theta)
        u = self.feats @ theta
        total = 0.0
        for r in self.data.routes if routes is None else routes:
            zo = z[r[0], self._col[int(r[-1])]]
            if not zo > 0:
                raise DataError(f"RL's z is not positive at origin {r[0]} (theta makes the system diverge)")
            total += float(u[self.transitions(r)].sum()) - float(np.log(zo))
        return total


# -- synthetic data in RL's formats -----------------------------------------------------------------------------
def make_synthetic(out: Path, side: int, n_dest: int, n_obs: int, theta: np.ndarray, seed: int,
                   dummy_from: str = "node") -> None:
    """A Borlänge-sized jittered grid in RL's four file formats, routes sampled from RL at ``theta``.

    ``dummy_from``: ``node`` enters each dummy from every link into its destination node (as
    in Borlänge), ``link`` from one of them only (RL's destination is then that link).
    """
    rng = np.random.default_rng(seed)
    xy = np.stack(np.meshgrid(np.arange(side), np.arange(side), indexing="ij"), -1).reshape(-1, 2).astype(float)
    xy = (xy + rng.uniform(-0.3, 0.3, xy.shape)) * 0.2  # km
    node = np.arange(side * side).reshape(side, side)
    pairs = [(node[i, j], node[i + 1, j]) for i in range(side - 1) for j in range(side)]
    pairs += [(node[i, j], node[i, j + 1]) for i in range(side) for j in range(side - 1)]
    edges = np.array([p for p in pairs if rng.random() < 0.85])
    tail = np.concatenate([edges[:, 0], edges[:, 1]])
    head = np.concatenate([edges[:, 1], edges[:, 0]])
    length = np.linalg.norm(xy[head] - xy[tail], axis=1)
    speed = rng.choice([0.5, 0.833, 1.167], tail.size, p=[0.3, 0.5, 0.2])  # km per minute
    # turns k -> a wherever link a leaves the node link k enters (U-turns included)
    out_of = sp.csr_matrix((np.ones(tail.size), (tail, np.arange(tail.size))), shape=(side * side, tail.size))
    tk = sp.csr_matrix(out_of[head])  # row k: links leaving head(k)
    k_idx = np.repeat(np.arange(tail.size), np.diff(tk.indptr))
    a_idx = tk.indices
    # keep the largest strongly connected set of links
    g = sp.csr_matrix((np.ones(k_idx.size), (k_idx, a_idx)), shape=(tail.size,) * 2)
    _, lab = csgraph.connected_components(g, directed=True, connection="strong")
    keep_links = np.flatnonzero(lab == np.bincount(lab).argmax())
    new_id = np.full(tail.size, -1)
    new_id[keep_links] = np.arange(keep_links.size)
    ok = (new_id[k_idx] >= 0) & (new_id[a_idx] >= 0)
    k_idx, a_idx = k_idx[ok], a_idx[ok]
    h1, h2 = xy[head[k_idx]] - xy[tail[k_idx]], xy[head[a_idx]] - xy[tail[a_idx]]
    cross, dot = h1[:, 0] * h2[:, 1] - h1[:, 1] * h2[:, 0], (h1 * h2).sum(1)
    angle = -np.arctan2(cross, dot)  # RL: left turns negative
    angle[head[a_idx] == tail[k_idx]] = np.pi
    ttime = (length / speed)[a_idx]
    L = keep_links.size
    src, dst = new_id[k_idx], new_id[a_idx]
    # dummy destination links: entered from every kept link into a destination node
    dest_nodes = rng.choice(np.unique(head[keep_links]), n_dest, replace=False)
    d_src, d_dst = [], []
    for i, v in enumerate(dest_nodes):
        into = new_id[np.flatnonzero(head == v)]
        into = into[into >= 0]
        if dummy_from == "link":
            into = rng.choice(into, 1)
        d_src.append(into)
        d_dst.append(np.full(into.size, L + i))
    inc_src = np.concatenate([src, *d_src])
    inc_dst = np.concatenate([dst, *d_dst])
    data = RLData(L, L + n_dest, inc_src, inc_dst, np.r_[ttime, np.zeros(inc_src.size - src.size)],
                  np.r_[angle, np.zeros(inc_src.size - src.size)], [], [])
    # sample routes from RL: P(a | k) = exp(v(a | k)) z(a) / z(k), z(dummy) = 1
    data.routes = [np.array([0, L + i]) for i in range(n_dest)]  # one per dummy, to size z's columns
    rl = DirectRL(data)
    z = rl.z(theta)
    w = np.exp(rl.feats @ theta)
    by_src = np.argsort(inc_src, kind="stable")
    ptr = np.r_[0, np.cumsum(np.bincount(inc_src, minlength=L))]
    link_tail = xy[tail[keep_links]]
    routes = []
    while len(routes) < n_obs:  # origins within 2.5 km of the destination: Borlänge-like route lengths
        di = int(rng.integers(n_dest))
        near = np.flatnonzero(np.linalg.norm(link_tail - xy[dest_nodes[di]], axis=1) < 2.5)
        o = int(rng.choice(near))
        if np.any(inc_dst[by_src[ptr[o]:ptr[o + 1]]] == L + di):
            continue  # the origin enters the destination node already
        route, k = [o], o
        while k < L and len(route) < 10 * L:
            js = by_src[ptr[k]:ptr[k + 1]]
            nxt = inc_dst[js]
            zn = np.where(nxt < L, z[np.minimum(nxt, L - 1), di], (nxt == L + di).astype(float))
            p = w[js] * zn
            k = int(nxt[rng.choice(js.size, p=p / p.sum())])
            route.append(k)
        routes.append(np.array(route))
    out.mkdir(parents=True, exist_ok=True)
    e7 = "   {:.7e}   {:.7e}   {:.7e}\n"
    col_order = np.lexsort((inc_src, inc_dst))  # RL's files list the incidence column by column
    with open(out / FILES["incidence"], "w") as f:
        f.writelines(e7.format(inc_src[j] + 1, inc_dst[j] + 1, 1.0) for j in col_order)
    real = np.flatnonzero(inc_dst < L)
    with open(out / FILES["time"], "w") as f:
        f.writelines(f"{inc_src[j] + 1}\t{inc_dst[j] + 1}\t{data.time[j]:.5g}\n"
                     for j in real[np.lexsort((inc_dst[real], inc_src[real]))])
    with open(out / FILES["angles"], "w") as f:
        f.writelines(f"   {inc_src[j] + 1:.16e}   {inc_dst[j] + 1:.16e}   {data.angle[j]:.16e}\n"
                     for j in real[np.lexsort((inc_src[real], inc_dst[real]))])
    rows = [np.r_[r[-1], r] + 1 for r in routes]
    with open(out / FILES["observations"], "w") as f:
        for c in range(max(len(r) for r in rows)):
            f.writelines(e7.format(t + 1, c + 1, r[c]) for t, r in enumerate(rows) if c < len(r))
    lengths = np.array([len(r) for r in routes])
    print(f"wrote {out}: {L:,} real links, {n_dest} dummy destination links (entered from {dummy_from}), "
          f"{src.size:,} turns, {n_obs:,} routes ({lengths.mean():.1f} links on average) sampled from RL at "
          f"theta = {theta.tolist()}")


# -- the benchmark -----------------------------------------------------------------------------------------------
def _core_version() -> str:
    root = Path(maxent_irl.__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%h %s"], capture_output=True,
                             text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        rev = "?"
    return f"{root} ({rev[:90]})"


def run(data_dir: Path, destination: str, tols: list[float]) -> None:
    t0 = time.perf_counter()
    data = load_rl_data(data_dir)
    t_load = time.perf_counter() - t0
    print(f"core: {_core_version()}")
    print(f"data: {data_dir}: {data.n_real:,} real links, {data.n_links - data.n_real:,} dummy destination links, "
          f"{data.src.size:,} turns; {len(data.routes):,} routes (read in {t_load:.1f} s)")
    for note in data.notes:
        print(f"  {note}")
    preds = np.bincount(data.dst[data.dst >= data.n_real] - data.n_real, minlength=data.n_links - data.n_real)
    used = np.array([r[-1] for r in data.routes]) - data.n_real
    hist = np.bincount(preds, minlength=5)
    print(f"  links entering a dummy: {', '.join(f'{n} for {c}' for n, c in enumerate(hist) if c and n)} dummies; "
          f"{int(np.sum(preds[used] > 1)):,} of {used.size:,} routes end at a dummy entered from several links")
    feats = rl_features(data)
    print(f"  turns that are: left {int(feats[:, 1].sum()):,}, U-turn {int(feats[:, 3].sum()):,}, with a time "
          f"{int(feats[:, 2].sum()):,}; mean route {np.mean([len(r) for r in data.routes]):.1f} links")

    mdp, paths = build_mdp(data, destination)
    routes = list(data.routes)
    passing = np.array([np.any(p[:-1] == p[-1]) for p in paths])
    print(f"model: destination = {destination}; {mdp.n_states:,} states, {mdp.n_transitions:,} transitions; "
          f"{int(passing.sum())} routes pass their destination before the end")
    try:
        make_trip_set(mdp, paths)
    except InvalidPathError as exc:
        if not passing.any():
            raise  # the absorbing-destination core refuses routes that pass their destination
        paths = [p for p, bad in zip(paths, passing, strict=True) if not bad]
        routes = [r for r, bad in zip(routes, passing, strict=True) if not bad]
        print(f"  this core refuses them ({exc}); fitting the other {len(paths):,}")

    direct = DirectRL(data)
    ordering = fill_reducing_ordering(mdp.adjacency())
    trips = make_trip_set(mdp, paths)

    def core_ll(theta: np.ndarray) -> tuple[float, float]:
        t = time.perf_counter()
        ll = log_likelihood_and_gradient(mdp, trips, mdp.features @ theta, 1.0, ordering)[0]
        return float(ll), time.perf_counter() - t

    ll_pub, t_core = core_ll(PUBLISHED)
    t = time.perf_counter()
    ll_direct = direct.log_likelihood(PUBLISHED, routes)
    t_direct = time.perf_counter() - t
    print(f"log-likelihood at the published theta: core {ll_pub:.4f} ({t_core:.2f} s with the gradient); direct RL "
          f"{ll_direct:.4f} ({t_direct:.2f} s, no gradient); core - RL {ll_pub - ll_direct:+.2e}")

    fits = []
    for tol in tols:
        t = time.perf_counter()
        est = MaxEntIRL(l2=0.0, tol=tol, max_iter=1000).fit(mdp, paths)
        fits.append((tol, est, time.perf_counter() - t))
        print(f"fit (tol {tol:g}): {fits[-1][2]:.1f} s, {est.n_iter_} iterations, converged {est.converged_} "
              f"({est.message_}); log-likelihood {est.log_likelihood_:.4f}")
    tol, est, _ = fits[-1]
    theta = est.theta_
    t = time.perf_counter()
    info = information_matrix(mdp, paths, theta, ordering=ordering)
    se = np.sqrt(np.diag(covariance(info)))
    t_se = time.perf_counter() - t
    print(f"standard errors (observed information, central differences of the gradient): {t_se:.1f} s")
    ll_fit_direct = direct.log_likelihood(theta, routes)
    print(f"log-likelihood at our estimate: core {est.log_likelihood_:.4f}, direct RL {ll_fit_direct:.4f} "
          f"(core - RL {est.log_likelihood_ - ll_fit_direct:+.2e})")

    print(f"\n{'':15s}{'published':>11s}{'ours':>11s}{'ours-pub':>11s}{'s.e.':>9s}{'(ours-pub)/se':>15s}")
    for i, name in enumerate(FEATURES):
        diff = theta[i] - PUBLISHED[i]
        print(f"{name:15s}{PUBLISHED[i]:11.3f}{theta[i]:11.4f}{diff:+11.4f}{se[i]:9.4f}{diff / se[i]:+15.2f}")
    print(f"{'log-likelihood':15s}{PUBLISHED_LL:11.0f}{est.log_likelihood_:11.3f}"
          f"{est.log_likelihood_ - PUBLISHED_LL:+11.3f}   (published: 'about -6,856', as quoted in the task)")
    print(f"{'':15s}at the published theta (rounded to 3 decimals): {ll_pub:.3f}; ours - that = "
          f"{est.log_likelihood_ - ll_pub:+.4f}")
    if len(fits) > 1:
        d = np.abs(fits[-1][1].theta_ - fits[0][1].theta_).max()
        print(f"largest change of an estimate from tol {fits[0][0]:g} to tol {fits[-1][0]:g}: {d:.2e}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"the RL files' folder (default {DEFAULT_DATA})")
    p.add_argument("--destination", choices=["dummy", "last-link"], default="dummy",
                   help="dummy: RL's model (default); last-link: each route ends on its last real link")
    p.add_argument("--tol", type=float, nargs="+", default=[1e-7],
                   help="gradient tolerances to fit at, in order (the last one's estimate is reported)")
    p.add_argument("--make-synthetic", type=Path, metavar="DIR",
                   help="write a synthetic Borlänge-sized data set in RL's formats to DIR and stop")
    p.add_argument("--side", type=int, default=48, help="synthetic grid side (nodes)")
    p.add_argument("--n-dest", type=int, default=466, help="synthetic destinations (Borlänge: 466 dummy links)")
    p.add_argument("--n-obs", type=int, default=1832, help="synthetic routes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dummy-from", choices=["node", "link"], default="node",
                   help="synthetic dummies entered from every link into the destination node (as in Borlänge) "
                        "or from one link only")
    args = p.parse_args()
    if args.make_synthetic is not None:
        make_synthetic(args.make_synthetic, args.side, args.n_dest, args.n_obs, PUBLISHED, args.seed,
                       args.dummy_from)
        return
    try:
        run(args.data, args.destination, args.tol)
    except DataError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
