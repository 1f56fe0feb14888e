"""``/v1/destinations``: where is a partly driven trip going? (GET for short traces, POST for long.)

The prior over destinations is the frequency of the stored trips' destinations (add-one
smoothed); the likelihood is the active model's. The answer is a GeoJSON FeatureCollection
of the top destinations (Points at the destination segment's midpoint).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from app.api.common import ERROR_RESPONSES, active_predictor, match_points, parse_lonlat_list, segment_ids
from app.deps import RuntimeDep
from app.errors import ApiError
from app.runtime import Runtime
from app.schemas import DestinationsQuery, FeatureCollection

router = APIRouter(prefix="/v1/destinations", tags=["destinations"], responses=ERROR_RESPONSES)

#: Queries up to this many points are answered on the event loop: a few milliseconds of
#: work, where a thread hop costs more than it saves. Longer ones go to the thread pool so
#: they cannot stall other requests.
INLINE_MAX_POINTS = 64


async def _dispatch(
    rt: Runtime, request: Request, points: list[Any], top: int | None, full: bool, field: str
) -> JSONResponse:
    if len(points) <= INLINE_MAX_POINTS:
        return _answer(rt, request, points, top, full, field)
    return await run_in_threadpool(_answer, rt, request, points, top, full, field)


def _answer(
    rt: Runtime, request: Request, points: list[Any], top: int | None, full: bool, field: str
) -> JSONResponse:
    predictor = active_predictor(rt, request)
    path = match_points(rt, points, field)
    out = predictor.destinations(path, top or rt.settings.default_top, full)
    out["matched"] = {
        "n_points": len(points),
        "n_segments": int(path.size),
        "current_segment": segment_ids(rt, path[-1:])[0],
    }
    out["model_version"] = predictor.version
    out["network"] = rt.network_out()
    return JSONResponse(out)


@router.get("", response_model=FeatureCollection, summary="Destination posterior of a partial trip")
async def destinations(
    rt: RuntimeDep,
    request: Request,
    coordinates: Annotated[
        str, Query(description="The driven part, 'lon,lat;lon,lat;...' in driving order", examples=["1.52,42.51"])
    ],
    top: Annotated[int | None, Query(ge=1, le=10_000, description="Destinations returned (default 10)")] = None,
    full: Annotated[bool, Query(description="Also return the whole distribution")] = False,
) -> JSONResponse:
    """Features are the top destinations, most probable first, with ``probability``, ``prior``,
    ``rank`` and ``segment`` ([u, v, key]); ``distribution`` (with ``full=true``) lists every
    candidate."""
    points = parse_lonlat_list(coordinates, "query.coordinates", rt.settings.max_query_points)
    return await _dispatch(rt, request, points, top, full, "query.coordinates")


@router.post("", response_model=FeatureCollection, summary="Destination posterior (long traces in the body)")
async def destinations_post(rt: RuntimeDep, request: Request, body: DestinationsQuery) -> JSONResponse:
    if len(body.coordinates) > rt.settings.max_query_points:
        raise ApiError.too_large(
            f"{len(body.coordinates)} points in the query; the limit is {rt.settings.max_query_points}",
            {"max_query_points": rt.settings.max_query_points},
        )
    return await _dispatch(rt, request, body.coordinates, body.top, body.full, "body.coordinates")
