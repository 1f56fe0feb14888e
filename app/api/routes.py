"""``/v1/routes``: the most likely route between two points, sampled alternatives, and the
probability of a given route under the active model."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request

from app.api.common import ERROR_RESPONSES, active_predictor, match_points, parse_lonlat, segment_ids, snap
from app.deps import RuntimeDep
from app.errors import ApiError
from app.runtime import Runtime
from app.schemas import FeatureCollection, RouteProbabilityIn

router = APIRouter(prefix="/v1/routes", tags=["routes"], responses=ERROR_RESPONSES)


def route_feature(rt: Runtime, path: np.ndarray, properties: dict[str, Any]) -> dict[str, Any]:
    """A path as a GeoJSON Feature (LineString through its segments' geometries)."""
    return {
        "type": "Feature",
        "geometry": rt.path_geometry(path),
        "properties": {**properties, "n_segments": int(path.size), "segments": segment_ids(rt, path)},
    }


def _endpoint(rt: Runtime, text: str, field: str) -> tuple[int, dict[str, Any]]:
    lon, lat = parse_lonlat(text, field)
    state, dist = snap(rt, lon, lat, field)
    return state, {"point": [lon, lat], "segment": segment_ids(rt, [state])[0], "distance_m": round(dist, 2)}


@router.get("", response_model=FeatureCollection, summary="Most likely route and sampled alternatives")
def routes(
    rt: RuntimeDep,
    request: Request,
    origin: Annotated[str, Query(description="'lon,lat' of the start")],
    destination: Annotated[str, Query(description="'lon,lat' of the end")],
    alternatives: Annotated[int, Query(ge=0, description="Distinct sampled alternatives to return")] = 3,
    seed: Annotated[int | None, Query(ge=0, description="Seed of the sampling (default: fixed, repeatable)")] = None,
) -> dict[str, Any]:
    """The first feature is the most likely route (``kind: most_likely``); the others are the
    most frequent distinct routes among ``ROUTEIRL_ROUTE_SAMPLES`` paths drawn from the model
    (``kind: sample``, with their ``sample_share``). ``probability`` is P(route | origin, destination)."""
    if alternatives > rt.settings.max_alternatives:
        raise ApiError(
            422,
            "validation_error",
            f"query.alternatives: at most {rt.settings.max_alternatives}",
            [{"field": "query.alternatives", "message": f"at most {rt.settings.max_alternatives}"}],
        )
    predictor = active_predictor(rt, request)
    model = predictor.model
    o, o_info = _endpoint(rt, origin, "query.origin")
    d, d_info = _endpoint(rt, destination, "query.destination")
    best = model.most_likely_path(o, d)
    paths = [best]
    shares = [None]
    if alternatives > 0 and o != d:
        n = rt.settings.route_samples
        samples = model.sample_paths(o, d, n, random_state=0 if seed is None else seed)
        counts = Counter(tuple(int(s) for s in p) for p in samples)
        counts.pop(tuple(int(s) for s in best), None)
        for key, c in counts.most_common(alternatives):
            paths.append(np.asarray(key, dtype=np.int64))
            shares.append(round(c / n, 4))
    log_p = model.path_log_prob(paths)
    features = [
        route_feature(
            rt,
            p,
            {
                "rank": i + 1,
                "kind": "most_likely" if i == 0 else "sample",
                "probability": float(np.exp(lp)),
                "log_probability": float(lp),
                **({} if share is None else {"sample_share": share}),
            },
        )
        for i, (p, lp, share) in enumerate(zip(paths, log_p, shares, strict=True))
    ]
    return {
        "type": "FeatureCollection",
        "features": features,
        "origin": o_info,
        "destination": d_info,
        "model_version": predictor.version,
        "network": rt.network_out(),
    }


@router.post("/probability", summary="Log-probability of a given route (points or segment ids)")
def route_probability(rt: RuntimeDep, request: Request, body: RouteProbabilityIn) -> dict[str, Any]:
    """``points`` are map-matched to a path; ``segments`` ([u, v, key] each, in driving order) are
    taken as the path itself. The probability is P(path | its first and last segment)."""
    predictor = active_predictor(rt, request)
    if body.points is not None:
        if len(body.points) > rt.settings.max_query_points:
            raise ApiError.too_large(
                f"{len(body.points)} points; the limit is {rt.settings.max_query_points}",
                {"max_query_points": rt.settings.max_query_points},
            )
        path = match_points(rt, body.points, "body.points")
    else:
        assert body.segments is not None
        if len(body.segments) > rt.settings.max_query_points:
            raise ApiError.too_large(
                f"{len(body.segments)} segments; the limit is {rt.settings.max_query_points}",
                {"max_query_points": rt.settings.max_query_points},
            )
        path = np.asarray([rt.state_of(seg, f"body.segments[{i}]") for i, seg in enumerate(body.segments)])
    model = predictor.model
    lp = float(model.path_log_prob([path])[0])
    best = model.most_likely_path(int(path[0]), int(path[-1]))
    best_lp = float(model.path_log_prob([best])[0])
    return {
        "log_probability": lp,
        "probability": float(np.exp(lp)),
        "most_likely_log_probability": best_lp,
        "is_most_likely": bool(best.size == path.size and np.array_equal(best, path)),
        "n_segments": int(path.size),
        "segments": segment_ids(rt, path),
        "geometry": rt.path_geometry(path),
        "model_version": predictor.version,
        "network": rt.network_out(),
    }
