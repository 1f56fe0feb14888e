"""Pure-ASGI middleware: the model headers and the keep-alive rotation."""

from __future__ import annotations

import asyncio
import random

from app.api.middleware import ModelHeadersMiddleware


async def _ok(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _headers(app, n: int) -> list[dict[bytes, bytes]]:
    out: list[dict[bytes, bytes]] = []

    async def run() -> None:
        for _ in range(n):
            async def send(message) -> None:
                if message["type"] == "http.response.start":
                    out.append(dict(message["headers"]))

            async def receive() -> dict:
                return {"type": "http.request", "body": b"", "more_body": False}

            await app({"type": "http", "method": "GET", "state": {}}, receive, send)

    asyncio.run(run())
    return out


def test_model_headers_and_keepalive_rotation() -> None:
    random.seed(0)
    never = _headers(ModelHeadersMiddleware(_ok, current=lambda: (7, "andorra@abc")), 200)
    assert all(h[b"x-routeirl-model-version"] == b"7" and h[b"x-routeirl-network"] == b"andorra@abc" for h in never)
    assert not any(b"connection" in h for h in never)
    always = _headers(ModelHeadersMiddleware(_ok, current=lambda: (None, None), keepalive_requests=1), 50)
    assert all(h[b"connection"] == b"close" and h[b"x-routeirl-model-version"] == b"none" for h in always)
    some = _headers(ModelHeadersMiddleware(_ok, current=lambda: (1, None), keepalive_requests=20), 2000)
    closes = sum(h.get(b"connection") == b"close" for h in some)
    assert 50 <= closes <= 160  # about 1 in 20 (binomial mean 100, sd ~10)
