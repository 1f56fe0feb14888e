"""Running the API: :func:`main`, behind ``routeirl serve`` / ``python -m app serve`` (what ``./scripts/serve`` and
the Docker image run).

Two things uvicorn does not do by itself:

* **Timeouts for slow clients.** uvicorn closes an idle keep-alive connection, but a client that
  connects and sends nothing, sends its headers a byte at a time, or stalls in the middle of a
  body holds its connection (and the buffered body) for as long as it likes. :class:`HttpProtocol`
  (uvicorn's httptools protocol, subclassed) adds a deadline for the request line and headers
  (``ROUTEIRL_TIMEOUT_HEADERS_S``), one for the whole body (``ROUTEIRL_TIMEOUT_BODY_S``) and one
  between body bytes (``ROUTEIRL_TIMEOUT_BODY_IDLE_S``), caps the size of the headers
  (``ROUTEIRL_MAX_HEADER_BYTES``; httptools has no limit), and answers each case, as well as
  requests httptools cannot parse, with the API's JSON error body instead of plain text.
* **Safe defaults.** :func:`main` refuses to serve beyond localhost without an API key unless
  ``ROUTEIRL_ALLOW_INSECURE`` is set; with ``ROUTEIRL_GENERATE_API_KEY`` it makes a key once,
  keeps it in ``<data_dir>/api_key`` (0600) and logs it (the Docker image does this).

The protocol relies on uvicorn's internals (pinned: uvicorn 0.54): tests/app/test_slow_clients.py
checks each timeout against a real server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from app.api.errors import error_body
from app.settings import Settings

__all__ = ["HttpProtocol", "ensure_api_key", "main", "uvicorn_options"]

log = logging.getLogger("app.server")


class _HeadTooLargeError(Exception):
    """Raised from a parser callback to stop parsing a request whose line and headers are over the limit
    (httptools turns it into a parser error, which uvicorn answers through ``send_400_response``)."""


@functools.cache
def _settings() -> Settings:
    """This process's settings (uvicorn's worker processes inherit the launcher's environment)."""
    return Settings()


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header / body deadlines, a header size cap and JSON errors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        s = _settings()
        self._timeout_headers = s.timeout_headers_s
        self._timeout_body = s.timeout_body_s
        self._timeout_body_idle = s.timeout_body_idle_s
        self._max_head = s.max_header_bytes
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._in_head = True  # between requests or inside a request line / headers
        self._head_bytes = 0  # bytes received while in the head (an upper bound of its size)
        self._head_size = 0  # size of the parsed request line and headers
        self._head_overflow = False  # set by a parser callback just before it stops the parser

    # --- timers ----------------------------------------------------------------------------
    def _cancel(self, *names: str) -> None:
        for name in names:
            timer = getattr(self, name)
            if timer is not None:
                timer.cancel()
                setattr(self, name, None)

    def _arm_head(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self._timeout_headers, self._expired, "headers")

    def _arm_idle(self) -> None:
        self._cancel("_idle_timer")
        self._idle_timer = self.loop.call_later(self._timeout_body_idle, self._expired, "body_idle")

    def _expired(self, what: str) -> None:
        if what == "headers":
            self._head_timer = None
        elif what == "body":
            self._body_timer = None
        else:
            self._idle_timer = None
        if self.transport is None or self.transport.is_closing():
            return
        if self.flow is not None and self.flow.read_paused:
            # we stopped reading (the app has not taken the buffered body yet): not the client's fault
            if what == "headers":
                self._arm_head()
            elif what == "body_idle":
                self._arm_idle()
            return
        if what == "headers" and self.cycle is not None and not self.cycle.response_complete:
            self._arm_head()  # a pipelined request waits while the previous one is answered
            return
        seconds = {"headers": self._timeout_headers, "body": self._timeout_body}.get(what, self._timeout_body_idle)
        message = {
            "headers": f"the request line and headers did not arrive within {seconds:g} s",
            "body": f"the request body did not arrive whole within {seconds:g} s",
            "body_idle": f"no part of the request body arrived for {seconds:g} s",
        }[what]
        self.logger.info("closing a slow connection from %s: %s", self.client, message)
        self._reject(408, "request_timeout", message, {"timeout_s": seconds})

    def _reject(self, status: int, code: str, message: str, details: Any = None) -> None:
        """Answer with a JSON error (unless a response has begun) and close the connection."""
        cycle = self.cycle
        started = cycle is not None and not cycle.response_complete and cycle.response_started
        if not started:
            body = json.dumps(error_body(code, message, details)).encode()
            head = [STATUS_LINE[status]]
            for name, value in self.server_state.default_headers:
                head += [name, b": ", value, b"\r\n"]
            head += [b"content-type: application/json\r\n", b"content-length: ", str(len(body)).encode(),
                     b"\r\n", b"connection: close\r\n", b"\r\n", body]
            self.transport.write(b"".join(head))
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's receive() sees a disconnect, its send() does nothing
            cycle.message_event.set()
        self._cancel("_head_timer", "_body_timer", "_idle_timer")
        self.transport.close()

    # --- uvicorn's protocol hooks ---------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head()  # a client that connects and sends nothing is dropped too

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel("_head_timer", "_body_timer", "_idle_timer")
        super().connection_lost(exc)

    def _too_large_head(self) -> None:
        self._reject(431, "request_header_fields_too_large", f"the request line and headers exceed {self._max_head} "
                     "bytes", {"max_header_bytes": self._max_head})

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)  # a callback's _HeadTooLargeError ends in send_400_response (httptools wraps it)
        if self._in_head and self._head_bytes > self._max_head and not self.transport.is_closing():
            self._too_large_head()  # an incomplete head already over the limit: httptools would buffer it all

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        if self._head_size > self._max_head:
            self._head_overflow = True
            raise _HeadTooLargeError
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        if self._head_size > self._max_head:
            self._head_overflow = True
            raise _HeadTooLargeError
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        if self._head_overflow:
            self._too_large_head()
        else:
            self._reject(400, "bad_request", f"invalid HTTP request: {msg}")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_size = 0
        self._arm_head()

    def on_headers_complete(self) -> None:
        self._cancel("_head_timer")
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()
        self._body_timer = self.loop.call_later(self._timeout_body, self._expired, "body")
        self._arm_idle()

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._arm_idle()

    def on_message_complete(self) -> None:
        self._cancel("_body_timer", "_idle_timer")
        self._in_head = True
        self._head_bytes = 0
        super().on_message_complete()


