"""``GET /v1/visitation``: per-segment probability of being used on a trip origin -> destination."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request

from app.api.common import ERROR_RESPONSES, active_predictor, parse_lonlat, segment_ids, snap
from app.deps import RuntimeDep
from app.schemas import FeatureCollection

router = APIRouter(prefix="/v1/visitation", tags=["visitation"], responses=ERROR_RESPONSES)


@router.get("", response_model=FeatureCollection, summary="Probability that each segment is used")
def visitation(
    rt: RuntimeDep,
    request: Request,
    origin: Annotated[str, Query(description="'lon,lat' of the start")],
    destination: Annotated[str, Query(description="'lon,lat' of the end")],
    min_probability: Annotated[
        float, Query(ge=0.0, le=1.0, description="Leave out segments used with a lower probability")
    ] = 0.01,
) -> dict[str, Any]:
    """One LineString feature per segment with ``probability`` (expected uses, capped at 1; the two
    differ only for routes that loop) and ``expected_visits``; most used first."""
    predictor = active_predictor(rt, request)
    o_lon, o_lat = parse_lonlat(origin, "query.origin")
    d_lon, d_lat = parse_lonlat(destination, "query.destination")
    o, _ = snap(rt, o_lon, o_lat, "query.origin")
    d, _ = snap(rt, d_lon, d_lat, "query.destination")
    visits = np.asarray(predictor.model.expected_visits(o, d).states, dtype=float)
    keep = np.flatnonzero(visits >= max(min_probability, 1e-12))
    keep = keep[np.argsort(-visits[keep], kind="stable")]
    ids = segment_ids(rt, keep)
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": rt.segment_coords(int(s))},
            "properties": {
                "segment": seg,
                "state": int(s),
                "probability": float(min(1.0, visits[s])),
                "expected_visits": float(visits[s]),
            },
        }
        for s, seg in zip(keep.tolist(), ids, strict=True)
    ]
    return {
        "type": "FeatureCollection",
        "features": features,
        "origin": {"point": [o_lon, o_lat], "segment": segment_ids(rt, [o])[0]},
        "destination": {"point": [d_lon, d_lat], "segment": segment_ids(rt, [d])[0]},
        "model_version": predictor.version,
        "network": rt.network_out(),
    }
