"""Pure-ASGI middleware: Host / Origin checks (403), request body limits (413), the model/network headers.

Pure ASGI rather than ``BaseHTTPMiddleware`` because the latter adds a task and a copy per
request, which shows in the destination-query latency budget.
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from app.api.errors import error_body

__all__ = ["STATE_CHANGING", "BodyLimitMiddleware", "HostOriginMiddleware", "ModelHeadersMiddleware"]

#: Methods that change state: the Origin check applies to them.
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def _send_json(send: Send, status: int, body: dict[str, Any], close: bool = False) -> None:
    raw = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    if close:  # the request body is left unread: the connection cannot serve another request
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((v for k, v in scope["headers"] if k == name), None)


def _host_name(host: str) -> str:
    """The name part of a ``Host`` value (``[::1]:8000`` -> ``::1``, ``Example.com:80`` -> ``example.com``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1: host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _netloc(value: str, scheme: str) -> str:
    """``host[:port]`` lower case, without the scheme's default port."""
    value = value.strip().lower()
    default = {"http": ":80", "https": ":443"}.get(scheme, "")
    return value[: -len(default)] if default and value.endswith(default) else value


class HostOriginMiddleware:
    """Refuse requests for a host the service does not serve, and state-changing requests from other origins (403).

    * ``Host`` must name an allowed host (``allowed_hosts()``; ``None`` = any): a web page whose
      domain was re-pointed at this machine (DNS rebinding) sends its own name and is refused.
    * A ``POST``/``PUT``/``PATCH``/``DELETE`` that carries an ``Origin`` (browsers add it) must come
      from the service's own origin (scheme, host and port of the request) or from a host listed in
      ``extra_origins()``: a cross-site form or script cannot upload, train or activate (CSRF).
      Requests without ``Origin`` (curl, scripts) are not browsers' and pass.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Callable[[], frozenset[str] | None],
                 extra_origins: Callable[[], frozenset[str]]) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.extra_origins = extra_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = (_header(scope, b"host") or b"").decode("latin-1")
        allowed = self.allowed_hosts()
        if allowed is not None and _host_name(host) not in allowed:
            await _send_json(send, 403, error_body(
                "host_not_allowed", f"this service does not answer to the host {host!r}: set ROUTEIRL_ALLOWED_HOSTS "
                "to serve it under that name", {"host": host}))
            return
        origin = _header(scope, b"origin")
        if scope["method"] in STATE_CHANGING and origin is not None:
            text = origin.decode("latin-1").strip()
            scheme, _, rest = text.partition("://")
            scheme = scheme.lower()
            own = scheme == scope.get("scheme", "http") and _netloc(rest, scheme) == _netloc(host, scheme)
            if not own and (not rest or _host_name(rest) not in self.extra_origins()):
                await _send_json(send, 403, error_body(
                    "origin_not_allowed", f"state-changing requests from the origin {text!r} are not allowed (only "
                    "from the service's own pages, or hosts in ROUTEIRL_ALLOWED_HOSTS)", {"origin": text}))
                return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Reject bodies over the limit of their endpoint with 413 before any parsing.

    ``max_bytes(scope)`` is the limit of the request and the name of its setting (uploads get a
    larger one than queries).
    A declared ``Content-Length`` over the limit is refused at once; a chunked body is read
    up to the limit and refused as soon as it passes it, so a client cannot make the
    service buffer more than the limit. The 413 closes the connection (the rest of the body
    is never read).
    """

    def __init__(self, app: ASGIApp, max_bytes: Callable[[Scope], tuple[int, str]]) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        limit, name = self.max_bytes(scope)
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                await _send_json(send, 400, error_body("bad_request", "invalid Content-Length header"), close=True)
                return
            if too_big:
                await _send_json(send, 413, _too_large(limit, name), close=True)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                await _send_json(send, 413, _too_large(limit, name), close=True)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        buffered = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": buffered, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _too_large(limit: int, name: str) -> dict[str, Any]:
    return error_body("payload_too_large", f"request body exceeds this endpoint's limit of {limit} bytes",
                      {name: limit})


class ModelHeadersMiddleware:
    """Add ``X-RouteIRL-Model-Version`` and ``X-RouteIRL-Network`` to every response.

    The values are the ones an endpoint used (it records them in ``request.state``), or
    else the ones active at the time of the response.

    It also ends keep-alive connections now and then: with ``keepalive_requests`` = N > 0,
    a response carries ``Connection: close`` with probability 1/N, so a connection serves
    about N requests (nginx's ``keepalive_requests`` does the same with a count). The API
    processes share one listening socket, and a client's connection stays with the process
    that accepted it; without this, a few busy long-lived connections can all sit on one
    process while another idles. Reconnecting lets the least busy process, the one waiting
    in ``accept``, pick them up.
    """

    def __init__(
        self, app: ASGIApp, current: Callable[[], tuple[int | None, str | None]], keepalive_requests: int = 0
    ) -> None:
        self.app = app
        self.current = current
        self.close_probability = 1.0 / keepalive_requests if keepalive_requests > 0 else 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state") or {}
                version, network = self.current()
                version = state.get("model_version", version)
                network = state.get("network", network)
                headers = list(message.get("headers", []))
                headers.append((b"x-routeirl-model-version", b"none" if version is None else str(version).encode()))
                if network:
                    headers.append((b"x-routeirl-network", network.encode()))
                if self.close_probability and random.random() < self.close_probability:
                    headers.append((b"connection", b"close"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
