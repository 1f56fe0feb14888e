"""``/v1/network``: the road network as GeoJSON for drawing, and how many stored trips drive each segment."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from app.api.deps import ERROR_RESPONSES, RuntimeDep
from app.api.params import BBOX_PATTERN, parse_bbox
from app.services import network_geojson as service

router = APIRouter(prefix="/v1/network", tags=["network"], responses=ERROR_RESPONSES)

GEOJSON = "application/geo+json"


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
    bbox: Annotated[str | None, Query(description="Only streets meeting the box 'lon,lat,lon,lat' (two corners)",
                                      pattern=BBOX_PATTERN, examples=["1.50,42.49,1.56,42.52"])] = None,
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
