"""``/v1/routes``: the most likely route between two points, sampled alternatives, and the
probability of a given route under the active model."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from app.api.deps import ERROR_RESPONSES, RuntimeDep
from app.api.params import parse_lonlat
from app.schemas import FeatureCollection, RouteProbabilityIn
from app.services import queries
from app.services.errors import TooLargeError
from app.services.queries import DEFAULT_HEADING_TOLERANCE

#: A direction of travel at a route's end, like OSRM's ``bearings`` or Valhalla's ``heading``.
Heading = Annotated[float | None, Query(ge=0.0, le=360.0, description="Direction of travel there, in degrees "
                                        "clockwise from north (0-360); default: whichever suits the route")]
HeadingTolerance = Annotated[float, Query(ge=0.0, le=180.0, description="Degrees a road may differ from a heading")]

router = APIRouter(prefix="/v1/routes", tags=["routes"], responses=ERROR_RESPONSES)


@router.get("", response_model=FeatureCollection, summary="Most likely route and sampled alternatives")
def routes(
    rt: RuntimeDep,
    request: Request,
    origin: Annotated[str, Query(description="'lon,lat' of the start")],
    destination: Annotated[str, Query(description="'lon,lat' of the end")],
    alternatives: Annotated[int, Query(ge=0, description="Distinct sampled alternatives to return")] = 3,
    seed: Annotated[int | None, Query(ge=0, description="Seed of the sampling (default: fixed, repeatable)")] = None,
    origin_heading: Heading = None,
    destination_heading: Heading = None,
    heading_tolerance: HeadingTolerance = DEFAULT_HEADING_TOLERANCE,
) -> dict[str, Any]:
    """The first feature is the most likely route (``kind: most_likely``); the others are the
    most frequent distinct routes among ``ROUTEIRL_ROUTE_SAMPLES`` paths drawn from the model
    (``kind: sample``, with their ``sample_share``). ``probability`` is P(route | its end segments);
    every route runs from the snapped origin to the snapped destination, with ``distance_m`` and
    ``duration_s``. Each end snaps to the nearest street, in the direction that suits the route
    best unless a heading says which."""
    o = parse_lonlat(origin, "query.origin")
    d = parse_lonlat(destination, "query.destination")
    out = queries.routes(rt, o, d, alternatives, seed, (origin_heading, destination_heading), heading_tolerance)
    request.state.model_version = out["model_version"]
    return out


@router.post("/probability", summary="Log-probability of a given route (points or segment ids)")
def route_probability(rt: RuntimeDep, request: Request, body: RouteProbabilityIn) -> dict[str, Any]:
    """``points`` are map-matched to a path; ``segments`` ([u, v, key] each, in driving order) are
    taken as the path itself. The probability is P(path | its first and last segment)."""
    n = len(body.points if body.points is not None else body.segments or [])
    if n > rt.settings.max_query_points:
        what = "points" if body.points is not None else "segments"
        raise TooLargeError(f"{n} {what}; the limit is {rt.settings.max_query_points}",
                            {"max_query_points": rt.settings.max_query_points})
    out = queries.route_probability(rt, body.points, body.segments)
    request.state.model_version = out["model_version"]
    return out