# --- the launcher ---------------------------------------------------------------------------------
def ensure_api_key(settings: Settings) -> Settings:
    """The settings to serve with: refuses an insecure start, generates a key when asked.

    With ``generate_api_key`` and no key, the key is read from ``<data_dir>/api_key`` or
    made there (0600) and logged once; it is put in the environment so the API processes
    that uvicorn starts use it.
    """
    if settings.generate_api_key and not settings.has_api_key:
        path = Path(settings.data_dir) / "api_key"
        key = path.read_text().strip() if path.is_file() else ""
        if not key:
            key = secrets.token_urlsafe(32)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(key + "\n")
            log.warning("generated an API key (kept in %s): %s  -- send it as X-API-Key", path, key)
        else:
            log.info("using the API key kept in %s", path)
        os.environ["ROUTEIRL_API_KEY"] = key
        settings = settings.model_copy(update={"api_key": SecretStr(key)})
    refusal = settings.insecure_exposure()
    if refusal is not None:
        raise SystemExit(refusal)
    if not settings.is_loopback and settings.allow_insecure and not settings.has_api_key:
        log.warning("serving on %s without an API key (ROUTEIRL_ALLOW_INSECURE): anyone who reaches the port can "
                    "upload, train, activate and read raw GPS", settings.host)
    return settings


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.run`` for these settings (the protocol, the keep-alive timeout)."""
    return {
        "http": "app.server:HttpProtocol",
        "timeout_keep_alive": settings.timeout_keep_alive_s,
        "log_level": settings.log_level,
        "server_header": False,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="routeirl serve", description="Run the routeirl API.")
    parser.add_argument("--host", help="interface to bind (default: ROUTEIRL_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: ROUTEIRL_PORT or 8000)")
    parser.add_argument("--workers", type=int, help="API processes (default: ROUTEIRL_WORKERS or 2)")
    parser.add_argument("--reload", action="store_true", help="restart on code changes (development; one process)")
    args = parser.parse_args(argv)
    # the API processes read their settings from the environment: what is given here goes there
    for name, value in (("HOST", args.host), ("PORT", args.port), ("WORKERS", args.workers)):
        if value is not None:
            os.environ[f"ROUTEIRL_{name}"] = str(value)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    settings = ensure_api_key(Settings())
    import uvicorn

    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run("app.main:app", host=settings.host, port=settings.port, reload=args.reload,
                    workers=None if args.reload else settings.workers, **uvicorn_options(settings))
    return 0

