"""Every error the API returns has the body ``{code, message, details}``.

Routers raise :class:`ApiError` or let an error of the service layer
(:mod:`app.services.errors`) or a domain error of :mod:`maxent_irl` / :mod:`maxent_irl.roads`
escape; the handlers installed by :func:`install_error_handlers` turn each into a 4xx with
a stable machine-readable ``code``. Only a genuine bug ends as a 500 (``internal_error``),
and then as the same JSON, without a traceback.

Error bodies are bounded whatever the input (:func:`error_body`): a message is cut to
:data:`MAX_MESSAGE_CHARS`, ``details`` keeps the first :data:`MAX_DETAIL_ITEMS` entries of a
list (and says how many there were), strings in it are cut, and text that is not valid
Unicode (a lone surrogate from a JSON escape) is shown escaped instead of failing the answer.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.services import errors as service_errors
from maxent_irl import exceptions as core_errors
from maxent_irl import roads

__all__ = ["MAX_DETAIL_ITEMS", "MAX_MESSAGE_CHARS", "ApiError", "bounded", "error_body", "error_response",
           "install_error_handlers"]

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with an HTTP status and a stable ``code`` clients can switch on."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    # The named constructors keep codes and statuses consistent across routers.
    @classmethod
    def not_found(cls, what: str, ident: object) -> ApiError:
        return cls(404, f"{what}_not_found", f"no {what} with id {ident}", {"id": ident})

    @classmethod
    def no_active_model(cls) -> ApiError:
        return cls(
            409,
            "no_active_model",
            "no model is active yet: post trips and train one (POST /v1/models), or wait for the demo model",
        )

    @classmethod
    def off_network(cls, message: str, details: Any = None) -> ApiError:
        return cls(422, "point_off_network", message, details)

    @classmethod
    def too_large(cls, message: str, details: Any = None) -> ApiError:
        return cls(413, "payload_too_large", message, details)

    @classmethod
    def bad_request(cls, message: str, details: Any = None, code: str = "invalid_request") -> ApiError:
        return cls(422, code, message, details)


#: Longest ``message`` of an error body (characters); longer ones are cut with a note.
MAX_MESSAGE_CHARS = 1_000
#: Most entries of a list (or keys of an object) in ``details``; a list cut short ends with a note entry.
MAX_DETAIL_ITEMS = 20
#: Longest string inside ``details``.
MAX_DETAIL_CHARS = 300
#: Deepest nesting kept in ``details``.
MAX_DETAIL_DEPTH = 5


def _text(value: str, limit: int) -> str:
    """``value`` as valid UTF-8 text (lone surrogates escaped as ``\\udxxx``), cut to about ``limit`` characters."""
    if len(value) > limit:
        value = f"{value[:limit]}... ({len(value)} characters)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def bounded(value: Any, depth: int = 0) -> Any:
    """JSON-ready ``details`` of bounded size: lists and objects cut to :data:`MAX_DETAIL_ITEMS`, strings cut."""
    if isinstance(value, str):
        return _text(value, MAX_DETAIL_CHARS)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= MAX_DETAIL_DEPTH:
        return _text(repr(value), MAX_DETAIL_CHARS)
    if isinstance(value, dict):
        items = list(value.items())
        out = {_text(str(k), 100): bounded(v, depth + 1) for k, v in items[:MAX_DETAIL_ITEMS]}
        if len(items) > MAX_DETAIL_ITEMS:
            out["truncated"] = f"{len(items) - MAX_DETAIL_ITEMS} more keys not shown"
        return out
    if isinstance(value, list | tuple | set | frozenset):
        seq = list(value) if not isinstance(value, list) else value
        out_list = [bounded(v, depth + 1) for v in seq[:MAX_DETAIL_ITEMS]]
        if len(seq) > MAX_DETAIL_ITEMS:
            out_list.append({"truncated": True, "shown": MAX_DETAIL_ITEMS, "total": len(seq),
                             "message": f"{len(seq) - MAX_DETAIL_ITEMS} more not shown"})
        return out_list
    return bounded(jsonable_encoder(value), depth + 1)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """``{code, message, details}``, bounded in size whatever the input (see the module docstring)."""
    return {"code": _text(code, 100), "message": _text(str(message), MAX_MESSAGE_CHARS), "details": bounded(details)}


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


_json = error_response


def _validation_details(exc: RequestValidationError) -> tuple[list[dict[str, Any]], int]:
    """One entry per offending field, the first :data:`MAX_DETAIL_ITEMS` only (where, what, pydantic's type),
    and how many there are; a note entry ends a list cut short."""
    errors = exc.errors()
    out: list[dict[str, Any]] = []
    for err in errors[: MAX_DETAIL_ITEMS - 1]:
        loc = [str(p) for p in err.get("loc", ())]
        out.append({"field": ".".join(loc), "message": err.get("msg", "invalid"), "type": err.get("type", "")})
    if len(errors) > len(out):
        out.append({"truncated": True, "shown": len(out), "total": len(errors),
                    "message": f"{len(errors) - len(out)} more not shown"})
    return out, len(errors)


# Domain errors of the core and of the roads layer -> (status, code). Looked up by isinstance,
# most specific first, so a new subclass falls back to its parent's code instead of a 500.
_CORE_MAP: list[tuple[type[BaseException], int, str]] = [
    (core_errors.InvalidPathError, 422, "invalid_path"),
    (core_errors.UnreachableDestinationError, 422, "unreachable_destination"),
    (core_errors.InvalidParameterError, 422, "invalid_parameter"),
    (core_errors.NotFittedError, 409, "no_active_model"),
    (core_errors.PartitionFunctionDivergedError, 409, "model_diverged"),
    (core_errors.NumericalRangeError, 422, "numerical_range"),
    (core_errors.InvalidMDPError, 422, "invalid_mdp"),
]


_ROADS_MAP: list[tuple[type[Exception], int, str]] = [
    (roads.GPSFormatError, 422, "invalid_gps_data"),
    (roads.InvalidTraceError, 422, "invalid_trace"),
    (roads.MapMatchingError, 422, "map_matching_failed"),
    (roads.UnknownSegmentError, 422, "unknown_segment"),
    (roads.RoadsError, 422, "roads_error"),
]

#: The service layer's errors -> HTTP status (their code is their own).
_SERVICE_STATUS: list[tuple[type[service_errors.ServiceError], int]] = [
    (service_errors.NotFoundError, 404),
    (service_errors.ConflictError, 409),
    (service_errors.TooLargeError, 413),
    (service_errors.TooManyRequestsError, 429),
    (service_errors.UnsupportedMediaTypeError, 415),
    (service_errors.InvalidInputError, 422),
    (service_errors.ServiceError, 422),
]


def classify(exc: BaseException) -> tuple[int, str] | None:
    """``(status, code)`` for a known domain error, ``None`` for anything else."""
    if isinstance(exc, service_errors.ServiceError):
        return next(status for cls, status in _SERVICE_STATUS if isinstance(exc, cls)), exc.code
    for cls, status, code in [*_CORE_MAP, *_ROADS_MAP]:
        if isinstance(exc, cls):
            return status, code
    return None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _json(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details, total = _validation_details(exc)
        if details and all(d.get("type") == "json_invalid" for d in details):  # the body is not JSON at all
            return _json(422, "invalid_json", f"body is not valid JSON: {details[0]['message']}", details)
        first = details[0] if details else {"field": "", "message": "invalid request"}
        message = f"{first['field'] or 'request'}: {first['message']}"
        if total > 1:
            message += f" (and {total - 1} more)"
        return _json(422, "validation_error", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        try:
            phrase = HTTPStatus(exc.status_code).phrase
        except ValueError:
            phrase = "error"
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 413: "payload_too_large"}.get(
            exc.status_code, phrase.lower().replace(" ", "_").replace("-", "_")
        )
        message = exc.detail if isinstance(exc.detail, str) else phrase
        headers = dict(getattr(exc, "headers", None) or {})
        details = None
        if exc.status_code == 405:
            # Starlette names the methods of the first route on the path only; the path may have several
            allowed = allowed_methods(request) or [m.strip() for m in headers.get("Allow", "").split(",") if m.strip()]
            headers["Allow"] = ", ".join(allowed)
            details = {"allowed": allowed}
            message = f"{request.method} is not allowed on {request.url.path}; allowed: {', '.join(allowed)}"
        return _json(exc.status_code, code, message, details, headers or None)

    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Starlette runs this in its outermost middleware, then re-raises for the server to log the traceback
        return _json(500, "internal_error", "internal server error (logged on the server)")

    app.add_exception_handler(Exception, _unexpected)

    async def _known(_: Request, exc: Exception) -> JSONResponse:
        return _domain(exc)

    async def _service(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, service_errors.ServiceError)
        status, code = classify(exc) or (422, exc.code)
        retry = getattr(exc, "retry_after_s", None)
        return _json(status, code, exc.message, exc.details, None if retry is None else {"Retry-After": str(retry)})

    # Registered per class (not via a catch-all ``Exception`` handler, which Starlette runs
    # outside the middleware stack and treats as a server error).
    app.add_exception_handler(service_errors.ServiceError, _service)
    app.add_exception_handler(core_errors.MaxEntIRLError, _known)
    for cls, _status, _code in _ROADS_MAP:
        app.add_exception_handler(cls, _known)


_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})


def allowed_methods(request: Request) -> list[str]:
    """Every method the OpenAPI document gives the request's path (for the ``Allow`` header of a 405).

    Read from the document rather than the router, so ``Allow`` says exactly what is documented.
    """
    methods: set[str] = set()
    path = request.url.path
    for template, item in request.app.openapi().get("paths", {}).items():
        if re.fullmatch("[^/]+".join(re.escape(part) for part in re.split(r"\{[^/}]+\}", template)), path):
            methods |= {m.upper() for m in item if m in _HTTP_METHODS}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def _domain(exc: BaseException) -> JSONResponse:
    found = classify(exc)
    if found is not None:
        status, code = found
        details: dict[str, Any] = {"error": type(exc).__name__}
        reason = getattr(exc, "reason", None)
        if reason:
            details["reason"] = reason
            if reason == "off_network":
                code = "point_off_network"
        return _json(status, code, str(exc) or code, details)
    log.error("unhandled error", exc_info=(type(exc), exc, exc.__traceback__))
    return _json(500, "internal_error", "internal server error")
