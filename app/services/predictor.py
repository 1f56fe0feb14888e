"""The active model, ready to answer queries: built once per model and per change of the stored trips.

A :class:`Predictor` holds the :class:`~maxent_irl.RouteModel` with its factorization computed
and a :class:`~maxent_irl.roads.destinations.DestinationPredictor`: the posterior over every
segment of the network (two transposed solves) with the prior learned from the stored trips'
destinations, whose parameters the training job chose and stored with the model. So the
service's posterior *is* the library's; this module only turns it into GeoJSON.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from app.storage import ModelRecord
from maxent_irl import RouteModel
from maxent_irl.roads import RoadNetwork
from maxent_irl.roads.destinations import DestinationPredictor, DestinationPriorParams
from maxent_irl.roads.snapping import segment_values

__all__ = ["Predictor"]

log = logging.getLogger(__name__)


class Predictor:
    """The active model and its destination posterior. Immutable: swapped whole on a change.

    ``destinations``: the destination states of the stored trips (one per trip), the data of
    the prior. :meth:`with_destinations` keeps the model (and its factorization) when only the
    trips changed.
    """

    def __init__(self, net: RoadNetwork, record: ModelRecord, destinations: np.ndarray,
                 model: RouteModel | None = None) -> None:
        self.net = net
        self.record = record
        self.version = record.id
        t0 = time.perf_counter()
        if model is None:
            mdp = net.mdp.select_features(record.feature_names)
            model = RouteModel(mdp, np.asarray(record.theta, dtype=np.float64))
            model.system  # noqa: B018 - factorize now, not in the first query
        self.model = model
        self.segment_values = segment_values(model)  # for snapping route ends (maxent_irl.roads.snapping)
        self.params = DestinationPriorParams.from_dict(record.metrics.get("destination_prior"))
        self.destinations = DestinationPredictor(net, model, self.params, destinations)
        log.info("model %d ready in %.3f s (prior from %d stored destinations)", record.id,
                 time.perf_counter() - t0, self.destinations.n_destinations)

    def with_destinations(self, destinations: np.ndarray) -> Predictor:
        """The same model (and factorization) with the prior rebuilt from other stored destinations."""
        return Predictor(self.net, self.record, destinations, self.model)

    def destinations_answer(self, path: np.ndarray, top: int, full: bool, heatmap: bool) -> dict[str, Any]:
        """Top destinations of a partly driven path as a GeoJSON FeatureCollection, with the expected point."""
        dp = self.destinations
        answer = dp.answer(path, top)
        post = answer.probabilities
        prior = np.exp(dp.log_prior(int(path[0])))
        geo = self.net.geojson
        features = []
        for rank, c in enumerate(answer.clusters, start=1):
            state = int(c.index)
            features.append({
                "type": "Feature", "geometry": {"type": "Point", "coordinates": geo.segment_midpoint(state)},
                "properties": {"rank": rank, "probability": round(float(c.mass), 6),
                               "prior": round(float(prior[c.members].sum() / prior.sum()), 6),
                               "segment": geo.segment_id(state), "state": state,
                               "n_segments": int(c.members.size), "radius_m": self.params.radius_m},
            })
        out: dict[str, Any] = {
            "type": "FeatureCollection", "features": features, "candidates": int(post.size),
            "expected_destination": {
                "type": "Feature", "geometry": geo.point(answer.point_lonlat),
                "properties": {"expected_distance_m": round(answer.expected_distance_m, 1)},
            },
        }
        if heatmap:
            states, prob = dp.heat_map(post)
            out["heatmap"] = {"type": "FeatureCollection", "mass": round(float(prob.sum()), 6), "features": [
                geo.segment_feature(int(s), {"probability": round(float(p), 8)}) for s, p in zip(states, prob,
                                                                                              strict=True)]}
        if full:
            states, prob = dp.heat_map(post, mass=0.999, max_entries=10_000)
            out["distribution"] = [{"segment": geo.segment_id(int(s)), "state": int(s), "probability": float(p)}
                                   for s, p in zip(states, prob, strict=True)]
        return out
