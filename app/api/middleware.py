"""Pure-ASGI middleware: request body limit (413) and the model/network response headers.

Pure ASGI rather than ``BaseHTTPMiddleware`` because the latter adds a task and a copy per
request, which shows in the destination-query latency budget.
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from app.api.errors import error_body

__all__ = ["BodyLimitMiddleware", "ModelHeadersMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


class BodyLimitMiddleware:
    """Reject bodies over ``max_bytes`` with 413 before any parsing.

    A declared ``Content-Length`` over the limit is refused at once; a chunked body is read
    up to the limit and refused as soon as it passes it, so a client cannot make the
    service buffer more than ``max_bytes``.
    """

    def __init__(self, app: ASGIApp, max_bytes: Callable[[], int]) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes()
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                await _send_json(send, 400, error_body("bad_request", "invalid Content-Length header"))
                return
            if too_big:
                await _send_json(send, 413, _too_large(limit))
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
                await _send_json(send, 413, _too_large(limit))
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


def _too_large(limit: int) -> dict[str, Any]:
    return error_body(
        "payload_too_large", f"request body exceeds the limit of {limit} bytes", {"max_body_bytes": limit}
    )


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
