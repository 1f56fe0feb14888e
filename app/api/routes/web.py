"""The web page at ``/`` (a map of the network, trips, predictions, routes and the model), its settings, and the
OpenAPI pages ``/docs`` and ``/redoc`` with their scripts served from this service (nothing from a CDN).

The page itself is static (``app/web``: HTML, CSS and one script; the vendored libraries in
``app/web/static/vendor``, see package.json); it reads ``/web/config.json`` and then uses the
public API like any client.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from app import __version__
from app.api.deps import RuntimeDep
from app.services.network_geojson import network_layer

__all__ = ["STATIC_DIR", "STATIC_URL", "WEB_DIR", "router"]

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
STATIC_DIR = WEB_DIR / "static"
#: Where :func:`app.main.create_app` mounts ``STATIC_DIR``.
STATIC_URL = "/static"
VENDOR = f"{STATIC_URL}/vendor"
#: Shown on the map whatever the tiles: the road network is OpenStreetMap data (ODbL).
OSM_ATTRIBUTION = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'



@asynccontextmanager
async def _warm_network(app: FastAPI) -> AsyncIterator[None]:
    """Build the drawing of the network (``GET /v1/network``, once per network) as the service starts, in a thread,
    so the first page load does not wait for it; runs inside the app's lifespan, once the runtime exists."""
    rt = getattr(app.state, "runtime", None)
    if rt is not None:
        threading.Thread(target=network_layer, args=(rt.net,), name="network-geojson", daemon=True).start()
    yield


router = APIRouter(include_in_schema=False, lifespan=_warm_network)


@router.get("/")
def index() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})


@router.get("/web/config.json")
def config(rt: RuntimeDep) -> dict[str, Any]:
    """What the page needs before its first API call: the network's extent, tiles, whether writes need a key."""
    s = rt.settings
    net = rt.net
    return {
        "version": __version__,
        "network": {"name": str(net.name), "fingerprint": rt.fingerprint, "n_segments": int(net.n_states),
                    "bounds": [float(x) for x in net.bbox]},
        "tile_url": s.tile_url or None,
        "attribution": OSM_ATTRIBUTION,
        "api_key_required": bool(s.api_key is not None and s.api_key.get_secret_value()),
        "max_alternatives": s.max_alternatives,
        "max_iter": s.max_iter,
    }


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=str(request.app.openapi_url), title=f"{request.app.title} - API docs",
        swagger_js_url=f"{VENDOR}/swagger-ui-dist/swagger-ui-bundle.js",
        swagger_css_url=f"{VENDOR}/swagger-ui-dist/swagger-ui.css",
        swagger_favicon_url=f"{VENDOR}/swagger-ui-dist/favicon-32x32.png",
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from validator.swagger.io
    )


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=str(request.app.openapi_url), title=f"{request.app.title} - API reference",
        redoc_js_url=f"{VENDOR}/redoc/redoc.standalone.js",
        redoc_favicon_url=f"{VENDOR}/swagger-ui-dist/favicon-32x32.png", with_google_fonts=False,
    )
