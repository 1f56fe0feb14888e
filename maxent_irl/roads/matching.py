"""HMM map matching (Newson & Krumm 2009) onto the segments of a RoadNetwork, for sparse fixes and 1 Hz GPS alike.

The model, per trace:

* Candidates: every segment within ``search_radius_m`` of a point (each local minimum
  of the distance along it, so a point between the arms of a hairpin gets both), the
  ``max_candidates`` nearest; and, for a point farther than max(3 sigma, 20 m) from every
  road, an *off-road* candidate (the car may be where the map has no road: a car park,
  a road missing from the map, a GPS excursion).
* Emission: Gaussian in the distance to the segment, ``sigma_m``; the off-road candidate
  scores as a road at that threshold distance would.
* Transition: exponential in ``|route distance - great-circle distance|``, ``beta_m``
  (Newson & Krumm). Routes follow one-ways and the MDP's turns; each U-turn counts
  ``uturn_penalty_m`` extra metres (without it, 30 m noise made the matcher detour into
  side streets and U-turn back: 3.7x the true number of U-turns, 1.4x with 100 m). Moving
  backwards on a segment by up to ``backtrack_m`` is GPS jitter at a standstill (route 0);
  farther, no route. A route is *no transition* if it is implausible: longer than twice
  the fixes' distance + 500 m, or, with timestamps, than ``max_speed_kmh`` x the elapsed
  time + 2 search radii of position noise (+ one U-turn penalty) -- as Meili's time and
  distance factors or FMM's speed bound do. The off-road candidate is left and entered at
  a fixed cost (e^-5 each), with no route.
* Decoding: Viterbi. Where no candidate can continue from the previous point, the match
  splits into *pieces* (``MatchResult.pieces``) rather than inventing a path. Points whose
  best explanation is off-road leave the chain: if a route about as long as the straight
  line (within 2 search radii) joins the points on either side, they were *outliers* and
  that route is kept; otherwise the car left the mapped roads and the match splits there.
  A split that leaving out one or two points bridges the same way is bridged (outliers).
  On the Kubicka drives (``benchmarks/bench_kubicka.py``) this is where the matcher
  without either went wrong most: roads missing from the map and drives through car
  parks, forced onto detours of 0.2 to 2 km.
* Confidence: forward-backward on the same HMM, per piece. A point's confidence is the
  posterior probability that it is where the match puts it, up to the GPS noise: the
  summed posterior of its candidates on the matched path within 2 sigma of the chosen one
  (so the end of one segment and the start of the next, at a junction, are one place;
  the other direction of a two-way street, or a parallel road, is another). A piece's
  and the match's confidence is the mean over their points: the expected share of points
  placed right. On the Kubicka drives 99.9 % of the points with confidence >= 0.99 (93 %
  of all) lie on the true route, 63 % of those below 0.5 (0.4 %).

Defaults are estimated per trace when not given: ``sigma_m`` as Newson & Krumm do,
``1.4826 * median`` distance of the points to their nearest segment (points with none
within the search count as far; clipped to 3..50 m), the search radius as
``max(50 m, 5 sigma)``, ``beta_m = max(5 m, sigma)``, the backtracking allowance
``backtrack_m = 6 sigma`` and the thinning distance ``min_spacing_m``: as in Newson &
Krumm, fixes closer than that to the previous kept one are left out of the HMM and placed
on the matched path afterwards. Their 2 sigma is kept for sparse traces (median step >=
4 sigma); dense ones get 6 sigma, because a small spacing then keeps exactly the fixes
whose noise points away from the last one, backwards or sideways, and the matcher invents
spurs and U-turns: at 1 Hz with 30 m noise, precision (share of the matched length on the
true route) is 0.45 with 2 sigma, 0.70 with 4 sigma, 0.93 with 6 sigma. On sparse traces
6 sigma would drop informative fixes in dense street grids (recall at 10 s / 30 m: 0.984
-> 0.971). Finally a piece's first (last) segment on which its points cover less than
3 sigma is dropped (within the noise of not driven at all): a trip starting at a junction
must not get the incoming street as its origin.

Route searches run on the part of the network near each run of a few hundred metres of
the trace (:mod:`maxent_irl.roads.corridor`, exact within the step limits), so their cost
follows the trace, not the network. On a small network (complete router rows fit in
memory) candidates already seen in earlier traces get complete rows instead, cached for
good: the steady state of a service matching trace after trace. Steps allowing routes
beyond 3 km (data gaps) search the whole network, bounded.

Points with no segment within the search radius are ``off_network`` in
``MatchResult.point_reason`` and skipped; a trace none of whose points match raises
:class:`MapMatchingError` (``reason="off_network"``). Traces without times work: only the
speed bound needs them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely

from maxent_irl.roads.corridor import CorridorWindow, window_distances
from maxent_irl.roads.exceptions import InvalidTraceError, MapMatchingError
from maxent_irl.roads.geo import haversine_m
from maxent_irl.roads.hmm import posteriors, viterbi
from maxent_irl.roads.network import RoadNetwork, _rank_within
from maxent_irl.roads.trace import Trace, TripRejection

__all__ = ["POINT_REASONS", "MapMatcher", "MatchPiece", "MatchResult"]

logger = logging.getLogger(__name__)

#: Why a point of a trace is not matched (``MatchResult.point_reason``).
POINT_REASONS: tuple[str, ...] = (
    "off_network",  # no road within the search radius, or among points that left the mapped roads (a break)
    "outlier",  # off the road its neighbours follow (a GPS error): the route passes it by
)

_MAX_PREFETCH_RADIUS_M = 250.0
#: The smallest search radius the per-trace estimate can give (``max(50 m, 5 sigma)``).
_MIN_RADIUS_M = 50.0
#: Without times, a route longer than _UNTIMED_FACTOR x the fixes' distance + _UNTIMED_MARGIN_M is no transition.
_UNTIMED_FACTOR = 2.0
_UNTIMED_MARGIN_M = 500.0
#: Steps that allow routes longer than this are searched on the whole network (bounded Router), not a corridor.
_LONG_STEP_M = 3000.0
#: A corridor window spans about this much of the trace (and at most _WINDOW_STEPS steps).
_WINDOW_M = 300.0
_WINDOW_STEPS = 256
_WINDOW_LIMIT_RATIO = 1.5
#: At most this many consecutive points are left out as outliers to bridge one break.
_MAX_SKIP = 2
#: ... and only if the route then joining its neighbours is at most this many search radii longer than the line.
_BRIDGE_SLACK_RADII = 2.0
#: A point farther than this many sigmas, and _OFF_ROAD_MIN_M, from every road may be off the mapped roads (the
#: "off-road" candidate). The floor: roads are mapped as centre lines, and a wide one puts a car on its outer lane
#: 10-15 m from it however precise the GPS.
_OFF_ROAD_SIGMAS = 3.0
_OFF_ROAD_MIN_M = 20.0
#: Log probability of leaving the roads for the off-road candidate, and of coming back onto them.
_OFF_ROAD_SWITCH = -5.0
#: A candidate whose emission is this much below its point's nearest road's is dropped (it would need a route
#: e^25 likelier than the nearest road's to be chosen); it spares route searches on 1 Hz traces in dense towns.
_PRUNE_NATS = 25.0
#: Candidates within this many sigmas along the matched path of the chosen one are one place (point confidence).
_PLACE_SIGMAS = 2.0
#: A piece's first (last) segment on which its points cover less than this many sigmas is dropped.
_TRIM_SIGMAS = 3.0


@dataclass(frozen=True, eq=False)
class MatchPiece:
    """One connected part of a match: no plausible route joins it to the next piece.

    ``states`` is a connected path of ``net.mdp``; ``points`` the (sorted) indices of the
    input points matched onto it; ``confidence`` the mean of their ``point_confidence``;
    ``length_m`` the distance travelled along ``states`` from the first point's position
    to the last one's; ``log_likelihood`` the HMM log probability of the piece's best path.
    """

    states: np.ndarray
    points: np.ndarray
    confidence: float
    length_m: float
    log_likelihood: float

    @property
    def first_point(self) -> int:
        return int(self.points[0])

    @property
    def last_point(self) -> int:
        return int(self.points[-1])

    def to_dict(self) -> dict[str, Any]:
        return {
            "states": self.states.tolist(), "first_point": self.first_point, "last_point": self.last_point,
            "n_points": int(self.points.size), "confidence": self.confidence, "length_m": self.length_m,
            "log_likelihood": self.log_likelihood,
        }


@dataclass(frozen=True, eq=False)
class MatchResult:
    """A trace matched onto the network.

    The match is ``pieces``: connected paths, split where no plausible route joins
    consecutive points (``breaks`` lists the first input point of every piece but the
    first). ``states`` joins the pieces into one path of ``net.mdp`` with the shortest
    routes between them, as earlier versions did (only pieces no route at all joins,
    on a network built with ``strongly_connected=False``, follow each other unjoined).

    Per input point ``i``: ``point_states[i]`` its segment (``-1`` if unmatched),
    ``point_piece[i]`` its piece, ``point_path_index[i]`` the position of its segment in
    ``states``, ``point_distances_m[i]`` the distance to it, ``point_offsets_m[i]`` the
    position along it, ``point_lonlat[i]`` that position, ``point_confidence[i]`` the
    posterior probability (forward-backward) that the point is there, up to the GPS noise
    (``nan`` / ``-1`` if unmatched; module docstring), and ``point_reason[i]`` why it is not
    matched (one of :data:`POINT_REASONS`; ``None`` if matched). ``confidence`` is the mean
    ``point_confidence`` of the matched points: the expected share of them the model placed
    right. ``used_times``: the trace's timestamps bounded the routes' speeds.
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
    pieces: tuple[MatchPiece, ...] = ()
    point_piece: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    point_lonlat: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    point_confidence: np.ndarray = field(default_factory=lambda: np.zeros(0))
    point_reason: tuple[str | None, ...] = ()
    confidence: float = field(default=float("nan"))
    used_times: bool = False

    @property
    def n_points(self) -> int:
        return int(self.point_states.shape[0])

    @property
    def matched_fraction(self) -> float:
        return 1.0 - len(self.unmatched_points) / max(self.n_points, 1)

    def summary(self) -> dict[str, object]:
        """JSON-ready figures (no arrays)."""
        d = self.point_distances_m[np.isfinite(self.point_distances_m)]
        reasons = [r for r in self.point_reason if r is not None]
        return {
            "trace_id": self.trace_id, "n_points": self.n_points, "n_states": int(self.states.size),
            "n_unmatched": len(self.unmatched_points), "breaks": list(self.breaks), "n_pieces": len(self.pieces),
            "unmatched_reasons": {r: reasons.count(r) for r in sorted(set(reasons))},
            "confidence": self.confidence, "used_times": self.used_times,
            "sigma_m": self.sigma_m, "beta_m": self.beta_m, "search_radius_m": self.search_radius_m,
            "max_point_distance_m": float(d.max()) if d.size else None,
            "median_point_distance_m": float(np.median(d)) if d.size else None,
        }


