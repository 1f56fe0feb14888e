"""A road network as a route MDP: states are directed segments, transitions are turns.

Why the routable part is the largest strongly connected component *of the segment
graph* (not of the node graph): whether a segment can be left depends on which turns
exist (U-turns off, one-way dead ends), and MaxEnt IRL needs every origin to reach
every destination, otherwise ``log Z(o, d)`` is ``-inf`` and trips cannot be scored.
So segments that cannot be both reached from and left toward the rest (one-way
stubs, islands, broken one-way tagging) are dropped, and a trip can only start and
end on a routable segment; map matching and the simulator only ever use those.

Dead ends: a vehicle leaves a cul-de-sac by turning around, so a U-turn at a node
with no other exit is always a transition (it carries the ``turn_uturn`` feature);
``allow_uturns=False`` removes every other U-turn.

Turn restrictions (``G.graph["turn_restrictions"]``, made by ``load_graph`` from the OSM
file's relations) remove their transitions *before* the strongly connected part is
taken, so no route, sample, likelihood or posterior can use them, and a segment whose
every exit is forbidden is dropped like any other dead end. The removed transitions are
kept as :attr:`RoadNetwork.restricted_turns` (saved in the ``.npz``, part of the fingerprint).
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import functools
import hashlib
import logging
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pyproj
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components

from maxent_irl.mdp import RouteMDP
from maxent_irl.roads.exceptions import InvalidTraceError, NetworkSourceError, UnknownSegmentError
from maxent_irl.roads.features import (
    FEATURE_NAMES,
    ROAD_CLASSES,
    lanes_per_direction,
    road_class,
    transition_features,
)
from maxent_irl.roads.geo import LocalProjection, valid_lonlat
from maxent_irl.roads.geojson import NetworkGeoJSON
from maxent_irl.roads.osm import GraphSource, _ensure_speeds, load_graph, normalize_list_attributes
from maxent_irl.roads.restrictions import forbidden_transitions
from maxent_irl.roads.routing import Router

__all__ = ["DEFAULT_OSM_PATH", "RoadNetwork", "SegmentId"]

logger = logging.getLogger(__name__)

SegmentId = tuple[Hashable, Hashable, int]

#: The embedded default network (© OpenStreetMap contributors, ODbL 1.0; see data/README.md), shipped in
#: the repository's ``data/`` folder beside the packages.
DEFAULT_OSM_PATH = Path(__file__).resolve().parents[2] / "data" / "andorra_drive.osm.bz2"
#: Where :meth:`RoadNetwork.default` keeps its ``.npz`` cache unless told otherwise.
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "routeirl"
_BEARING_WINDOW_M = 20.0
_CHUNK_M = 100.0  # candidate search splits segments into pieces of at most this length
_CACHE_VERSION = "roads-network-v1"
_DEFAULT_CACHE: dict[tuple[str, bool], RoadNetwork] = {}
_ROUTER_LOCK = threading.Lock()


class RoadNetwork:
    """Directed road segments of an OSM drive network, their geometry, and the MDP over them.

    Build with :meth:`from_graph`, :meth:`load` or :meth:`default`. State ``s`` is the
    directed segment ``segment_id(s) = (u, v, key)`` (OSM node ids and the osmnx edge
    key); states are ordered by that id, so the numbering is stable for a given graph.
    """

    def __init__(
        self,
        *,
        name: str,
        segment_ids: np.ndarray,
        length_m: np.ndarray,
        highway: np.ndarray,
        road_name: np.ndarray,
        speed_kph: np.ndarray,
        lanes: np.ndarray,
        geom_ptr: np.ndarray,
        geom_lonlat: np.ndarray,
        src: np.ndarray,
        dst: np.ndarray,
        turn_angle_deg: np.ndarray,
        allow_uturns: bool,
        all_segment_ids: np.ndarray | None = None,
        restricted_turns: np.ndarray | None = None,
    ) -> None:
        self.name = str(name)
        self.allow_uturns = bool(allow_uturns)
        self._ids = np.asarray(segment_ids, dtype=np.int64)
        n = self._ids.shape[0]
        self.segment_length_m = _readonly(np.maximum(np.asarray(length_m, dtype=float), 0.01))
        self.segment_highway = _readonly(np.asarray(highway, dtype=object))
        self.segment_name = _readonly(np.asarray(road_name, dtype=object))
        self.segment_speed_kph = _readonly(np.asarray(speed_kph, dtype=float))
        self.segment_lanes = _readonly(np.asarray(lanes, dtype=np.int64))
        self.segment_class = _readonly(np.array([road_class(h) for h in self.segment_highway], dtype=object))
        self._geom_ptr = _readonly(np.asarray(geom_ptr, dtype=np.int64))
        self._geom_lonlat = _readonly(np.asarray(geom_lonlat, dtype=float))
        self.turn_angle_deg = _readonly(np.asarray(turn_angle_deg, dtype=float))
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        self.is_uturn = _readonly(self._ids[dst, 1] == self._ids[src, 0])  # (u, v) -> (v, u)
        class_idx = np.array([ROAD_CLASSES.index(c) for c in self.segment_class], dtype=np.int64)
        feats = transition_features(
            dst, self.segment_length_m, class_idx, self.segment_speed_kph, self.segment_lanes,
            self.turn_angle_deg, self.is_uturn,
        )
        self.mdp = RouteMDP(n, src, dst, feats, feature_names=list(FEATURE_NAMES))
        self._index = {(int(u), int(v), int(k)): i for i, (u, v, k) in enumerate(self._ids)}
        self._all_ids = self._ids if all_segment_ids is None else np.asarray(all_segment_ids, dtype=np.int64)
        rt = np.zeros((0, 7), dtype=np.int64) if restricted_turns is None else restricted_turns
        self.restricted_turns = _readonly(np.asarray(rt, dtype=np.int64).reshape(-1, 7))
        """Transitions removed by turn restrictions: rows ``(u1, v1, key1, u2, v2, key2, relation_id)``,
        from segment ``(u1, v1, key1)`` into ``(u2, v2, key2)`` (``v1 == u2``), with the OSM relation
        that forbids it; segments outside the routable part included."""
        lo, hi = self._geom_lonlat.min(axis=0), self._geom_lonlat.max(axis=0)
        self.bbox = (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))
        self.projection = LocalProjection((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2)
        self._geom_xy = _readonly(self.projection.forward(self._geom_lonlat))
        self._lines = shapely.linestrings(self._geom_xy, indices=np.repeat(np.arange(n), np.diff(self._geom_ptr)))
        self._line_len = shapely.length(self._lines)
        mids = shapely.line_interpolate_point(self._lines, 0.5, normalized=True)
        self.segment_midpoints = _readonly(self.projection.inverse(shapely.get_coordinates(mids)))
        self._chunk_state, self._chunk_start, self._chunk_lines = _chunks(self._geom_xy, self._geom_ptr, _CHUNK_M)
        self._tree = shapely.STRtree(self._chunk_lines)
        self.fingerprint = self._compute_fingerprint()
        self._routers: dict[float, Router] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_graph(
        cls, G: nx.MultiDiGraph, allow_uturns: bool = True, name: str = "network", *, strongly_connected: bool = True
    ) -> RoadNetwork:
        """Build the network from an osmnx graph (WGS84, ``length`` on edges; ``speed_kph`` added if missing).

        ``G.graph["turn_restrictions"]`` (set by :func:`~maxent_irl.roads.osm.load_graph` from
        the file's relations: ``[{"relation": id, "segments": [[u, v, key], ...]}, ...]``)
        lists forbidden chains of segments; their transitions are removed before the strongly
        connected part is taken (see :func:`~maxent_irl.roads.restrictions.forbidden_transitions`).

        ``strongly_connected=False`` keeps every segment, not only the largest strongly
        connected part: for map matching on an extract cut around a trip, whose roads
        leaving the cut can be entered but not left. Such a network is not for learning
        (some trips would have no route between their ends).
        """
        if not isinstance(G, nx.MultiDiGraph) or G.number_of_edges() == 0:
            raise NetworkSourceError("need a non-empty networkx.MultiDiGraph (an osmnx graph)")
        _check_lonlat_graph(G)
        if any(isinstance(v, list) and len(v) > 1 for _, _, d in G.edges(data=True) for v in d.values()):
            G = normalize_list_attributes(G.copy())
        if any("speed_kph" not in d for _, _, d in G.edges(data=True)):
            G = _ensure_speeds(G.copy())
        try:
            edges = sorted(G.edges(keys=True, data=True), key=lambda e: (int(e[0]), int(e[1]), int(e[2])))
        except (TypeError, ValueError) as exc:
            raise NetworkSourceError("node ids and edge keys must be integers (OSM ids), as osmnx makes them") from exc
        ids = np.array([(u, v, k) for u, v, k, _ in edges], dtype=np.int64).reshape(-1, 3)
        node_xy = {n: (float(d["x"]), float(d["y"])) for n, d in G.nodes(data=True)}
        coords, lengths, highway, names, speeds, lanes = [], [], [], [], [], []
        for u, v, _k, d in edges:
            coords.append(_edge_coords(d, node_xy[u], node_xy[v]))
            lengths.append(float(d.get("length", np.nan)))
            highway.append(str(_first(d.get("highway", ""))))
            names.append(str(_first(d.get("name", "")) or ""))
            speeds.append(float(_first(d["speed_kph"])))
            lanes.append(lanes_per_direction(d))
        ptr = np.concatenate([[0], np.cumsum([len(c) for c in coords])])
        geom = np.concatenate(coords, axis=0)
        length = np.asarray(lengths)
        if not np.isfinite(length).all():
            raise NetworkSourceError("every edge needs a finite 'length' in metres (osmnx adds it)")
        start_b, end_b = _end_bearings(geom, ptr)
        src, dst, angle = _turns(ids, start_b, end_b, allow_uturns)
        forbid, relation = _restricted(G.graph.get("turn_restrictions"), ids, src, dst, name)
        restricted = np.column_stack([ids[src[forbid]], ids[dst[forbid]], relation[forbid]])
        src, dst, angle = src[~forbid], dst[~forbid], angle[~forbid]
        keep = _largest_scc(len(ids), src, dst) if strongly_connected else np.ones(len(ids), dtype=bool)
        n_drop = len(ids) - int(keep.sum())
        logger.info(
            "%s: %d segments, %d transitions; %d segments outside the largest strongly connected part dropped",
            name, len(ids), len(src), n_drop,
        )
        remap = np.full(len(ids), -1, dtype=np.int64)
        remap[keep] = np.arange(int(keep.sum()))
        t_keep = keep[src] & keep[dst]
        sel = np.flatnonzero(keep)
        new_ptr = np.concatenate([[0], np.cumsum(np.diff(ptr)[sel])])
        new_geom = np.concatenate([geom[ptr[i] : ptr[i + 1]] for i in sel], axis=0)
        return cls(
            name=name, segment_ids=ids[sel], length_m=length[sel], highway=np.array(highway, dtype=object)[sel],
            road_name=np.array(names, dtype=object)[sel], speed_kph=np.asarray(speeds)[sel],
            lanes=np.asarray(lanes)[sel], geom_ptr=new_ptr, geom_lonlat=new_geom,
            src=remap[src[t_keep]], dst=remap[dst[t_keep]], turn_angle_deg=angle[t_keep],
            allow_uturns=allow_uturns, all_segment_ids=ids, restricted_turns=restricted,
        )

    @classmethod
    def load(
        cls, source: GraphSource, allow_uturns: bool = True, name: str | None = None, network_type: str = "drive"
    ) -> RoadNetwork:
        """Load with :func:`~maxent_irl.roads.osm.load_graph`, then :meth:`from_graph`; a ``.npz`` loads as is.

        Files: ``.osm.pbf``, OSM XML (``.osm`` / ``.xml``, optionally ``.gz`` / ``.bz2``),
        ``.graphml`` (optionally ``.gz``), ``.npz`` (:meth:`save`). Anything else is a
        :class:`NetworkSourceError` naming these.
        """
        if isinstance(source, str | Path) and str(source).lower().endswith(".npz"):
            if not Path(source).is_file():
                raise FileNotFoundError(f"road network file not found: {source}")
            return cls.from_npz(source)
        if name is None:
            name = Path(str(source)).name.split(".")[0] if isinstance(source, str | Path) else "bbox"
        return cls.from_graph(load_graph(source, network_type=network_type), allow_uturns=allow_uturns, name=name)

    @classmethod
    def load_cached(
        cls, source: GraphSource, cache_file: str | Path, allow_uturns: bool = True, name: str | None = None
    ) -> RoadNetwork:
        """:meth:`load`, through a ``.npz`` cache: read it if it is there, else build and write it.

        Several processes may ask at once (API workers, the training worker): the builder
        holds an exclusive ``flock`` on ``<cache_file>.lock`` while it builds, the others
        wait on it and then read the cache instead of building too. The cache is written
        under a temporary name, synced and renamed, so no reader ever sees half a file.
        A stale, truncated or pre-restrictions cache is rebuilt and an unwritable cache
        directory skipped (each process then builds for itself), never fatal. The lock
        file stays (deleting it would let a third process lock a file the second no
        longer sees).
        """
        cache_file = Path(cache_file)
        net = _read_cache(cls, cache_file)
        if net is not None:
            return net
        with _exclusive_lock(cache_file.with_name(cache_file.name + ".lock")) as locked:
            if locked:  # another process may have built it while we waited
                net = _read_cache(cls, cache_file)
                if net is not None:
                    return net
            net = cls.load(source, allow_uturns=allow_uturns, name=name)
            if locked:
                try:
                    _write_atomically(net, cache_file)
                except OSError as exc:
                    logger.info("not caching the network (%s)", exc)
        return net

    @classmethod
    def default(cls, allow_uturns: bool = True, cache_dir: str | Path | bool | None = True) -> RoadNetwork:
        """The embedded default network: the drivable roads of Andorra (``data/andorra_drive.osm.bz2``).

        Memoized per process. ``cache_dir=True`` also keeps the built network as ``.npz``
        in :data:`DEFAULT_CACHE_DIR` (``~/.cache/routeirl``), a path puts it there instead; keyed
        by the OSM file's hash, so later processes skip the ~2 s OSM parse. ``False`` / ``None``
        disables the disk cache. The result is identical either way (same fingerprint).
        """
        path = DEFAULT_OSM_PATH
        memo_key = (str(path), bool(allow_uturns))
        if memo_key in _DEFAULT_CACHE:
            return _DEFAULT_CACHE[memo_key]
        if not path.is_file():
            raise NetworkSourceError(f"the embedded default network {path} is missing: this installation has no "
                                     "data/ folder beside the packages; load a network file with RoadNetwork.load")
        cache_file = None
        if cache_dir:
            base = DEFAULT_CACHE_DIR if cache_dir is True else Path(cache_dir)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            cache_file = base / f"{path.name.split('.')[0]}-{digest}-u{int(allow_uturns)}-{_CACHE_VERSION}.npz"
        if cache_file is None:
            net = cls.load(path, allow_uturns=allow_uturns, name="andorra")
        else:
            net = cls.load_cached(path, cache_file, allow_uturns=allow_uturns, name="andorra")
        _DEFAULT_CACHE[memo_key] = net
        return net

    def save(self, path: str | Path | Any) -> None:
        """Save the built network as ``.npz`` (reload with :meth:`from_npz`, same fingerprint); a path or binary file.

        The file is derived from OpenStreetMap data: it stays under the ODbL.
        """
        np.savez_compressed(
            path if hasattr(path, "write") else Path(path),
            name=np.array(self.name), segment_ids=self._ids, length_m=self.segment_length_m,
            highway=np.array(self.segment_highway, dtype=str), road_name=np.array(self.segment_name, dtype=str),
            speed_kph=self.segment_speed_kph, lanes=self.segment_lanes, geom_ptr=self._geom_ptr,
            geom_lonlat=self._geom_lonlat, src=self.mdp.src, dst=self.mdp.dst, turn_angle_deg=self.turn_angle_deg,
            allow_uturns=np.array(self.allow_uturns), all_segment_ids=self._all_ids,
            restricted_turns=self.restricted_turns, fingerprint=np.array(self.fingerprint),
        )

    @classmethod
    def from_npz(cls, path: str | Path) -> RoadNetwork:
        """A network written by :meth:`save`; :class:`NetworkSourceError` if unreadable or altered.

        A file saved before turn restrictions were supported loads as a network without
        any (it has none: its transitions are what they were); :meth:`load_cached`
        rebuilds such a cache instead, since its source may hold restrictions.
        """
        return _read_npz(cls, Path(path), require_restrictions=False)

    # ------------------------------------------------------------------ ids and geometry
    @property
    def n_states(self) -> int:
        return int(self._ids.shape[0])

    @property
    def feature_names(self) -> list[str]:
        return list(self.mdp.feature_names)

    def segment_id(self, state: int) -> SegmentId:
        """OSM ``(u, v, key)`` of a state."""
        s = self._check_state(state)
        u, v, k = self._ids[s]
        return int(u), int(v), int(k)

    def state_of(self, segment: Sequence[Any]) -> int:
        """State index of an OSM segment ``(u, v, key)``; :class:`UnknownSegmentError` (a ``KeyError``) if none."""
        try:
            u, v, k = (int(x) for x in segment)
        except (TypeError, ValueError) as exc:
            raise UnknownSegmentError(f"a segment id is (u, v, key) of integers, got {segment!r}") from exc
        try:
            return self._index[(u, v, k)]
        except KeyError:
            known = bool(((self._all_ids[:, 0] == u) & (self._all_ids[:, 1] == v) & (self._all_ids[:, 2] == k)).any())
            why = "is outside the routable (largest strongly connected) part" if known else "is not in the network"
            raise UnknownSegmentError(f"segment {(u, v, k)} {why}") from None

    @property
    def segment_ids(self) -> np.ndarray:
        """``(n_states, 3)`` int64 array of ``(u, v, key)``."""
        return self._ids

    def segment_geometry(self, state: int) -> list[list[float]]:
        """``[[lon, lat], ...]`` from ``u`` to ``v`` (GeoJSON order)."""
        s = self._check_state(state)
        return self._geom_lonlat[self._geom_ptr[s] : self._geom_ptr[s + 1]].tolist()

    @functools.cached_property
    def geojson(self) -> NetworkGeoJSON:
        """GeoJSON of this network's segments and paths (:class:`~maxent_irl.roads.geojson.NetworkGeoJSON`)."""
        return NetworkGeoJSON(self)

    def path_geojson(self, states: Sequence[int] | np.ndarray, properties: dict[str, Any] | None = None) -> dict:
        """GeoJSON Feature (LineString) of a connected path, with its states, segment ids and length."""
        path = self.mdp.check_states(states, "path state")
        if path.size:
            self.mdp.transition_indices(path)  # raises InvalidPathError if not connected
        props = {"states": path.tolist(), "length_m": float(self.segment_length_m[path].sum()), "network": self.name,
                 "fingerprint": self.fingerprint, **(properties or {})}
        return self.geojson.path_feature(path, props)

    def nearest_states(
        self, lon: float | np.ndarray, lat: float | np.ndarray, k: int = 1, max_distance_m: float | None = 250.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` states nearest to each point (distance to the segment polyline), vectorized.

        Returns ``(states, distances_m)``: shape ``(k,)`` for scalar input, ``(m, k)``
        for arrays; slots without a segment within ``max_distance_m`` hold ``-1`` / ``inf``.
        ``max_distance_m=None`` searches without limit. Both directions of a two-way
        street are equally near and are both returned (ties broken by state index).
        """
        scalar = np.ndim(lon) == 0 and np.ndim(lat) == 0
        ll = np.column_stack([np.atleast_1d(np.asarray(lon, dtype=float)), np.atleast_1d(np.asarray(lat, dtype=float))])
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        ok = valid_lonlat(ll)
        if not ok.all():
            raise InvalidTraceError(f"invalid coordinate at index {int(np.flatnonzero(~ok)[0])}", "invalid_coordinates")
        xy = self.projection.forward(ll)
        m = xy.shape[0]
        states = np.full((m, k), -1, dtype=np.int64)
        dists = np.full((m, k), np.inf)
        radius = float(max_distance_m) if max_distance_m is not None else 250.0
        todo = np.arange(m)
        while todo.size:
            pi, si, d, _ = self.candidates(xy[todo], radius)
            rank = _rank_within(pi)
            take = rank < k
            states[todo[pi[take]], rank[take]] = si[take]
            dists[todo[pi[take]], rank[take]] = d[take]
            if max_distance_m is not None or radius > 4e7:
                break
            todo = todo[np.bincount(pi, minlength=todo.size) < k]
            radius *= 4
        return (states[0], dists[0]) if scalar else (states, dists)

    def candidates(
        self, xy: np.ndarray, radius_m: float, per_state: str = "min"
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(point, state) pairs within ``radius_m`` of projected points: ``(point_idx, state, distance_m, offset_m)``.

        ``per_state="min"``: the nearest position on each state. ``"local"``: every
        local minimum of the distance along the state, so a point near both arms of
        a hairpin on one long segment gets a candidate on each arm (the map matcher
        needs that; a single nearest position may be on the wrong arm).
        Sorted by point, then distance.
        """
        if per_state not in ("min", "local"):
            raise ValueError(f"per_state must be 'min' or 'local', got {per_state!r}")
        pts = shapely.points(np.asarray(xy, dtype=float).reshape(-1, 2))
        pi, ci = self._tree.query(pts, predicate="dwithin", distance=float(radius_m))
        pi = pi.astype(np.int64)
        if pi.size == 0:
            empty = np.zeros(0)
            return pi, pi.copy(), empty, empty.copy()
        si = self._chunk_state[ci]
        d = shapely.distance(pts[pi], self._chunk_lines[ci])
        loc = self._chunk_start[ci] + shapely.line_locate_point(self._chunk_lines[ci], pts[pi])
        off = np.clip(loc / np.maximum(self._line_len[si], 1e-9), 0.0, 1.0) * self.segment_length_m[si]
        order = np.lexsort((off, si, pi))
        pi, si, d, off, ci = pi[order], si[order], d[order], off[order], ci[order]
        # neighbours along a state are adjacent pieces; a piece missing between two (farther than
        # the radius, e.g. the bend of a hairpin) separates them, so the result does not depend
        # on how large a radius was asked for
        same_prev = np.concatenate(
            ([False], (pi[1:] == pi[:-1]) & (si[1:] == si[:-1]) & (np.abs(ci[1:] - ci[:-1]) == 1))
        )
        same_next = np.append(same_prev[1:], False)
        if per_state == "min":
            key_d = np.lexsort((d, si, pi))  # per (point, state) nearest first
            first = np.concatenate(([True], (pi[key_d][1:] != pi[key_d][:-1]) | (si[key_d][1:] != si[key_d][:-1])))
            keep = key_d[first]
        else:
            d_prev = np.concatenate(([np.inf], d[:-1]))
            d_next = np.append(d[1:], np.inf)
            keep = np.flatnonzero((~same_prev | (d < d_prev)) & (~same_next | (d <= d_next)))
        pi, si, d, off = pi[keep], si[keep], d[keep], off[keep]
        order = np.lexsort((si, d, pi))
        return pi[order], si[order], d[order], off[order]

    def offsets_m(self, xy: np.ndarray, states: np.ndarray) -> np.ndarray:
        """Distance along each state's segment (in ``segment_length_m`` units) of the projection of ``xy``."""
        pts = shapely.points(np.asarray(xy, dtype=float).reshape(-1, 2))
        loc = shapely.line_locate_point(self._lines[states], pts)
        frac = np.where(self._line_len[states] > 0, loc / np.maximum(self._line_len[states], 1e-9), 0.0)
        return np.clip(frac, 0.0, 1.0) * self.segment_length_m[states]

    def points_along(self, states: np.ndarray, offsets_m: np.ndarray) -> np.ndarray:
        """``(n, 2)`` lon/lat of the points ``offsets_m`` metres along the given states."""
        frac = np.clip(np.asarray(offsets_m, dtype=float) / self.segment_length_m[states], 0.0, 1.0)
        pts = shapely.line_interpolate_point(self._lines[states], frac, normalized=True)
        return self.projection.inverse(shapely.get_coordinates(pts))

    def router(self, uturn_penalty_m: float = 0.0) -> Router:
        """Shortest-path helper over the segment graph, cached per penalty (shared by map matchers).

        ``uturn_penalty_m`` adds that many metres to every U-turn, so routes avoid them
        unless they save more than that.
        """
        key = float(uturn_penalty_m)
        with _ROUTER_LOCK:
            if key not in self._routers:
                extra = np.where(self.is_uturn, key, 0.0)
                self._routers[key] = Router(self.mdp.src, self.mdp.dst, self.segment_length_m, extra_cost=extra)
            return self._routers[key]

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the network without its caches (routers, GeoJSON): they hold locks, and rebuild on use.

        A network travels to other processes this way, e.g. to the workers of a Dask cluster.
        """
        state = dict(self.__dict__)
        state.pop("geojson", None)
        state["_routers"] = {}
        return state

    def __repr__(self) -> str:
        return (
            f"RoadNetwork(name={self.name!r}, n_states={self.n_states}, n_transitions={self.mdp.n_transitions}, "
            f"fingerprint={self.fingerprint!r})"
        )

    # ------------------------------------------------------------------ internals
    def _check_state(self, state: int) -> int:
        if isinstance(state, bool) or not isinstance(state, int | np.integer) or not 0 <= state < self.n_states:
            raise UnknownSegmentError(f"unknown state {state!r} (the network has states 0..{self.n_states - 1})")
        return int(state)

    def _compute_fingerprint(self) -> str:
        h = hashlib.sha256(_CACHE_VERSION.encode())
        h.update(",".join(self.mdp.feature_names).encode())
        for arr in (
            self._ids, self.mdp.src, self.mdp.dst, np.round(self.segment_length_m, 2),
            np.round(self.mdp.features, 6), np.round(self._geom_lonlat, 7),
        ):
            h.update(np.ascontiguousarray(arr).tobytes())
        if self.restricted_turns.size:  # networks without restrictions keep their earlier fingerprints
            h.update(b"restricted_turns")
            h.update(np.ascontiguousarray(self.restricted_turns).tobytes())
        return h.hexdigest()[:16]


# ---------------------------------------------------------------------- helpers
def _read_npz(cls: type[RoadNetwork], path: Path, require_restrictions: bool) -> RoadNetwork:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "restricted_turns" not in z.files and require_restrictions:
                raise NetworkSourceError(f"{path}: saved before turn restrictions were supported")
            net = cls(
                name=str(z["name"]), segment_ids=z["segment_ids"], length_m=z["length_m"],
                highway=z["highway"].astype(object), road_name=z["road_name"].astype(object),
                speed_kph=z["speed_kph"], lanes=z["lanes"], geom_ptr=z["geom_ptr"], geom_lonlat=z["geom_lonlat"],
                src=z["src"], dst=z["dst"], turn_angle_deg=z["turn_angle_deg"],
                allow_uturns=bool(z["allow_uturns"]), all_segment_ids=z["all_segment_ids"],
                restricted_turns=z["restricted_turns"] if "restricted_turns" in z.files else None,
            )
            if net.fingerprint != str(z["fingerprint"]):
                raise NetworkSourceError(f"{path}: fingerprint mismatch (file from another version?)")
    except NetworkSourceError:
        raise
    except FileNotFoundError:
        raise
    except Exception as exc:  # truncated zip, missing arrays, wrong shapes
        raise NetworkSourceError(f"cannot read saved network {path}: {type(exc).__name__}: {exc}") from exc
    return net


def _read_cache(cls: type[RoadNetwork], cache_file: Path) -> RoadNetwork | None:
    if not cache_file.is_file():
        return None
    try:
        return _read_npz(cls, cache_file, require_restrictions=True)
    except Exception as exc:
        logger.warning("ignoring unusable network cache %s: %s", cache_file, exc)
        return None


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[bool]:
    """Hold ``flock(LOCK_EX)`` on ``lock_path`` (waiting for it); yields False if the lock file cannot be made."""
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        logger.info("no network cache lock (%s): building without one", exc)
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("another process is building the network cache %s: waiting for it", lock_path.stem)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield True
    finally:
        os.close(fd)  # releases the lock


def _write_atomically(net: RoadNetwork, path: Path) -> None:
    """``net.save`` to a temporary file beside ``path``, fsync, rename over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            net.save(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _restricted(
    chains: Any, ids: np.ndarray, src: np.ndarray, dst: np.ndarray, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Mask of the transitions that turn-restriction chains of segment ids forbid, and their relation ids."""
    if isinstance(chains, str):  # from GraphML written by ox.save_graphml directly
        chains = ast.literal_eval(chains)
    if not chains:
        return np.zeros(len(src), dtype=bool), np.full(len(src), -1, dtype=np.int64)
    index = {(int(u), int(v), int(k)): i for i, (u, v, k) in enumerate(ids)}
    counts: Counter[str] = Counter()
    states: list[tuple[int, list[int]]] = []
    for c in chains:
        seq = [index.get((int(u), int(v), int(k))) for u, v, k in c["segments"]]
        if any(s is None for s in seq):
            counts["segment_not_in_graph"] += 1
            continue
        states.append((int(c["relation"]), [int(s) for s in seq if s is not None]))
    forbid, relation = forbidden_transitions(states, src, dst, counts)
    logger.info(
        "%s: %d transitions removed by turn restrictions (%s)",
        name, int(forbid.sum()), ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
    )
    return forbid, relation


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _check_lonlat_graph(G: nx.MultiDiGraph) -> None:
    """NetworkSourceError unless the nodes are lon/lat degrees: a projected graph would fail deep in pyproj."""
    crs = G.graph.get("crs")
    fix = "the graph must be unprojected, in EPSG:4326 lon/lat (osmnx: ox.project_graph(G, to_latlong=True))"
    if crs is not None:
        try:
            parsed = pyproj.CRS.from_user_input(crs)
        except pyproj.exceptions.CRSError as exc:
            raise NetworkSourceError(f"unreadable graph crs {crs!r}: {fix}") from exc
        if not parsed.is_geographic:
            raise NetworkSourceError(f"the graph is projected ({parsed.to_string()}, {parsed.name}): {fix}")
    nodes = list(G.nodes(data=True))
    try:
        xy = np.array([(d.get("x", np.nan), d.get("y", np.nan)) for _, d in nodes], dtype=float)
    except (TypeError, ValueError) as exc:
        raise NetworkSourceError(f"node coordinates 'x' / 'y' must be numbers: {fix}") from exc
    bad = np.flatnonzero(~valid_lonlat(xy))
    if bad.size:
        n, d = nodes[int(bad[0])]
        raise NetworkSourceError(
            f"node {n!r} has x={d.get('x')!r}, y={d.get('y')!r}, not lon/lat degrees ({bad.size} such node(s)): {fix}"
        )


def _first(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return value[0] if value else None
    return value


def _edge_coords(d: dict[str, Any], pu: tuple[float, float], pv: tuple[float, float]) -> np.ndarray:
    """Edge geometry as ``(m, 2)`` lon/lat from u to v (osmnx omits geometry on straight edges)."""
    geom = d.get("geometry")
    if geom is None:
        return np.array([pu, pv])
    c = np.asarray(geom.coords, dtype=float)[:, :2]
    if np.hypot(*(c[0] - pu)) > np.hypot(*(c[-1] - pu)):
        c = c[::-1]
    return c


def _end_bearings(geom_lonlat: np.ndarray, ptr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bearing (deg clockwise from north) of each segment's first and last ~20 m."""
    lo, hi = geom_lonlat.min(axis=0), geom_lonlat.max(axis=0)
    proj = LocalProjection((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2)
    xy = proj.forward(geom_lonlat)
    n = len(ptr) - 1
    lines = shapely.linestrings(xy, indices=np.repeat(np.arange(n), np.diff(ptr)))
    length = shapely.length(lines)
    w = np.minimum(_BEARING_WINDOW_M, length)
    a0 = shapely.get_coordinates(shapely.line_interpolate_point(lines, np.zeros(n)))
    a1 = shapely.get_coordinates(shapely.line_interpolate_point(lines, w))
    b0 = shapely.get_coordinates(shapely.line_interpolate_point(lines, length - w))
    b1 = shapely.get_coordinates(shapely.line_interpolate_point(lines, length))
    start = np.degrees(np.arctan2(a1[:, 0] - a0[:, 0], a1[:, 1] - a0[:, 1]))
    end = np.degrees(np.arctan2(b1[:, 0] - b0[:, 0], b1[:, 1] - b0[:, 1]))
    return start, end


def _turns(
    ids: np.ndarray, start_bearing: np.ndarray, end_bearing: np.ndarray, allow_uturns: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All turns ``(u, v) -> (v, w)`` as ``(src, dst, turn angle)``; U-turns only where allowed or at dead ends."""
    u, v = ids[:, 0], ids[:, 1]
    order = np.argsort(u, kind="stable")
    lo = np.searchsorted(u[order], v, side="left")
    hi = np.searchsorted(u[order], v, side="right")
    counts = hi - lo
    src = np.repeat(np.arange(len(ids)), counts)
    starts = np.repeat(lo, counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    dst = order[starts + within]
    keep = src != dst  # a self-loop edge does not follow itself
    src, dst = src[keep], dst[keep]
    uturn = v[dst] == u[src]
    if not allow_uturns:
        other_exit = np.bincount(src[~uturn], minlength=len(ids)) > 0
        keep = ~uturn | ~other_exit[src]  # keep U-turns only where they are the only way out
        src, dst, uturn = src[keep], dst[keep], uturn[keep]
    angle = (start_bearing[dst] - end_bearing[src] + 180.0) % 360.0 - 180.0
    return src, dst, angle


def _largest_scc(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    A = sp.csr_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    n_comp, labels = connected_components(A, directed=True, connection="strong")
    sizes = np.bincount(labels, minlength=n_comp)
    return labels == int(np.argmax(sizes))


def _chunks(xy: np.ndarray, ptr: np.ndarray, max_m: float) -> tuple[np.ndarray, np.ndarray, shapely.Geometry]:
    """Split each state's polyline at vertices into pieces of at most ``max_m`` (longer single edges stay whole).

    Returns each piece's state, its start (metres along the projected polyline) and the pieces.
    """
    states, starts, coords, idx = [], [], [], []
    k = 0
    for s in range(len(ptr) - 1):
        p = xy[ptr[s] : ptr[s + 1]]
        cum = np.r_[0.0, np.cumsum(np.hypot(*np.diff(p, axis=0).T))]
        a = 0
        while a < len(p) - 1:
            b = max(a + 1, int(np.searchsorted(cum, cum[a] + max_m, side="right")) - 1)
            states.append(s)
            starts.append(cum[a])
            coords.append(p[a : b + 1])
            idx.append(np.full(b + 1 - a, k))
            k += 1
            a = b
    lines = shapely.linestrings(np.concatenate(coords), indices=np.concatenate(idx))
    return np.asarray(states, dtype=np.int64), np.asarray(starts), lines


def _rank_within(groups: np.ndarray) -> np.ndarray:
    """Position of each element within its run of equal values (``groups`` sorted)."""
    if groups.size == 0:
        return groups.copy()
    starts = np.concatenate(([0], np.flatnonzero(groups[1:] != groups[:-1]) + 1))
    run_id = np.repeat(np.arange(starts.size), np.diff(np.append(starts, groups.size)))
    return np.arange(groups.size) - starts[run_id]
