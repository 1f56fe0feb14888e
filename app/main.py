"""The ASGI application ``app.main:app`` (FastAPI).

:func:`create_app` builds an app for given settings (tests pass their own); the module-level
``app`` reads the ``ROUTEIRL_*`` environment. The lifespan opens the database, loads the
network and the active model, marks jobs orphaned by a previous run, and queues the demo
model on a fresh database; on shutdown it stops the training worker.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app import __version__
from app.api import ROUTERS
from app.api.errors import install_error_handlers
from app.api.middleware import BodyLimitMiddleware, HostOriginMiddleware, ModelHeadersMiddleware
from app.api.params import LONLAT_LIST_PATTERN, LONLAT_PATTERN
from app.api.routes.web import STATIC_DIR, STATIC_URL
from app.runtime import Runtime
from app.schemas import ErrorOut, TripsIn
from app.settings import Settings

__all__ = ["app", "create_app"]

log = logging.getLogger("app")

DESCRIPTION = """
Learn how drivers choose routes from GPS trips (Maximum-Entropy inverse reinforcement
learning, Ziebart et al. 2008) and use the learned model to predict destinations and routes.

* Coordinates are `[lon, lat]`; geometries are GeoJSON.
* Every response carries `X-RouteIRL-Model-Version` and `X-RouteIRL-Network` headers;
  query answers also name them in the body.
* Errors are `{code, message, details}` with a 4xx status (a 500 has the same shape); `details` is bounded
  (the first problems and how many there are).
* Write endpoints and reads of stored trips need `X-API-Key` when the service has a key (`ROUTEIRL_API_KEY`).
* State-changing requests from a browser must come from the service's own origin (`Origin` checked), and the
  `Host` must be one the service answers to (`ROUTEIRL_ALLOWED_HOSTS`).
* `POST /v1/trajectories` and `POST /v1/models` take an `Idempotency-Key`: a retry gets the first answer.
"""

#: The upload endpoint: its body limit is ROUTEIRL_MAX_BODY_BYTES, every other one's ROUTEIRL_MAX_JSON_BODY_BYTES.
#: Endpoints that take GPS documents: the upload body limit (the others take the small JSON limit).
DOCUMENT_PATHS = frozenset({"/v1/trajectories", "/v1/match"})


def _configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("app").setLevel(level.upper())
    logging.getLogger("maxent_irl").setLevel(level.upper())


def _document_constraints(schema: dict[str, Any], settings: Settings, feature_names: list[str] | None) -> None:
    """Write into the OpenAPI document what the server checks but the framework cannot see.

    ``lon,lat`` query strings get their pattern (the parser in app.api.params enforces the same),
    the upload's JSON body its schema, and training's ``features`` the network's names: so a
    request the document calls valid is refused only for what no schema can say (a point off the
    network, a trip that cannot be matched). benchmarks/schemathesis_check.sh holds it to that.
    """
    for item in schema.get("paths", {}).values():
        for op in item.values():
            for param in op.get("parameters", []) if isinstance(op, dict) else []:
                pattern = {"origin": LONLAT_PATTERN, "destination": LONLAT_PATTERN,
                           "coordinates": LONLAT_LIST_PATTERN}.get(param.get("name"))
                if param.get("in") == "query" and pattern and param.get("schema", {}).get("type") == "string":
                    param["schema"]["pattern"] = pattern
                if param.get("name") == "alternatives" and param.get("schema", {}).get("type") == "integer":
                    param["schema"]["maximum"] = settings.max_alternatives
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    trips = TripsIn.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in trips.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault("TripsIn", trips)
    _json_schema_bounds(components)
    features = components.get("TrainRequest", {}).get("properties", {}).get("features", {})
    for option in features.get("anyOf", []):
        if option.get("type") == "array" and feature_names:
            option["items"] = {"type": "string", "enum": list(feature_names)}
            option["uniqueItems"] = True


_BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


def _json_schema_bounds(node: Any) -> None:
    """pydantic writes the bounds of a validated-before number as ``ge``/``le`` (no JSON Schema words): rename them."""
    if isinstance(node, dict):
        if node.get("type") in ("integer", "number"):
            for short, word in _BOUNDS.items():
                if short in node:
                    node[word] = node.pop(short)
        for value in node.values():
            _json_schema_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _json_schema_bounds(value)


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new app; the runtime (database, network, model, worker) starts with the lifespan."""
    settings = settings or Settings()
    _configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        refusal = settings.insecure_exposure()
        if refusal is not None:  # also when uvicorn is started by hand with ROUTEIRL_HOST beyond localhost
            log.error("%s", refusal)
            raise RuntimeError(refusal)
        runtime = Runtime(settings)
        runtime.start()
        app.state.runtime = runtime
        log.info(
            "routeirl ready to serve: network %s, database %s, model %s",
            runtime.label,
            settings.database_path,
            runtime.model_version,
        )
        try:
            yield
        finally:
            runtime.stop()
            app.state.runtime = None

    app = FastAPI(
        title="routeirl",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc: app.api.routes.web, with their scripts served from STATIC_URL
        redoc_url=None,
        responses={"4XX": {"model": ErrorOut, "description": "Error: {code, message, details}"}},
    )
    app.state.settings = settings
    app.state.runtime = None
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static")

    framework_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            rt = app.state.runtime
            names = None if rt is None else list(rt.net.mdp.feature_names)
            _document_constraints(framework_openapi(), settings, names)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    def current() -> tuple[int | None, str | None]:
        rt = app.state.runtime
        return (None, None) if rt is None else rt.header_values()

    def body_limit(scope: MutableMapping[str, Any]) -> tuple[int, str]:
        if scope["path"] in DOCUMENT_PATHS:
            return settings.max_body_bytes, "max_body_bytes"
        return settings.max_json_body_bytes, "max_json_body_bytes"

    hosts = settings.host_allow_list()
    extra_origins = frozenset(h.lower().strip("[]") for h in settings.allowed_hosts or ())

    # Added last = outermost. Host and Origin are checked first, then the body limit before anything
    # that parses the body; the model headers wrap even their 403 and 413 (that middleware only
    # decorates the response).
    app.add_middleware(BodyLimitMiddleware, max_bytes=body_limit)
    app.add_middleware(HostOriginMiddleware, allowed_hosts=lambda: hosts, extra_origins=lambda: extra_origins)
    app.add_middleware(ModelHeadersMiddleware, current=current, keepalive_requests=settings.keepalive_requests)
    return app


app = create_app()
