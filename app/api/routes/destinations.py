"""``/v1/destinations``: where is a partly driven trip going? (GET for short traces, POST for long.)"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from app.api.deps import ERROR_RESPONSES, RuntimeDep
from app.api.params import parse_lonlat_list
from app.runtime import Runtime
from app.schemas import DestinationsQuery, FeatureCollection
from app.services import queries
from app.services.errors import TooLargeError

router = APIRouter(prefix="/v1/destinations", tags=["destinations"], responses=ERROR_RESPONSES)

#: Queries up to this many points are answered on the event loop: a few milliseconds of
#: work, where a thread hop costs more than it saves. Longer ones go to the thread pool so
#: they cannot stall other requests.
INLINE_MAX_POINTS = 64


def _answer(rt: Runtime, request: Request, points: Sequence[Sequence[float]], top: int | None, full: bool,
            field: str, heatmap: bool) -> JSONResponse:
    out = queries.destinations(rt, points, top, full, field, heatmap)
    request.state.model_version = out["model_version"]
    return JSONResponse(out)


async def _dispatch(rt: Runtime, request: Request, points: Sequence[Sequence[float]], top: int | None, full: bool,
                    field: str, heatmap: bool) -> JSONResponse:
    if len(points) <= INLINE_MAX_POINTS:
        return _answer(rt, request, points, top, full, field, heatmap)
    return await run_in_threadpool(_answer, rt, request, points, top, full, field, heatmap)


@router.get("", response_model=FeatureCollection, summary="Destination posterior of a partial trip")
async def destinations(
    rt: RuntimeDep,
    request: Request,
    coordinates: Annotated[
        str, Query(description="The driven part, 'lon,lat;lon,lat;...' in driving order", examples=["1.52,42.51"])
    ],
    top: Annotated[int | None, Query(ge=1, le=10_000, description="Destinations returned (default 10)")] = None,
    full: Annotated[bool, Query(description="Also list the segments holding 99.9 % of the posterior")] = False,
    heatmap: Annotated[bool, Query(description="Also return the posterior as a heat map of segments")] = False,
) -> JSONResponse:
    """The posterior over every segment of the network. Features are the top destinations,
    most probable first, each a place (nearby probable segments clustered; ``probability`` is
    their summed mass) with ``rank``, ``prior`` and ``segment`` ([u, v, key]) of its most
    probable segment; ``expected_destination`` is the point minimizing the expected distance to
    the destination; ``heatmap`` (with ``heatmap=true``) the most probable segments holding 95 %
    of the mass, as LineStrings with ``probability``; ``distribution`` (with ``full=true``) the
    segments holding 99.9 % of it."""
    points = parse_lonlat_list(coordinates, "query.coordinates", rt.settings.max_query_points)
    return await _dispatch(rt, request, points, top, full, "query.coordinates", heatmap)


@router.post("", response_model=FeatureCollection, summary="Destination posterior (long traces in the body)")
async def destinations_post(rt: RuntimeDep, request: Request, body: DestinationsQuery) -> JSONResponse:
    if len(body.coordinates) > rt.settings.max_query_points:
        raise TooLargeError(f"{len(body.coordinates)} points in the query; the limit is {rt.settings.max_query_points}",
                            {"max_query_points": rt.settings.max_query_points})
    return await _dispatch(rt, request, body.coordinates, body.top, body.full, "body.coordinates", body.heatmap)
