"""FastAPI dependencies: the runtime held in ``app.state``, the API key check, pagination.

They are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency on the thread
pool, a thread hop per dependency per request, which is most of the framework's cost in
a millisecond-scale destination query.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Query, Request

from app.api.errors import ApiError
from app.runtime import Runtime
from app.settings import Settings

__all__ = ["ERROR_RESPONSES", "IDEMPOTENCY_KEY_PATTERN", "MAX_DB_INT", "ApiKey", "DbId", "PageParams", "RuntimeDep",
           "SettingsDep", "get_runtime", "require_api_key"]

#: Documented error responses of the resource routers (the body of each is app.schemas.ErrorOut).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or wrong X-API-Key (write endpoints and reads of trips, when a key is set)"},
    403: {"description": "Host not served, or a state-changing request from another origin"},
    404: {"description": "Unknown id"},
    409: {"description": "No active model, or a conflict with the current state"},
    413: {"description": "Body or point count over the limits"},
    422: {"description": "Malformed input, point off the network, invalid path"},
}


async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_settings(rt: RuntimeDep) -> Settings:
    return rt.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def require_api_key(
    rt: RuntimeDep,
    x_api_key: Annotated[
        str | None, Header(description="Required on write endpoints and reads of trips when the service has a key.")
    ] = None,
) -> None:
    """401 unless ``X-API-Key`` matches ``ROUTEIRL_API_KEY`` (when one is set); constant-time compare."""
    key = rt.settings.api_key
    if key is None or not key.get_secret_value():
        return
    if x_api_key is None or not hmac.compare_digest(x_api_key.encode(), key.get_secret_value().encode()):
        raise ApiError(
            401,
            "unauthorized",
            "missing or wrong API key: send it in the X-API-Key header",
            {"header": "X-API-Key"},
        )


ApiKey = Depends(require_api_key)

#: An ``Idempotency-Key``: 1 to 255 visible ASCII characters.
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,255}$"


#: Largest id or offset SQLite can hold (a signed 64-bit integer); beyond it the driver raises OverflowError.
MAX_DB_INT = 2**63 - 1
#: A stored object's id in a path: a positive SQLite integer (422 ``validation_error`` otherwise).
DbId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


async def page_params(
    rt: RuntimeDep,
    limit: Annotated[int, Query(ge=1, description="Items per page (capped by ROUTEIRL_MAX_PAGE_SIZE).")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_DB_INT, description="Items to skip.")] = 0,
) -> Page:
    """``limit`` / ``offset`` query parameters, ``limit`` capped by ``max_page_size``."""
    return Page(min(limit, rt.settings.max_page_size), offset)


PageParams = Annotated[Page, Depends(page_params)]
