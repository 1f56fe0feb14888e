"""``GET /v1/visitation``: per-segment probability of being used on a trip origin -> destination."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from app.api.deps import ERROR_RESPONSES, RuntimeDep
from app.api.params import parse_lonlat
from app.api.routes.routes import Heading, HeadingTolerance
from app.schemas import FeatureCollection
from app.services import queries
from app.services.queries import DEFAULT_HEADING_TOLERANCE

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
    origin_heading: Heading = None,
    destination_heading: Heading = None,
    heading_tolerance: HeadingTolerance = DEFAULT_HEADING_TOLERANCE,
) -> dict[str, Any]:
    """One LineString feature per segment with ``probability`` (expected uses, capped at 1; the two
    differ only for routes that loop) and ``expected_visits``; most used first."""
    o = parse_lonlat(origin, "query.origin")
    d = parse_lonlat(destination, "query.destination")
    out = queries.visitation(rt, o, d, min_probability, (origin_heading, destination_heading), heading_tolerance)
    request.state.model_version = out["model_version"]
    return out
