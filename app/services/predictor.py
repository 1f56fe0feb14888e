"""What the query endpoints need for the active model, built once per model (and prior).

A :class:`Predictor` holds the :class:`RouteModel` with its factorization already computed,
the candidate destinations (the distinct destinations of stored trips, most frequent first,
capped by ``max_destinations``: the paper's setting), their prior (empirical frequency with
add-one smoothing) and their GeoJSON features, so a destination query is two sparse
triangular solves plus picking the top entries.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.storage import ModelRecord
from maxent_irl import RouteModel
from maxent_irl.exceptions import InvalidParameterError, InvalidPathError, UnreachableDestinationError
from maxent_irl.roads import RoadNetwork
from maxent_irl.roads.snapping import segment_values

__all__ = ["Candidates", "Predictor"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidates:
    """Candidate destination states with their prior and precomputed output pieces."""

    states: np.ndarray  # (m,) int
    counts: np.ndarray  # (m,) stored trips ending there
    prior: np.ndarray  # (m,) add-one smoothed frequencies, sums to 1
    segments: list[list[int]]  # (m,) [u, v, key]
    points: list[list[float]]  # (m,) [lon, lat] of the segment midpoint

    @classmethod
    def build(cls, net: RoadNetwork, dest_counts: list[tuple[int, int]]) -> Candidates:
        valid = [(s, c) for s, c in dest_counts if 0 <= s < net.n_states]  # a damaged record names no segment
        states = np.array([s for s, _ in valid], dtype=np.int64)
        counts = np.array([c for _, c in valid], dtype=np.float64)
        prior = (counts + 1.0) / (counts + 1.0).sum() if states.size else counts
        return cls(
            states=states,
            counts=counts,
            prior=prior,
            segments=net.geojson.segment_ids(states),
            points=[net.geojson.segment_midpoint(int(s)) for s in states],
        )


class Predictor:
    """The active model, ready to answer queries. Immutable: swapped whole on a change.

    With ``precompute_mb`` > 0 it also holds ``log Z(s, d)`` for every state ``s`` and every
    candidate ``d`` (an ``(n_states, m)`` matrix, built once per model from the core's
    :meth:`RouteModel.log_partition`, exact in log space). The posterior of a partial path
    ``A -> B`` is then ``prior(d) Z(B, d) / Z(A, d)`` read off two rows: microseconds instead
    of two sparse solves plus, for far destinations whose ``Z`` underflows, one rescaled
    solve each. Columns are cached per candidate, so adding trips only computes new ones.
    Above the memory budget it falls back to :meth:`RouteModel.destination_posterior`.
    """

    def __init__(
        self,
        net: RoadNetwork,
        record: ModelRecord,
        candidates: Candidates,
        model: RouteModel | None = None,
        *,
        precompute_mb: float = 256.0,
        columns: dict[int, np.ndarray] | None = None,
    ) -> None:
        self.net = net
        self.record = record
        self.version = record.id
        self.candidates = candidates
        self.precompute_mb = precompute_mb
        t0 = time.perf_counter()
        if model is None:
            mdp = net.mdp.select_features(record.feature_names)
            model = RouteModel(mdp, np.asarray(record.theta, dtype=np.float64))
            model.system  # noqa: B018 - factorize now, not in the first query
        self.model = model
        self.segment_values = segment_values(model)  # for snapping route ends (maxent_irl.roads.snapping)
        self._columns: dict[int, np.ndarray] = dict(columns or {})
        self.log_z: np.ndarray | None = None  # (n_states, m) log Z(s, candidate)
        n, m = model.mdp.n_states, candidates.states.size
        if m and n * m * 8 <= precompute_mb * 1e6:
            missing = np.array([d for d in candidates.states.tolist() if d not in self._columns], dtype=np.int64)
            if missing.size:
                lz = model.log_partition(np.arange(n)[:, None], missing[None, :])
                for k, d in enumerate(missing.tolist()):
                    self._columns[d] = lz[:, k]
            self._columns = {d: self._columns[d] for d in candidates.states.tolist()}
            self.log_z = np.column_stack([self._columns[d] for d in candidates.states.tolist()])
        with np.errstate(divide="ignore"):
            self.log_prior = np.log(candidates.prior) if m else np.zeros(0)
        log.info(
            "model %d ready in %.3f s (%d candidates, %s)",
            record.id,
            time.perf_counter() - t0,
            m,
            "log Z precomputed" if self.log_z is not None else "posterior solved per query",
        )

    def with_candidates(self, candidates: Candidates) -> Predictor:
        """The same model (factorization and cached columns) with a new prior, after trips were added."""
        return Predictor(
            self.net, self.record, candidates, self.model, precompute_mb=self.precompute_mb, columns=self._columns
        )

    def posterior(self, partial_path: np.ndarray) -> np.ndarray:
        """``P(d | partial path)`` over the candidates; same definition as the core's
        :meth:`RouteModel.destination_posterior` (a candidate passed before the current
        segment has probability 0; unreachable ones too)."""
        cand = self.candidates
        if self.log_z is None:
            return self.model.destination_posterior(partial_path, cand.states, cand.prior)
        path = self.model.mdp.check_states(partial_path, "partial path state")
        if path.size == 0:
            raise InvalidPathError("partial path is empty")
        self.model.mdp.transition_indices(path)
        a, b = int(path[0]), int(path[-1])
        with np.errstate(invalid="ignore"):
            log_post = self.log_prior + (self.log_z[b] - self.log_z[a])
        log_post[~np.isfinite(log_post)] = -np.inf
        if path.size > 1:
            log_post[np.isin(cand.states, path[:-1])] = -np.inf
        top = log_post.max()
        if not np.isfinite(top):
            raise UnreachableDestinationError("no candidate destination is reachable along this partial path")
        post = np.exp(log_post - top)
        return post / post.sum()

    # --- queries ---------------------------------------------------------------------------
    def destinations(self, partial_path: np.ndarray, top: int, full: bool) -> dict[str, Any]:
        """Top destinations of a partly driven path as a GeoJSON FeatureCollection (dict)."""
        cand = self.candidates
        if cand.states.size == 0:
            raise InvalidParameterError("no candidate destinations: no trips are stored for this network")
        post = self.posterior(partial_path)
        k = min(top, post.size)
        if k < post.size:
            idx = np.argpartition(-post, k - 1)[:k]
            idx = idx[np.argsort(-post[idx], kind="stable")]
        else:
            idx = np.argsort(-post, kind="stable")
        features = [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": cand.points[i]},
                "properties": {
                    "rank": r + 1,
                    "probability": float(post[i]),
                    "prior": float(cand.prior[i]),
                    "segment": cand.segments[i],
                    "state": int(cand.states[i]),
                },
            }
            for r, i in enumerate(idx.tolist())
        ]
        out: dict[str, Any] = {"type": "FeatureCollection", "features": features, "candidates": int(post.size)}
        if full:
            out["distribution"] = [
                {"segment": cand.segments[i], "state": int(cand.states[i]), "probability": float(post[i])}
                for i in np.argsort(-post, kind="stable").tolist()
            ]
        return out