@dataclass
class _Chain:
    """The HMM over the kept points: candidates, emissions, transitions, and where each step's routes came from."""

    kept: np.ndarray  # indices into the matched points
    C: np.ndarray
    off: np.ndarray
    dist: np.ndarray
    emis: np.ndarray
    logp: np.ndarray  # (m - 1, K, K)
    window: list[CorridorWindow | None]  # per step; None: searched on the whole network
    cut: np.ndarray  # (m - 1,) bool: steps across points left out off the roads, with no route (a break by design)


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
    max_speed_kmh:
        With timestamps, a route implying more than this speed (beyond the position
        noise allowance) is no transition.
    use_times:
        False: ignore timestamps (match as if the trace had none).
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
        max_speed_kmh: float = 200.0,
        use_times: bool = True,
    ) -> None:
        for name, val in (("sigma_m", sigma_m), ("beta_m", beta_m), ("search_radius_m", search_radius_m),
                          ("backtrack_m", backtrack_m), ("min_spacing_m", min_spacing_m)):
            if val is not None and not (np.isfinite(val) and val > 0):
                raise ValueError(f"{name} must be a positive number or None, got {val!r}")
        if max_candidates < 1:
            raise ValueError(f"max_candidates must be >= 1, got {max_candidates}")
        if not (np.isfinite(max_speed_kmh) and max_speed_kmh > 0):
            raise ValueError(f"max_speed_kmh must be a positive number, got {max_speed_kmh!r}")
        if not (np.isfinite(uturn_penalty_m) and uturn_penalty_m >= 0):
            raise ValueError(f"uturn_penalty_m must be a non-negative number, got {uturn_penalty_m!r}")
        self.net = net
        self.sigma_m = sigma_m
        self.beta_m = beta_m
        self.search_radius_m = search_radius_m
        self.max_candidates = int(max_candidates)
        self.max_points = max_points
        self.backtrack_m = backtrack_m
        self.uturn_penalty_m = float(uturn_penalty_m)
        self.min_spacing_m = min_spacing_m
        self.max_speed_kmh = float(max_speed_kmh)
        self.use_times = bool(use_times)
        self._router = net.router(self.uturn_penalty_m)

    # ------------------------------------------------------------------ public
    def match(self, trace: Trace) -> MatchResult:
        """Match one trace; raises :class:`InvalidTraceError` or :class:`MapMatchingError` with a ``reason``."""
        if not isinstance(trace, Trace):
            raise TypeError(f"match() takes a Trace, got {type(trace).__name__}")
        trace.validate(max_points=self.max_points, min_points=2)
        xy = self.net.projection.forward(trace.points)
        matched, C, off, dist, emis, p = self._candidates(trace, xy)
        xy_m, lonlat_m = xy[matched], trace.points[matched]
        # fixes close to the previous one add noise, not information (see the module docstring)
        spacing = self.min_spacing_m
        if spacing is None:
            steps = np.hypot(*np.diff(xy_m, axis=0).T)
            dense = steps.size > 0 and float(np.median(steps)) < 4.0 * p.sigma
            spacing = (6.0 if dense else 2.0) * p.sigma
        chain = self._chain(_thin(xy_m, spacing), C, off, dist, emis, xy_m, lonlat_m, p)
        self._router.mark_seen(np.unique(chain.C[chain.C >= 0]))  # later traces: complete rows (see _transitions)
        choice, is_break, piece_ll, outliers, off_map = self._decode(chain, C, off, dist, emis, xy_m, lonlat_m, p)
        post = posteriors(chain.emis, chain.logp, is_break)
        pl = self._pieces(chain, choice, is_break, post, xy_m, p)
        dropped = np.zeros(matched.size, dtype=bool)
        dropped[outliers + off_map] = True
        self._place_thinned(pl.paths, chain.kept, pl.piece, pl.index, pl.state, pl.off, pl.dist, pl.conf, dropped,
                            xy_m)
        outliers = sorted(outliers + _far_thinned(chain.kept, pl, dropped, p.off_road_m).tolist())
        pl.piece[outliers] = -1
        return self._result(trace, matched, pl, piece_ll, outliers, p)

    def _candidates(
        self, trace: Trace, xy: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, _Params]:
        """The points with a road near, their padded candidates (off-road last), emissions and the trace's parameters.

        Returns ``(matched, C, off, dist, emis, params)``: ``C[i, k]`` the state of candidate
        ``k`` of matched point ``i`` (``-1``: padding, or the off-road candidate, the last
        column), its offset along the segment and distance, and log emission probability.
        """
        n = len(trace)
        prefetch = self.search_radius_m or _MAX_PREFETCH_RADIUS_M
        pi, si, d, off_all = self._prefetch(xy, prefetch)
        if pi.size == 0:
            raise MapMatchingError(
                f"trace {trace.trace_id!r}: no point within {prefetch:g} m of a routable road", "off_network",
                trace.trace_id,
            )
        nearest = np.full(n, np.inf)
        np.minimum.at(nearest, pi, d)
        sigma = self.sigma_m or _estimate_sigma(nearest)
        radius = self.search_radius_m or float(min(max(_MIN_RADIUS_M, 5.0 * sigma), prefetch))
        # within the radius, and not hopeless next to the point's nearest road (emission _PRUNE_NATS lower)
        near = (d <= radius) & (0.5 * ((d / sigma) ** 2 - (nearest[pi] / sigma) ** 2) <= _PRUNE_NATS)
        pi, si, d, off_all = pi[near], si[near], d[near], off_all[near]
        top = _rank_within(pi) < self.max_candidates  # candidates come sorted by point, then distance
        pi, si, d, off_all = pi[top], si[top], d[top], off_all[top]
        matched = np.unique(pi)
        if matched.size == 0:
            raise MapMatchingError(
                f"trace {trace.trace_id!r}: no point within {radius:g} m of a routable road", "off_network",
                trace.trace_id,
            )
        # padded candidate arrays over the matched points, and the off-road candidate last
        m, K = matched.size, int(_rank_within(pi).max()) + 2
        row, col = np.searchsorted(matched, pi), _rank_within(pi)
        C = np.full((m, K), -1, dtype=np.int64)
        C[row, col] = si
        dist = np.full((m, K), np.inf)
        dist[row, col] = d
        off = np.zeros((m, K))
        off[row, col] = off_all
        emis = np.where(C >= 0, -0.5 * (dist / sigma) ** 2, -np.inf)
        off_road_m = max(_OFF_ROAD_SIGMAS * sigma, _OFF_ROAD_MIN_M)
        emis[:, -1] = np.where(dist[:, 0] > off_road_m, -0.5 * (off_road_m / sigma) ** 2, -np.inf)
        times = trace.times[matched] if (self.use_times and trace.times is not None) else None
        params = _Params(sigma=sigma, radius=radius, beta=self.beta_m or max(5.0, sigma),
                         backtrack=self.backtrack_m or 6.0 * sigma, times=times, trace_id=trace.trace_id,
                         off_road_m=off_road_m)
        return matched, C, off, dist, emis, params

    def _pieces(
        self, chain: _Chain, choice: np.ndarray, is_break: np.ndarray, post: np.ndarray, xy: np.ndarray, p: _Params
    ) -> _Placed:
        """Per piece of the decoded chain, a connected path; the kept points' places on it and confidence."""
        m = xy.shape[0]
        rows = np.arange(chain.kept.size)
        states, offs, dists = chain.C[rows, choice], chain.off[rows, choice], chain.dist[rows, choice]
        pl = _Placed([], np.full(m, -1, dtype=np.int64), np.full(m, -1, dtype=np.int64),
                     np.full(m, -1, dtype=np.int64), np.zeros(m), np.zeros(m), np.zeros(m))
        starts = np.flatnonzero(np.r_[True, is_break[1:]])
        ends = np.r_[starts[1:], chain.kept.size]
        steps = self._step_paths(chain, states, is_break)
        for q, (a, b) in enumerate(zip(starts, ends, strict=True)):
            path, idx = _assemble(states[a:b], steps[a : b - 1])
            ks = chain.kept[a:b]
            pl.conf[ks] = _location_confidence(post[a:b], chain.C[a:b], chain.off[a:b], choice[a:b], path, idx,
                                               self.net.segment_length_m, _PLACE_SIGMAS * p.sigma)
            st, of, di = states[a:b].copy(), offs[a:b].copy(), dists[a:b].copy()
            path, idx = self._trim_ends(path, idx, st, of, di, xy[ks], _TRIM_SIGMAS * p.sigma)
            pl.paths.append(path)
            pl.piece[ks], pl.index[ks], pl.state[ks], pl.off[ks], pl.dist[ks] = q, idx, st, of, di
        return pl

    def _result(
        self, trace: Trace, matched: np.ndarray, pl: _Placed, piece_ll: np.ndarray, outliers: list[int], p: _Params
    ) -> MatchResult:
        """The pieces, joined into ``states`` as before, and the per-point arrays over all input points."""
        net, n, L = self.net, len(trace), self.net.segment_length_m
        ok = pl.piece >= 0
        ends_off = []
        pieces = []
        for q, path in enumerate(pl.paths):
            sel = np.flatnonzero(pl.piece == q)
            first, last = pl.off[sel[pl.index[sel] == 0]].min(), pl.off[sel[pl.index[sel] == path.size - 1]].max()
            ends_off.append((first, last))
            length = last - first if path.size == 1 else L[path].sum() - first - (L[path[-1]] - last)
            pieces.append(MatchPiece(
                states=path, points=matched[sel], confidence=float(pl.conf[sel].mean()),
                length_m=float(max(length, 0.0)), log_likelihood=float(piece_ll[q]),
            ))
        joined, offsets = self._join(pl.paths, ends_off, p.backtrack)

        def spread(values: np.ndarray, fill: float, dtype: type = float) -> np.ndarray:
            out: np.ndarray = np.full(n, fill, dtype=dtype)
            out[matched[ok]] = values[ok]
            return out

        lonlat = np.full((n, 2), np.nan)
        lonlat[matched[ok]] = net.points_along(pl.state[ok], pl.off[ok])
        reason: list[str | None] = ["off_network"] * n
        for i in matched[ok]:
            reason[i] = None
        for i in matched[outliers]:
            reason[i] = "outlier"
        unmatched = [i for i, r in enumerate(reason) if r is not None]
        if unmatched:
            logger.info("trace %s: %d of %d points not matched", trace.trace_id, len(unmatched), n)
        return MatchResult(
            trace_id=trace.trace_id, states=joined, point_states=spread(pl.state, -1, np.int64),
            point_path_index=spread(np.where(ok, offsets[np.maximum(pl.piece, 0)] + pl.index, -1), -1, np.int64),
            point_distances_m=spread(pl.dist, np.nan), point_offsets_m=spread(pl.off, np.nan),
            unmatched_points=unmatched, breaks=[piece.first_point for piece in pieces[1:]], sigma_m=p.sigma,
            beta_m=p.beta, search_radius_m=p.radius, log_likelihood=float(piece_ll.sum()), pieces=tuple(pieces),
            point_piece=spread(pl.piece, -1, np.int64), point_lonlat=lonlat,
            point_confidence=spread(pl.conf, np.nan), point_reason=tuple(reason),
            confidence=float(pl.conf[ok].mean()), used_times=p.times is not None,
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

    # ------------------------------------------------------------------ candidates
    def _prefetch(self, xy: np.ndarray, prefetch: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Candidates within the search radius :meth:`match` will use for this trace (or a larger one).

        With an estimated radius, ask for the smallest one (50 m) first: when most points
        have a road within it, the median nearest distance, hence sigma and the radius, is
        already known (the others only count as farther), and a second query fetches exactly
        that radius if it is larger. That spares
        the geometry of the (250 m / radius)^2 times more segment pieces a full prefetch
        would touch: short query traces with ordinary GPS noise match about twice as fast.
        The candidates are exactly those a 250 m query gives within the radius, hairpin
        arms included (``RoadNetwork.candidates`` does not depend on the radius asked for).
        """
        net = self.net
        if self.search_radius_m is not None or prefetch <= _MIN_RADIUS_M:
            return net.candidates(xy, prefetch, per_state="local")
        found = net.candidates(xy, _MIN_RADIUS_M, per_state="local")
        nearest = np.full(xy.shape[0], np.inf)
        np.minimum.at(nearest, found[0], found[2])
        if not np.isfinite(np.median(nearest)):  # most points' nearest road is farther: estimate from a wider search
            return net.candidates(xy, prefetch, per_state="local")
        sigma = self.sigma_m or _estimate_sigma(nearest)
        radius = min(max(_MIN_RADIUS_M, 5.0 * sigma), prefetch)
        return found if radius <= _MIN_RADIUS_M else net.candidates(xy, radius, per_state="local")

    # ------------------------------------------------------------------ transitions
    def _limits(self, lonlat: np.ndarray, times: np.ndarray | None, p: _Params) -> tuple[np.ndarray, np.ndarray]:
        """Great-circle distance of each step and the longest route (U-turn penalty included) it allows."""
        gc = haversine_m(lonlat[:-1], lonlat[1:])
        lim = _UNTIMED_FACTOR * gc + _UNTIMED_MARGIN_M
        if times is not None:
            lim = np.minimum(lim, self.max_speed_kmh / 3.6 * np.diff(times) + 2.0 * p.radius)
        return gc, lim + self.uturn_penalty_m

    def _transitions(
        self, C: np.ndarray, off: np.ndarray, xy: np.ndarray, lonlat: np.ndarray, times: np.ndarray | None,
        p: _Params,
    ) -> tuple[np.ndarray, list[CorridorWindow | None]]:
        """Log transition probabilities between consecutive points' candidates, ``(m - 1, K, K)``, and windows."""
        L = self.net.segment_length_m
        s, K = C.shape[0] - 1, C.shape[1]
        gc, lim = self._limits(lonlat, times, p)
        A, B = np.broadcast_arrays(C[:-1, :, None], C[1:, None, :])
        OA, OB = np.broadcast_arrays(off[:-1, :, None], off[1:, None, :])
        valid = (A >= 0) & (B >= 0)
        route = np.full((s, K, K), np.inf)
        same = valid & (A == B)
        delta = OB[same] - OA[same]
        route[same] = np.where(delta >= -p.backtrack, np.maximum(delta, 0.0), np.inf)
        other = valid & (A != B)
        ends = np.where(other, (L[A] - OA) - L[B] + OB, 0.0)  # route = ends + dist(a, b)
        need = np.where(other, lim[:, None, None] - ends, -np.inf)
        dist = np.full((s, K, K), np.inf)
        windows: list[CorridorWindow | None] = [None] * s
        pos = np.full(self.net.n_states, -1, dtype=np.int64)  # corridor workspace
        whole = np.zeros((s, K, K), dtype=bool)  # pairs asked of the router (whole network), in one batch
        router = self._router
        for s0, s1 in _windows(gc, lim):
            ask = other[s0:s1] & (need[s0:s1] > 0)
            # the router: for a data gap (bounded searches); on a small network, complete (cached) rows for
            # candidates seen in earlier traces; on a large one, rows cached from earlier corridors, where they reach
            src, inv = np.unique(A[s0:s1][ask], return_inverse=True)
            if lim[s0] > _LONG_STEP_M or router.recurrent(src):
                whole[s0:s1] = ask
                continue
            cached = np.zeros(ask.shape, dtype=bool)
            cached[ask] = router.covered(src, _max_per(inv, need[s0:s1][ask], src.size))[inv]
            whole[s0:s1] = cached
            if cached.sum() == ask.sum():
                continue
            reach = p.radius + float(lim[s0:s1].max()) + 1.0
            if not router.dense:  # rows to cache: wide enough to hold them to every target's end (see below)
                tgt = C[s0 + 1 : s1 + 1]
                reach = (reach + float(np.max(L[tgt[tgt >= 0]] - off[s0 + 1 : s1 + 1][tgt >= 0], initial=0.0))) / 0.99
            dist[s0:s1], win = window_distances(router.graph, self.net._tree, self.net._chunk_state,
                                                xy[s0 : s1 + 1], C[s0 : s1 + 1],
                                                np.where(cached, -np.inf, need[s0:s1]), reach, pos,
                                                rows=not router.dense)
            windows[s0:s1] = [win] * (s1 - s0)
            if win.sources is not None and win.dist is not None and win.pred is not None:
                # a row is exact as far as the corridor holds every state it reaches (module corridor): states
                # whose start is within reach of a fix; from the source's end v, up to reach - |v - nearest fix|
                end = self.net._geom_xy[self.net._geom_ptr[win.sources + 1] - 1]
                gap = np.min(np.hypot(end[:, None, 0] - xy[None, s0 : s1 + 1, 0],
                                      end[:, None, 1] - xy[None, s0 : s1 + 1, 1]), axis=1)
                certified = 0.99 * (reach - gap) - 1.0
                router.store_rows(win.idx, win.sources, win.dist, win.pred, np.minimum(certified, win.limit))
                win.dist = win.pred = None  # the cache has them; the window keeps its subgraph for paths
            win.limit = max(win.limit, float(need[s0:s1][ask].max(initial=0.0)))  # paths of cached pairs too
        if whole.any():
            dist[whole] = router.pair_distances(A[whole], B[whole], limit_m=need[whole])
        route[other] = ends[other] + dist[other]
        with np.errstate(invalid="ignore"):
            logp = -np.abs(route - gc[:, None, None]) / p.beta
        logp[~(route <= lim[:, None, None])] = -np.inf
        # the off-road candidate (the last one): left and entered at a fixed cost, no route
        logp[:, :, -1] = _OFF_ROAD_SWITCH
        logp[:, -1, :] = _OFF_ROAD_SWITCH
        logp[:, -1, -1] = 0.0
        return logp, windows

    def _chain(
        self, kept: np.ndarray, C: np.ndarray, off: np.ndarray, dist: np.ndarray, emis: np.ndarray, xy: np.ndarray,
        lonlat: np.ndarray, p: _Params,
    ) -> _Chain:
        times = None if p.times is None else p.times[kept]
        logp, windows = self._transitions(C[kept], off[kept], xy[kept], lonlat[kept], times, p)
        return _Chain(kept, C[kept], off[kept], dist[kept], emis[kept], logp, windows,
                      np.zeros(kept.size - 1, dtype=bool))

    def _decode(
        self, chain: _Chain, C: np.ndarray, off: np.ndarray, dist: np.ndarray, emis: np.ndarray, xy: np.ndarray,
        lonlat: np.ndarray, p: _Params,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int], list[int]]:
        """Viterbi, until no point is off the roads and no break can be bridged by leaving points out.

        Points whose best explanation is the off-road candidate leave the chain: if a
        plausible route (about as long as the straight line) joins the points on either
        side, they were outliers and that route is the step; otherwise the car left the
        mapped roads, and the step is a break. Where the chain breaks between points on
        roads, up to _MAX_SKIP points are left out as outliers if that bridges it the same
        way. Updates ``chain`` in place; returns the choice, breaks and pieces'
        log-likelihoods over its final kept points, and the matched points left out as
        outliers and as off the map.
        """
        outliers: list[int] = []
        off_map: list[int] = []
        K = chain.C.shape[1] - 1  # the off-road candidate
        while True:
            if chain.kept.size == 0:
                raise MapMatchingError(f"trace {p.trace_id!r}: every point is off the mapped roads", "off_network",
                                       p.trace_id)
            choice, is_break, piece_ll, scores = viterbi(chain.emis, chain.logp)
            alive = np.isfinite(scores)
            changed = False
            runs = _runs(choice == K)
            for i, j in runs[::-1]:  # from the end: splicing keeps earlier positions valid
                drop = list(range(i, j + 1))
                a, b = i - 1, j + 1
                if a >= 0 and b < chain.kept.size and not is_break[i] and not is_break[b] and not chain.cut[a:b].any():
                    logp, win = self._step(chain, a, b, C, off, xy, lonlat, p)
                    if self._plausible(logp, alive[a], p):
                        outliers.extend(int(chain.kept[k]) for k in drop)
                        _splice(chain, drop, logp, win, False, C, off, dist, emis)
                        changed = True
                        continue
                off_map.extend(int(chain.kept[k]) for k in drop)
                _splice(chain, drop, np.full((1, K + 1, K + 1), -np.inf), [None], True, C, off, dist, emis)
                changed = True
            if changed:
                continue
            below = chain.kept.size
            for t in np.flatnonzero(is_break)[::-1]:
                if t + 1 >= below or chain.cut[t - 1]:  # near the last splice (positions moved), or a break by design
                    continue
                fix = self._bridge(chain, int(t), alive, C, off, xy, lonlat, p)
                if fix is not None:
                    outliers.extend(int(chain.kept[j]) for j in fix[0])
                    _splice(chain, fix[0], fix[1], fix[2], False, C, off, dist, emis)
                    below = fix[0][0] - 1
                    changed = True
            if not changed:
                return choice, is_break, piece_ll, sorted(outliers), sorted(off_map)

    def _step(
        self, chain: _Chain, a: int, b: int, C: np.ndarray, off: np.ndarray, xy: np.ndarray, lonlat: np.ndarray,
        p: _Params,
    ) -> tuple[np.ndarray, list[CorridorWindow | None]]:
        """The transitions from kept position ``a`` straight to ``b`` (the points between left out)."""
        pair = chain.kept[[a, b]]
        times = None if p.times is None else p.times[pair]
        return self._transitions(C[pair], off[pair], xy[pair], lonlat[pair], times, p)

    @staticmethod
    def _plausible(logp: np.ndarray, alive: np.ndarray, p: _Params) -> bool:
        """A route from a live candidate on a road, at most _BRIDGE_SLACK_RADII search radii longer than the line.

        An outlier is a point off the road the others follow: without it, such a route
        joins its neighbours; a long detour would rather mean a road missing from the map.
        """
        road = logp[0][:-1, :-1][alive[:-1]]
        return bool(road.max(initial=-np.inf) >= -_BRIDGE_SLACK_RADII * p.radius / p.beta)

    def _bridge(
        self, chain: _Chain, t: int, alive: np.ndarray, C: np.ndarray, off: np.ndarray, xy: np.ndarray,
        lonlat: np.ndarray, p: _Params,
    ) -> tuple[list[int], np.ndarray, list[CorridorWindow | None]] | None:
        """Kept positions to leave out so that a plausible route crosses the break before ``t``, with its step.

        ``alive[j, k]``: candidate ``k`` of kept position ``j`` ends a path of its piece;
        the route must start from one of those.
        """
        m = chain.kept.size
        options = [[t], [t - 1], [t, t + 1], [t - 1, t], [t - 2, t - 1]]
        for drop in options:
            if len(drop) > _MAX_SKIP:
                continue
            a, b = drop[0] - 1, drop[-1] + 1
            if a < 0 or b >= m or chain.cut[a:b].any():
                continue
            logp, win = self._step(chain, a, b, C, off, xy, lonlat, p)
            if self._plausible(logp, alive[a], p):
                return drop, logp, win
        return None

    # ------------------------------------------------------------------ paths
    def _step_paths(self, chain: _Chain, states: np.ndarray, is_break: np.ndarray) -> list[np.ndarray | None]:
        """For each step, the states from the chosen segment to the next one (None: stays on it, or a break)."""
        out: list[np.ndarray | None] = [None] * (states.size - 1)
        todo: dict[int, list[int]] = {}
        wins: dict[int, CorridorWindow] = {}
        for t in range(states.size - 1):
            a, b = int(states[t]), int(states[t + 1])
            if a == b or is_break[t + 1]:
                continue
            w = chain.window[t]
            if w is None:
                try:
                    out[t] = self._router.shortest_path(a, b)
                except ValueError:
                    out[t] = None  # no route: cannot happen for a finite transition
                continue
            todo.setdefault(id(w), []).append(t)
            wins[id(w)] = w
        for key, ts in todo.items():
            idx = np.asarray(ts)
            for t, path in zip(ts, wins[key].paths(states[idx], states[idx + 1]), strict=True):
                out[t] = path
        return out

    def _join(
        self, paths: list[np.ndarray], ends_off: list[tuple[float, float]], backtrack: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """The pieces joined by shortest paths into one state sequence, and where each piece starts in it.

        ``ends_off``: per piece, the offset of its first point on its first segment and of
        its last point on its last one (a piece starting behind where the last one ended,
        on the same segment, is joined by a loop).
        """
        joined = [int(s) for s in paths[0]]
        offsets = [0]
        for q, path in enumerate(paths[1:], start=1):
            a, b = joined[-1], int(path[0])
            if a == b and ends_off[q][0] >= ends_off[q - 1][1] - backtrack:
                offsets.append(len(joined) - 1)
                joined.extend(int(s) for s in path[1:])
                continue
            try:
                bridge = _loop_path(self.net, self._router, a) if a == b else self._router.shortest_path(a, b)
                joined.extend(int(s) for s in bridge[1:-1])
            except ValueError:  # no route at all (a network that is not strongly connected)
                pass
            offsets.append(len(joined))
            joined.extend(int(s) for s in path)
        return np.asarray(joined, dtype=np.int64), np.asarray(offsets, dtype=np.int64)

    def _place_thinned(
        self, paths: list[np.ndarray], kept: np.ndarray, piece_of: np.ndarray, index: np.ndarray, states: np.ndarray,
        offsets: np.ndarray, dists: np.ndarray, conf: np.ndarray, dropped: np.ndarray, xy: np.ndarray,
    ) -> None:
        """Put each thinned-out point on the nearest segment of its piece between its kept neighbours (in place).

        A thinned point belongs to the piece of the kept point before it (after the
        last kept point of a piece, the rest of that piece is its range); its
        confidence is the lower of its kept neighbours' in that piece.
        """
        m = index.size
        is_kept = np.zeros(m, dtype=bool)
        is_kept[kept] = True
        drop = np.flatnonzero(~is_kept & ~dropped)
        if not drop.size:
            return
        nxt = np.searchsorted(kept, drop)
        prev_k = kept[np.maximum(nxt - 1, 0)]
        next_k = kept[np.minimum(nxt, kept.size - 1)]
        before_first = nxt == 0
        prev_k = np.where(before_first, next_k, prev_k)
        piece = piece_of[prev_k]
        same = (piece_of[next_k] == piece) & (nxt < kept.size)
        plen = np.array([paths[q].size for q in piece])
        lo = np.where(before_first, 0, index[prev_k])
        hi = np.where(same, index[next_k], plen - 1)
        conf[drop] = np.where(same, np.minimum(conf[prev_k], conf[next_k]), conf[prev_k])
        counts = hi - lo + 1
        owner = np.repeat(np.arange(drop.size), counts)
        pos = np.repeat(lo, counts) + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        seg = np.concatenate(paths)[np.repeat(np.cumsum([0] + [q.size for q in paths])[piece], counts) + pos]
        d = shapely.distance(shapely.points(xy[drop][owner]), self.net._lines[seg])
        order = np.lexsort((pos, d, owner))  # per point: nearest, then earliest
        first = np.r_[True, owner[order][1:] != owner[order][:-1]]
        best = np.empty(drop.size, dtype=np.int64)
        best[owner[order][first]] = pos[order][first]
        piece_of[drop] = piece
        index[drop] = best
        for q in np.unique(piece):  # points never go back along their piece's path
            sel = np.flatnonzero(piece_of == q)
            index[sel] = np.maximum.accumulate(index[sel])
            states[sel] = paths[q][index[sel]]
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
                states[first] = path[0]
                offsets[first] = self.net.offsets_m(xy[first], states[first])
                dists[first] = _reassign(self.net, int(path[0]), xy[first])
        if path.size > 1:
            last = index == path.size - 1
            if np.all(offsets[last] < trim_m):
                path = path[:-1]
                index = np.minimum(index, path.size - 1)
                states[last] = path[-1]
                offsets[last] = self.net.offsets_m(xy[last], states[last])
                dists[last] = _reassign(self.net, int(path[-1]), xy[last])
        return path, index


@dataclass(frozen=True)
class _Params:
    """The per-trace model parameters (estimated or given) and the matched points' times."""

    sigma: float
    radius: float
    beta: float
    backtrack: float
    times: np.ndarray | None
    trace_id: str = "trace"
    off_road_m: float = _OFF_ROAD_MIN_M


@dataclass
class _Placed:
    """The pieces' paths, and per matched point: piece, position in its path, segment, offset, distance, confidence."""

    paths: list[np.ndarray]
    piece: np.ndarray
    index: np.ndarray
    state: np.ndarray
    off: np.ndarray
    dist: np.ndarray
    conf: np.ndarray


def _far_thinned(kept: np.ndarray, pl: _Placed, dropped: np.ndarray, off_road_m: float) -> np.ndarray:
    """Thinned-out points beside points left out of the chain and placed farther than ``off_road_m``: off the roads too.

    (Next to an outlier or a stretch off the map, the path their neighbours give them is not theirs.)
    """
    far = (pl.piece >= 0) & (pl.dist > off_road_m)
    far[kept] = False
    gone = np.flatnonzero(dropped)
    j = np.flatnonzero(far)
    if not j.size or not gone.size:
        return np.zeros(0, dtype=np.int64)
    nxt = np.searchsorted(kept, j)
    lo = kept[np.maximum(nxt - 1, 0)]
    hi = np.where(nxt < kept.size, kept[np.minimum(nxt, kept.size - 1)], dropped.size)
    beside = (np.searchsorted(gone, lo, side="right") < np.searchsorted(gone, hi, side="left")) | (nxt == 0)
    return j[beside]


def _windows(gc: np.ndarray, lim: np.ndarray) -> list[tuple[int, int]]:
    """Runs of steps ``[s0, s1)`` searched together (corridor windows).

    A run spans up to _WINDOW_M of trace (or its longest limit, if longer: sparse fixes
    search far anyway) and _WINDOW_STEPS steps, and its steps' limits stay within a
    factor _WINDOW_LIMIT_RATIO of each other: its searches reach as far as its longest
    limit, so one long step must not widen the searches of many short ones. A step above
    _LONG_STEP_M is a run of its own (searched on the whole network).
    """
    out = []
    s0, acc, lo, hi = 0, 0.0, float("inf"), 0.0
    for t, (g, lm) in enumerate(zip(gc.tolist(), lim.tolist(), strict=True)):  # Python floats: a tight loop
        lo2, hi2 = min(lo, lm), max(hi, lm)
        if t > s0 and (acc + g > max(_WINDOW_M, hi2) or t - s0 >= _WINDOW_STEPS or hi2 > _WINDOW_LIMIT_RATIO * lo2
                       or lm > _LONG_STEP_M or hi > _LONG_STEP_M):
            out.append((s0, t))
            s0, acc, lo2, hi2 = t, 0.0, lm, lm
        acc += g
        lo, hi = lo2, hi2
    if s0 < gc.size:
        out.append((s0, gc.size))
    return out


def _splice(
    chain: _Chain, drop: list[int], logp: np.ndarray, win: list[CorridorWindow | None], cut: bool, C: np.ndarray,
    off: np.ndarray, dist: np.ndarray, emis: np.ndarray,
) -> None:
    """Remove kept positions ``drop`` (consecutive) from the chain; ``logp`` / ``win`` is the step that replaces them.

    At either end of the chain there is no step to replace them (``logp`` empty).
    """
    a, b = drop[0] - 1, drop[-1] + 1
    m = chain.kept.size
    keep = np.r_[0 : a + 1, b:m]
    chain.kept = chain.kept[keep]
    chain.C, chain.off, chain.dist, chain.emis = C[chain.kept], off[chain.kept], dist[chain.kept], emis[chain.kept]
    lo, hi = max(a, 0), min(b, m - 1)  # the steps [lo, hi) go; at an end, no new one comes
    if a < 0 or b >= m:
        logp, win, new_cut = logp[:0], [], np.zeros(0, dtype=bool)
    else:
        new_cut = np.array([cut])
    chain.logp = np.concatenate([chain.logp[:lo], logp, chain.logp[hi:]])
    chain.window = chain.window[:lo] + win + chain.window[hi:]
    chain.cut = np.concatenate([chain.cut[:lo], new_cut, chain.cut[hi:]])


def _location_confidence(
    post: np.ndarray, C: np.ndarray, off: np.ndarray, choice: np.ndarray, path: np.ndarray, index: np.ndarray,
    length: np.ndarray, tol_m: float,
) -> np.ndarray:
    """Per point, the posterior probability of its chosen place: its candidates within ``tol_m`` of it along the path.

    Candidates on consecutive segments of the path can be one place (the end of one and
    the start of the next, for a point at a junction), so their posteriors add up; the
    other direction of a two-way street is not on the path there, and does not count.
    """
    rows = np.arange(choice.size)
    start = np.r_[0.0, np.cumsum(length[path])[:-1]]  # where each path position starts, along the path
    at = start[index] + off[rows, choice]
    conf = np.zeros(choice.size)
    for d in (-1, 0, 1):
        j = np.clip(index + d, 0, path.size - 1)
        ok = (index + d >= 0) & (index + d < path.size)
        here = (path[j][:, None] == C) & ok[:, None] & (np.abs(start[j][:, None] + off - at[:, None]) <= tol_m)
        conf += np.where(here, post, 0.0).sum(axis=1)
    return np.minimum(conf, 1.0)


def _max_per(group: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """The largest of ``values`` per group id ``0 .. n - 1``."""
    out = np.full(n, -np.inf)
    np.maximum.at(out, group, values)
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(first, last)`` of each run of True in ``mask``."""
    d = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return list(zip(np.flatnonzero(d == 1).tolist(), (np.flatnonzero(d == -1) - 1).tolist(), strict=True))


def _assemble(states: np.ndarray, step_paths: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    """One piece's path from its points' states and the routes between them; each point's position on it."""
    path = [int(states[0])]
    index = np.empty(states.size, dtype=np.int64)
    index[0] = 0
    for i, seg in enumerate(step_paths, start=1):
        if seg is not None:
            path.extend(int(s) for s in seg[1:])
        index[i] = len(path) - 1
    return np.asarray(path, dtype=np.int64), index


def _estimate_sigma(nearest: np.ndarray) -> float:
    """Newson & Krumm's GPS noise estimate, 1.4826 x the median distance to the nearest road (clipped to 3..50 m).

    ``nearest`` is ``inf`` for points with no road within the search: they count as far;
    if they are most points, the median is taken over the others.
    """
    med = float(np.median(nearest))
    if not np.isfinite(med):
        med = float(np.median(nearest[np.isfinite(nearest)]))
    return float(np.clip(1.4826 * med, 3.0, 50.0))


def _thin(xy: np.ndarray, min_m: float) -> np.ndarray:
    """Indices of projected points kept at least ``min_m`` from the previously kept one; first and last kept.

    The same as :func:`~maxent_irl.roads.geo.thin_indices`, with look-ahead windows that
    start small and double while no point is far enough: at 1 Hz the next kept point is
    usually one or two ahead, at a stop hundreds.
    """
    n = xy.shape[0]
    keep = [0]
    i, chunk, last = 1, 8, xy[0]
    while i < n:
        hi = min(n, i + chunk)
        far = np.flatnonzero(np.hypot(xy[i:hi, 0] - last[0], xy[i:hi, 1] - last[1]) >= min_m)
        if far.size:
            i += int(far[0])
            keep.append(i)
            last = xy[i]
            i += 1
            chunk = 8
        else:
            i = hi
            chunk = min(2 * chunk, 4096)
    if n > 1 and keep[-1] != n - 1:
        keep.append(n - 1)
    return np.asarray(keep, dtype=np.int64)


def _reassign(net: RoadNetwork, state: int, xy: np.ndarray) -> np.ndarray:
    """Distance from projected points to a state's segment (used when end points move to a neighbour)."""
    return shapely.distance(shapely.points(xy), net._lines[state])


def _loop_path(net: RoadNetwork, router: Any, a: int) -> np.ndarray:
    """Shortest cycle from ``a`` back to ``a`` (via its best successor); ``ValueError`` if there is none."""
    _, succ = net.mdp.successors(a)
    best, best_len = None, np.inf
    for s in succ:
        try:
            p = router.shortest_path(int(s), a)
        except ValueError:
            continue
        length = net.segment_length_m[p].sum()
        if length < best_len:
            best, best_len = p, length
    if best is None:
        raise ValueError(f"no loop through state {a}")
    return np.concatenate([[a], best])
