"""HMM map matching (Newson & Krumm 2009), vectorized, onto the routable segments of a RoadNetwork.

* Candidates: every segment within ``search_radius_m`` of a point (shapely STRtree
  over the projected geometry cut into <= 100 m pieces, one batched query per
  trace), the ``max_candidates`` nearest kept. A candidate is a local minimum of the
  distance along a segment, not just its nearest position, so a point between the
  two arms of a hairpin bend (common on the default network's mountain roads) can be
  matched to either arm.
* Emission: Gaussian on the point-to-segment distance, ``sigma_m``.
* Transition: exponential on ``|route distance - great-circle distance|``, ``beta_m``;
  route distances come from cached Dijkstra rows over the segment graph, so one-ways
  and the MDP's turns are respected. A route longer than the great-circle distance plus
  ``max(5 km, 50 beta)`` is no transition (probability below e^-50), so route searches
  stop there and cost the same on a city as on a village. 2 km (Newson & Krumm's cut)
  changed 3 of 800 simulated Andorra traces (a U-turn at the end of a 1.4 km mountain
  road, 2.4 km of route between fixes 136 m apart); 5 km changes none. On networks too
  large for complete cached rows, searches first stop at ``max(500 m, 25 beta)``; bounds
  on what they missed show the few steps where a longer route could change the result,
  and only those are searched to the whole margin: the same result (checked against
  complete rows on 800 Andorra traces), 100x faster on a 100k-state grid than complete
  rows. Each U-turn on a route counts ``uturn_penalty_m``
  extra metres: without it, 30 m GPS noise makes the matcher detour into side streets
  and U-turn back (measured: 3.7x the true number of U-turns, 1.4x with 100 m).
  Moving backwards on the same segment by more than ``backtrack_m`` (GPS jitter
  allowance) is not a route.
* Viterbi in log space, one numpy step per point. If no candidate of a point can be
  reached from the previous one (a long data gap), the chain restarts there (a
  "break", reported) and the pieces are joined by the shortest path, so the result
  is always one connected state sequence of ``net.mdp``.

Points without any segment within the search radius are reported in
``unmatched_points`` and skipped; a trace none of whose points match raises
:class:`MapMatchingError` (``reason="off_network"``). Traces without times work: the
model never uses time.

Defaults are estimated per trace when not given: ``sigma_m`` as Newson & Krumm do,
``1.4826 * median`` distance of the points to their nearest segment (clipped to
3..50 m), the search radius as ``max(50 m, 5 sigma)``, ``beta_m = max(5 m, sigma)``,
the backtracking allowance ``backtrack_m = 6 sigma`` and the thinning distance
``min_spacing_m``: as in Newson & Krumm, fixes closer than that to the previous kept
one are left out of the HMM and placed on the matched path afterwards. Their 2 sigma
is kept for sparse traces (median step >= 4 sigma); dense ones get 6 sigma, because
a small spacing then keeps exactly the fixes whose noise points away from the last
one, backwards or sideways, and the matcher invents spurs and U-turns: at 1 Hz with
30 m noise, precision (share of the matched length on the true route) is 0.45 with
2 sigma, 0.70 with 4 sigma, 0.93 with 6 sigma. On sparse traces 6 sigma would drop
informative fixes in dense street grids (recall at 10 s / 30 m: 0.984 -> 0.971).
Finally a first (last) segment on which the trace covers less than ``sigma`` metres
is trimmed: a trip starting at a junction must not get the incoming street as its origin.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import shapely

from maxent_irl.roads.exceptions import InvalidTraceError, MapMatchingError
from maxent_irl.roads.geo import haversine_m, planar_m, thin_indices
from maxent_irl.roads.network import RoadNetwork, _rank_within
from maxent_irl.roads.routing import Router
from maxent_irl.roads.trace import Trace, TripRejection

__all__ = ["MapMatcher", "MatchResult"]

logger = logging.getLogger(__name__)

_MAX_PREFETCH_RADIUS_M = 250.0
#: Routes longer than the great-circle distance by more than max(this, _ROUTE_MARGIN_BETAS * beta) are no transition.
_ROUTE_MARGIN_M = 5000.0
_ROUTE_MARGIN_BETAS = 50.0
#: Bounded searches (large networks) first stop at max(this, _FIRST_MARGIN_BETAS * beta) (see the module docstring).
_FIRST_MARGIN_M = 500.0
_FIRST_MARGIN_BETAS = 25.0
#: The smallest search radius the per-trace estimate can give (``max(50 m, 5 sigma)``).
_MIN_RADIUS_M = 50.0


@dataclass(frozen=True, eq=False)
class MatchResult:
    """A trace matched onto the network.

    ``states`` is a connected path of ``net.mdp`` (consecutive states joined by
    transitions, repeats collapsed). Per GPS point ``i``: ``point_states[i]`` its
    segment (``-1`` if unmatched), ``point_path_index[i]`` the position of that
    segment in ``states``, ``point_distances_m[i]`` the distance to it and
    ``point_offsets_m[i]`` the position along it (``nan`` if unmatched).
    ``breaks`` lists the points where the HMM restarted (no plausible route from the
    previous matched point); the gap before each was filled with a shortest path.
    """

    trace_id: str
    states: np.ndarray
    point_states: np.ndarray
    point_path_index: np.ndarray
    point_distances_m: np.ndarray
    point_offsets_m: np.ndarray
    unmatched_points: list[int]
    breaks: list[int]
    sigma_m: float
    beta_m: float
    search_radius_m: float
    log_likelihood: float = field(default=float("nan"))

    @property
    def n_points(self) -> int:
        return int(self.point_states.shape[0])

    @property
    def matched_fraction(self) -> float:
        return 1.0 - len(self.unmatched_points) / max(self.n_points, 1)

    def summary(self) -> dict[str, object]:
        """JSON-ready figures (no arrays)."""
        d = self.point_distances_m[np.isfinite(self.point_distances_m)]
        return {
            "trace_id": self.trace_id, "n_points": self.n_points, "n_states": int(self.states.size),
            "n_unmatched": len(self.unmatched_points), "breaks": list(self.breaks),
            "sigma_m": self.sigma_m, "beta_m": self.beta_m, "search_radius_m": self.search_radius_m,
            "max_point_distance_m": float(d.max()) if d.size else None,
            "median_point_distance_m": float(np.median(d)) if d.size else None,
        }


class MapMatcher:
    """Match GPS traces onto ``net`` (see the module docstring for the model).

    Parameters
    ----------
    sigma_m, beta_m, search_radius_m, backtrack_m, min_spacing_m:
        Model parameters in metres; ``None`` = derived per trace (module docstring).
    max_candidates:
        Candidates kept per point (nearest first); both directions of a street count.
        12 rather than 8 matters at 30 m noise in towns (recall 98.4 -> 98.7 %).
    uturn_penalty_m:
        Extra metres per U-turn in route distances (0 = plain Newson & Krumm).
    max_points:
        Longer traces raise :class:`InvalidTraceError` (``"too_many_points"``) at once
        rather than tying up a worker: split them with ``split_trips(max_points=...)``.
    """

    def __init__(
        self,
        net: RoadNetwork,
        sigma_m: float | None = None,
        beta_m: float | None = None,
        search_radius_m: float | None = None,
        max_candidates: int = 12,
        max_points: int | None = 20_000,
        backtrack_m: float | None = None,
        uturn_penalty_m: float = 100.0,
        min_spacing_m: float | None = None,
    ) -> None:
        for name, val in (("sigma_m", sigma_m), ("beta_m", beta_m), ("search_radius_m", search_radius_m),
                          ("backtrack_m", backtrack_m), ("min_spacing_m", min_spacing_m)):
            if val is not None and not (np.isfinite(val) and val > 0):
                raise ValueError(f"{name} must be a positive number or None, got {val!r}")
        if max_candidates < 1:
            raise ValueError(f"max_candidates must be >= 1, got {max_candidates}")
        self.net = net
        self.sigma_m = sigma_m
        self.beta_m = beta_m
        self.search_radius_m = search_radius_m
        self.max_candidates = int(max_candidates)
        self.max_points = max_points
        self.backtrack_m = backtrack_m
        self.uturn_penalty_m = float(uturn_penalty_m)
        self.min_spacing_m = min_spacing_m
        self._router = net.router(self.uturn_penalty_m)

    # ------------------------------------------------------------------ public
    def match(self, trace: Trace) -> MatchResult:
        """Match one trace; raises :class:`InvalidTraceError` or :class:`MapMatchingError` with a ``reason``."""
        if not isinstance(trace, Trace):
            raise TypeError(f"match() takes a Trace, got {type(trace).__name__}")
        trace.validate(max_points=self.max_points, min_points=2)
        net = self.net
        n = len(trace)
        xy = net.projection.forward(trace.points)
        prefetch = self.search_radius_m or _MAX_PREFETCH_RADIUS_M
        pi, si, d, off_all = self._prefetch(xy, prefetch)
        if pi.size == 0:
            raise MapMatchingError(
                f"trace {trace.trace_id!r}: no point within {prefetch:g} m of a routable road", "off_network",
                trace.trace_id,
            )
        nearest = np.full(n, np.inf)
        np.minimum.at(nearest, pi, d)
        sigma = self.sigma_m or float(np.clip(1.4826 * np.median(nearest[np.isfinite(nearest)]), 3.0, 50.0))
        radius = self.search_radius_m or float(min(max(_MIN_RADIUS_M, 5.0 * sigma), prefetch))
        beta = self.beta_m or max(5.0, sigma)
        backtrack = self.backtrack_m or 6.0 * sigma

        near = d <= radius
        pi, si, d, off_all = pi[near], si[near], d[near], off_all[near]
        top = _rank_within(pi) < self.max_candidates  # candidates come sorted by point, then distance
        pi, si, d, off_all = pi[top], si[top], d[top], off_all[top]
        matched = np.unique(pi)
        unmatched = np.setdiff1d(np.arange(n), matched)
        if matched.size == 0:
            raise MapMatchingError(
                f"trace {trace.trace_id!r}: no point within {radius:g} m of a routable road", "off_network",
                trace.trace_id,
            )
        # padded candidate arrays over the matched points
        m, K = matched.size, self.max_candidates
        row = np.searchsorted(matched, pi)
        col = _rank_within(pi)
        C = np.full((m, K), -1, dtype=np.int64)
        C[row, col] = si
        dist = np.full((m, K), np.inf)
        dist[row, col] = d
        off = np.zeros((m, K))
        off[row, col] = off_all
        emis = np.where(C >= 0, -0.5 * (dist / sigma) ** 2, -np.inf)

        # fixes close to the previous one add noise, not information (see the module docstring)
        spacing = self.min_spacing_m
        if spacing is None:
            steps = np.hypot(*np.diff(xy[matched], axis=0).T)
            dense = steps.size > 0 and float(np.median(steps)) < 4.0 * sigma
            spacing = (6.0 if dense else 2.0) * sigma
        kept = _thin(xy[matched], spacing)
        choice, breaks, loglik = self._viterbi(C[kept], off[kept], emis[kept], trace.points[matched[kept]], beta,
                                               backtrack)
        states_k, offs_k, dist_k = C[kept, choice], off[kept, choice], dist[kept, choice]
        path, index_k = self._connect(states_k, offs_k, backtrack)
        path, index_k = self._trim_ends(path, index_k, states_k, offs_k, dist_k, xy[matched[kept]], sigma)
        path_index = np.full(m, -1, dtype=np.int64)
        path_index[kept] = index_k
        states_pts = np.full(m, -1, dtype=np.int64)
        states_pts[kept] = states_k
        offs_pts, dist_pts = np.zeros(m), np.zeros(m)
        offs_pts[kept], dist_pts[kept] = offs_k, dist_k
        if kept.size < m:
            self._place_thinned(path, kept, path_index, states_pts, offs_pts, dist_pts, xy[matched])

        point_states = np.full(n, -1, dtype=np.int64)
        point_states[matched] = states_pts
        point_index = np.full(n, -1, dtype=np.int64)
        point_index[matched] = path_index
        pdist = np.full(n, np.nan)
        pdist[matched] = dist_pts
        poff = np.full(n, np.nan)
        poff[matched] = offs_pts
        if unmatched.size:
            logger.info("trace %s: %d of %d points match no road", trace.trace_id, unmatched.size, n)
        return MatchResult(
            trace_id=trace.trace_id, states=path, point_states=point_states, point_path_index=point_index,
            point_distances_m=pdist, point_offsets_m=poff, unmatched_points=unmatched.tolist(),
            breaks=[int(matched[kept[b]]) for b in breaks], sigma_m=sigma, beta_m=beta, search_radius_m=radius,
            log_likelihood=loglik,
        )

    def match_many(self, traces: Iterable[Trace]) -> tuple[list[MatchResult], list[TripRejection]]:
        """Match each trace; the ones that fail become :class:`TripRejection` s instead of exceptions."""
        results, rejected = [], []
        for tr in traces:
            try:
                results.append(self.match(tr))
            except (InvalidTraceError, MapMatchingError) as exc:
                rejected.append(TripRejection(tr.trace_id, exc.reason, str(exc)))
        return results, rejected

    # ------------------------------------------------------------------ internals
    def _prefetch(self, xy: np.ndarray, prefetch: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Candidates within the search radius :meth:`match` will use for this trace (or a larger one).

        With an estimated radius, ask for the smallest one (50 m) first: when every point
        has a road within it, the nearest distances, hence sigma and the radius, are already
        known, and a second query fetches exactly that radius if it is larger. That spares
        the geometry of the (250 m / radius)^2 times more segment pieces a full prefetch
        would touch: short query traces with ordinary GPS noise match about twice as fast.
        The candidates are exactly those a 250 m query gives within the radius, hairpin
        arms included (``RoadNetwork.candidates`` does not depend on the radius asked for).
        """
        net = self.net
        if self.search_radius_m is not None or prefetch <= _MIN_RADIUS_M:
            return net.candidates(xy, prefetch, per_state="local")
        found = net.candidates(xy, _MIN_RADIUS_M, per_state="local")
        if np.unique(found[0]).size < xy.shape[0]:  # some point's nearest road is farther: estimate from all
            return net.candidates(xy, prefetch, per_state="local")
        nearest = np.full(xy.shape[0], np.inf)
        np.minimum.at(nearest, found[0], found[2])
        sigma = self.sigma_m or float(np.clip(1.4826 * np.median(nearest), 3.0, 50.0))
        radius = min(max(_MIN_RADIUS_M, 5.0 * sigma), prefetch)
        return found if radius <= _MIN_RADIUS_M else net.candidates(xy, radius, per_state="local")

    def _transition_bounds(
        self, Ca: np.ndarray, Cb: np.ndarray, offa: np.ndarray, offb: np.ndarray, gc: np.ndarray, beta: float,
        backtrack: float, margin: float, search_m: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Log transition probabilities from the candidates ``Ca[s]`` to ``Cb[s]`` of each step, ``(s, K, K)``.

        Returns ``(logp, upper)``: ``logp`` is ``-inf`` for no route, a route ``margin`` m
        longer than ``gc``, or one the searches, which stop about ``search_m`` m beyond
        ``gc``, did not reach; ``upper`` bounds the true value of those (``== logp`` elsewhere).
        """
        L = self.net.segment_length_m
        A, B = Ca[:, :, None], Cb[:, None, :]
        OA, OB = offa[:, :, None], offb[:, None, :]
        A, B, OA, OB = np.broadcast_arrays(A, B, OA, OB)
        G = np.broadcast_to(gc[:, None, None], A.shape)
        valid = (A >= 0) & (B >= 0)
        route = np.full(A.shape, np.inf)
        same = valid & (A == B)
        delta = OB[same] - OA[same]
        route[same] = np.where(delta >= -backtrack, np.abs(delta), np.inf)
        other = valid & (A != B)
        a, b = A[other], B[other]
        bound = np.full(A.shape, np.inf)  # a lower bound on the routes not found
        if a.size:
            ends = (L[a] - OA[other]) - L[b] + OB[other]  # route = ends + dab
            # route <= gc + search_m  <=>  dab <= gc + search_m - ends: no need to search farther
            dab, reach = self._router.pair_distances_reached(a, b, limit_m=G[other] + search_m - ends)
            route[other] = ends + dab
            bound[other] = np.where(np.isfinite(dab), np.inf, ends + reach)
        with np.errstate(invalid="ignore"):
            logp = -np.abs(route - G) / beta
            upper = -(bound - G) / beta
        logp[~np.isfinite(route) | (route - G > margin)] = -np.inf
        upper[~np.isfinite(bound) | (bound - G > margin)] = -np.inf
        return logp, np.maximum(logp, upper)

    def _viterbi(
        self, C: np.ndarray, off: np.ndarray, emis: np.ndarray, lonlat: np.ndarray, beta: float, backtrack: float
    ) -> tuple[np.ndarray, list[int], float]:
        m, K = C.shape
        gc = haversine_m(lonlat[:-1], lonlat[1:])
        margin = max(_ROUTE_MARGIN_M, _ROUTE_MARGIN_BETAS * beta)
        chunk = max(1, 200_000 // (K * K))  # bounded memory for long traces
        if self._router.dense:  # complete rows: every route is known at once

            def steps() -> Iterator[np.ndarray]:
                for c0 in range(0, m - 1, chunk):
                    c1 = min(m - 1, c0 + chunk)
                    yield from self._transition_bounds(C[c0:c1], C[c0 + 1 : c1 + 1], off[c0:c1], off[c0 + 1 : c1 + 1],
                                                       gc[c0:c1], beta, backtrack, margin, margin)[0]

            scores, back, is_break = _forward(steps(), emis)
        else:
            scores, back, is_break = self._bounded_forward(C, off, emis, gc, beta, backtrack, margin)
        # backtrack, piece by piece (a break starts a new piece)
        choice = np.empty(m, dtype=np.int64)
        k = int(np.argmax(scores[m - 1]))
        loglik = float(scores[m - 1, k])
        for t in range(m - 1, -1, -1):
            choice[t] = k
            if t == 0:
                break
            if is_break[t]:
                k = int(np.argmax(scores[t - 1]))
                loglik += float(scores[t - 1, k])
            else:
                k = int(back[t, k])
        return choice, np.flatnonzero(is_break).tolist(), loglik

    def _bounded_forward(
        self, C: np.ndarray, off: np.ndarray, emis: np.ndarray, gc: np.ndarray, beta: float, backtrack: float,
        margin: float,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The Viterbi forward pass from short searches, certified equal to the one with ``margin``-long searches.

        Routes are searched ``max(500 m, 25 beta)`` beyond the great-circle distance; a pair
        not reached gets an upper bound on its log probability. After a forward pass over
        the known pairs, upper bounds of every path's prefix and suffix show which unknown
        pairs could lie on a better path (or bridge a break); only their steps are searched
        again, with the whole margin, and the pass is redone until no such pair is left.
        """
        m, K = C.shape
        first = min(margin, max(_FIRST_MARGIN_M, _FIRST_MARGIN_BETAS * beta))
        logp = np.empty((m - 1, K, K))
        upper = np.empty((m - 1, K, K))
        chunk = max(1, 200_000 // (K * K))
        for c0 in range(0, m - 1, chunk):
            c1 = min(m - 1, c0 + chunk)
            logp[c0:c1], upper[c0:c1] = self._transition_bounds(
                C[c0:c1], C[c0 + 1 : c1 + 1], off[c0:c1], off[c0 + 1 : c1 + 1], gc[c0:c1], beta, backtrack, margin,
                first,
            )
        while True:
            scores, back, is_break = _forward(iter(logp), emis)
            redo = _uncertain_steps(logp, upper, emis, scores, is_break)
            if not redo.size:
                return scores, back, is_break
            for c0 in range(0, redo.size, chunk):
                s = redo[c0 : c0 + chunk]
                logp[s], _ = self._transition_bounds(C[s], C[s + 1], off[s], off[s + 1], gc[s], beta, backtrack,
                                                     margin, margin)
                upper[s] = logp[s]  # a pair not found now is beyond the margin: no transition

    def _place_thinned(
        self, path: np.ndarray, kept: np.ndarray, index: np.ndarray, states: np.ndarray, offsets: np.ndarray,
        dists: np.ndarray, xy: np.ndarray,
    ) -> None:
        """Put each thinned-out point on the nearest path segment between its kept neighbours (in place)."""
        m = index.size
        drop = np.setdiff1d(np.arange(m), kept)
        nxt = np.searchsorted(kept, drop)  # kept[0] == 0 and kept[-1] == m - 1: both neighbours exist
        lo, hi = index[kept[nxt - 1]], index[kept[nxt]]
        counts = hi - lo + 1
        owner = np.repeat(np.arange(drop.size), counts)
        pos = np.repeat(lo, counts) + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        d = shapely.distance(shapely.points(xy[drop][owner]), self.net._lines[path[pos]])
        order = np.lexsort((pos, d, owner))  # per point: nearest, then earliest
        first = np.r_[True, owner[order][1:] != owner[order][:-1]]
        best = np.empty(drop.size, dtype=np.int64)
        best[owner[order][first]] = pos[order][first]
        index[drop] = best
        index[:] = np.maximum.accumulate(index)  # points never go back along the path
        states[drop] = path[index[drop]]
        dists[drop] = shapely.distance(shapely.points(xy[drop]), self.net._lines[states[drop]])
        offsets[drop] = self.net.offsets_m(xy[drop], states[drop])

    def _trim_ends(
        self, path: np.ndarray, index: np.ndarray, states: np.ndarray, offsets: np.ndarray, dists: np.ndarray,
        xy: np.ndarray, trim_m: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Drop a first (last) segment on which the trace covers less than ``trim_m`` metres at its end (start).

        A trip that starts at a junction puts its first fix at the end of *some*
        incoming segment; keeping that segment would make it the origin. The points
        move to the next (previous) segment's start (end); arrays are updated in place.
        """
        L = self.net.segment_length_m
        if path.size > 1:
            first = index == 0
            if np.all(L[path[0]] - offsets[first] < trim_m):
                path, index = path[1:], np.maximum(index - 1, 0)
                states[first], offsets[first] = path[0], 0.0
                dists[first] = _reassign(self.net, int(path[0]), xy[first])
        if path.size > 1:
            last = index == path.size - 1
            if np.all(offsets[last] < trim_m):
                path = path[:-1]
                index = np.minimum(index, path.size - 1)
                states[last], offsets[last] = path[-1], L[path[-1]]
                dists[last] = _reassign(self.net, int(path[-1]), xy[last])
        return path, index

    def _connect(self, states: np.ndarray, offsets: np.ndarray, backtrack: float) -> tuple[np.ndarray, np.ndarray]:
        """Join the per-point states into one path; return it and each point's index in it."""
        router = self._router
        path = [int(states[0])]
        index = np.empty(states.size, dtype=np.int64)
        index[0] = 0
        for i in range(1, states.size):
            a, b = int(states[i - 1]), int(states[i])
            if a == b and offsets[i] >= offsets[i - 1] - backtrack:
                index[i] = len(path) - 1
                continue
            # a == b here means it went round a loop back onto the same segment
            seg = _loop_path(self.net, router, a) if a == b else router.shortest_path(a, b)
            path.extend(int(s) for s in seg[1:])
            index[i] = len(path) - 1
        return np.asarray(path, dtype=np.int64), index


def _forward(steps: Iterator[np.ndarray], emis: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Viterbi forward pass over ``(K, K)`` log transition matrices: scores, back pointers and breaks per point."""
    m, K = emis.shape
    back = np.zeros((m, K), dtype=np.int64)
    scores = np.empty((m, K))
    is_break = np.zeros(m, dtype=bool)
    score = emis[0].copy()
    scores[0] = score
    cols = np.arange(K)
    for t, trans in enumerate(steps, start=1):
        cand = score[:, None] + trans
        best = np.argmax(cand, axis=0)
        new = cand[best, cols] + emis[t]
        if not np.isfinite(new).any():  # nothing reachable: restart the chain here
            is_break[t] = True
            new = emis[t].copy()
        else:
            back[t] = best
        score = new
        scores[t] = score
    return scores, back, is_break


def _uncertain_steps(
    logp: np.ndarray, upper: np.ndarray, emis: np.ndarray, scores: np.ndarray, is_break: np.ndarray
) -> np.ndarray:
    """Steps with a pair not searched far enough that could beat the best path found (or bridge one of its breaks).

    A path through the unknown pair ``a -> b`` of step ``t`` scores at most the best upper
    bound of a prefix ending at ``a`` + the pair's bound + the best bound of a suffix from
    ``b``; if that is below the best found path of the piece (between breaks), the pair
    cannot change the result.
    """
    unknown = upper > logp
    if not unknown.any():
        return np.zeros(0, dtype=np.int64)
    m, K = emis.shape
    prefix = np.empty((m, K))
    prefix[0] = emis[0]
    for t in range(1, m):
        prefix[t] = emis[t] if is_break[t] else np.max(prefix[t - 1][:, None] + upper[t - 1], axis=0) + emis[t]
    suffix = np.zeros((m, K))
    for t in range(m - 2, -1, -1):
        if not is_break[t + 1]:
            suffix[t] = np.max(upper[t] + (emis[t + 1] + suffix[t + 1])[None, :], axis=1)
    # the best path found in each piece, for every point of it
    starts = np.flatnonzero(np.r_[True, is_break[1:]])
    ends = np.r_[starts[1:] - 1, m - 1]
    best = np.repeat(scores[ends].max(axis=1), ends - starts + 1)
    with np.errstate(invalid="ignore"):
        through = prefix[:-1, :, None] + upper + (emis[1:] + suffix[1:])[:, None, :]
    beats = (unknown & (through >= best[1:, None, None])).any(axis=(1, 2))
    bridges = (unknown & np.isfinite(prefix[:-1])[:, :, None] & np.isfinite(upper)).any(axis=(1, 2))
    return np.flatnonzero(np.where(is_break[1:], bridges, beats))


def _thin(xy: np.ndarray, min_m: float, chunk: int = 256) -> np.ndarray:
    """Indices of projected points kept at least ``min_m`` apart (see :func:`thin_indices`)."""
    return thin_indices(xy, min_m, planar_m, chunk)


def _reassign(net: RoadNetwork, state: int, xy: np.ndarray) -> np.ndarray:
    """Distance from projected points to a state's segment (used when end points move to a neighbour)."""
    return shapely.distance(shapely.points(xy), net._lines[state])


def _loop_path(net: RoadNetwork, router: Router, a: int) -> np.ndarray:
    """Shortest cycle from ``a`` back to ``a`` (via its best successor)."""
    _, succ = net.mdp.successors(a)
    best, best_len = None, np.inf
    for s in succ:
        p = router.shortest_path(int(s), a)
        length = net.segment_length_m[p].sum()
        if length < best_len:
            best, best_len = p, length
    if best is None:
        return np.array([a])
    return np.concatenate([[a], best])
