"""``/v1/network``: the road network as GeoJSON for drawing, and how many stored trips drive each segment."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from app.api.deps import ERROR_RESPONSES, RuntimeDep
from app.services import network_geojson as service
from app.services.errors import field_error

router = APIRouter(prefix="/v1/network", tags=["network"], responses=ERROR_RESPONSES)

GEOJSON = "application/geo+json"


def parse_bbox(raw: str | None, field: str = "query.bbox") -> tuple[float, float, float, float] | None:
    """``'min_lon,min_lat,max_lon,max_lat'`` -> a tuple (None if absent); a 422 ``validation_error`` otherwise."""
    if raw is None or not raw.strip():
        return None
    try:
        parts = tuple(float(x) for x in raw.split(","))
    except ValueError:
        raise field_error(field, f"expected 4 numbers 'min_lon,min_lat,max_lon,max_lat', got {raw!r}") from None
    if len(parts) != 4 or not all(math.isfinite(x) for x in parts):
        raise field_error(field, f"expected 4 numbers 'min_lon,min_lat,max_lon,max_lat', got {raw!r}")
    x0, y0, x1, y1 = parts
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise field_error(field, "need -180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90")
    return x0, y0, x1, y1


@router.get(
    "",
    summary="The road network as GeoJSON: one LineString per street",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}, "description": "A FeatureCollection of streets"},
               304: {"description": "Not modified (If-None-Match matched the network's ETag)"}},
)
async def network(
    rt: RuntimeDep,
    request: Request,
    bbox: Annotated[str | None, Query(description="Only streets meeting 'min_lon,min_lat,max_lon,max_lat'",
                                      examples=["1.50,42.49,1.56,42.52"])] = None,
) -> Response:
    """For drawing: the two directions of a two-way street are one feature (``oneway: false``).
    Each feature has ``states`` and ``segments`` ([u, v, key], one per direction), ``class``,
    ``highway``, ``name``, ``speed_kph``, ``length_m``; the collection has ``bounds``,
    ``n_segments`` and ``n_features``. The whole network (no ``bbox``) is cached, sent gzipped
    when the client accepts it, and revalidated by its ``ETag``."""
    box = parse_bbox(bbox)
    layer = await run_in_threadpool(service.network_layer, rt.net)  # built once per network
    if box is not None:
        return Response(service.network_answer(rt.net, box), media_type=GEOJSON)
    headers = {"ETag": layer.etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == layer.etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(layer.body_gzip, media_type=GEOJSON, headers={**headers, "Content-Encoding": "gzip"})
    return Response(layer.body, media_type=GEOJSON, headers=headers)


@router.get("/usage", summary="How many stored trips drive each segment")
def usage(rt: RuntimeDep) -> dict[str, Any]:
    """``states`` and ``trips`` are parallel lists: segment (state index, as in the network's
    features) and the number of stored trips of this network whose matched path uses it."""
    return service.trip_usage(rt)
