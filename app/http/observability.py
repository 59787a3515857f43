"""Request ids, JSON access logs and per-request metrics (`app.metrics`), as one pure ASGI
middleware (Starlette's BaseHTTPMiddleware would add a task and a stream per request on the hot
path).

What a request pays for here is kept small, since every request pays it: request ids come from a
per-process random prefix and a counter instead of `uuid4` (a system call each), and access
lines are written in batches (`AccessLog`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import secrets
import time
from collections.abc import Iterator
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.drain import Drain
from app.metrics import Metrics

access_log = logging.getLogger("app.access")

REQUEST_ID = b"x-request-id"
_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")  # a caller's id is echoed only if harmless


class AccessLog:
    """JSON access lines, handed to the `app.access` logger in batches: one record per
    `FLUSH_SECONDS` (or `FLUSH_LINES` lines), its message the lines joined by newlines. A request
    pays for one orjson call and an append instead of a log record, a lock and a write of its
    own (about 10% of /recommend's requests/s with one record per request). A crash loses at
    most the last `FLUSH_SECONDS` of lines; a shutdown flushes them."""

    FLUSH_SECONDS = 0.05
    FLUSH_LINES = 512

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.timer: asyncio.TimerHandle | None = None

    def add(self, line: str) -> None:
        self.lines.append(line)
        if len(self.lines) >= self.FLUSH_LINES:
            self.flush()
        elif self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(self.FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.lines:
            lines, self.lines = self.lines, []
            access_log.info("\n".join(lines))


class ObservabilityMiddleware:
    """Gives every request an id (the caller's `X-Request-ID` when it is a safe token, else a new
    one), echoes it as a response header, counts and times the request by route template (never
    by raw path: unknown paths count as "unmatched", so label values stay bounded) and, with
    an `access` log, writes one JSON line per request to the `app.access` logger (in batches)."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, access: AccessLog | None, drain: Drain | None = None
    ) -> None:
        self.app, self.metrics, self.access = app, metrics, access
        self.drain = drain  # while it drains (after SIGTERM), each answer closes its connection
        self.ids = _request_ids()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = next((v for k, v in scope["headers"] if k == REQUEST_ID), None)
        request_id = given if given and _SAFE_ID.match(given) else next(self.ids)
        scope.setdefault("state", {})["request_id"] = request_id.decode()
        status = 500  # what the server answers if the app fails before starting a response

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (REQUEST_ID, request_id)]
                if self.drain is not None and self.drain.draining:
                    message["headers"].append((b"connection", b"close"))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            seconds = time.perf_counter() - started
            self.metrics.observe_request(method, template, status, seconds)
            if self.access is not None and access_log.isEnabledFor(logging.INFO):
                self.access.add(_access_line(scope, request_id, method, template, status, seconds))


def _request_ids() -> Iterator[bytes]:
    """32 hex digits each: 16 random per process (workers differ), then a counter."""
    prefix = secrets.token_hex(8)
    return (f"{prefix}{n:016x}".encode() for n in itertools.count())


def _access_line(
    scope: Scope, request_id: bytes, method: str, route: str, status: int, seconds: float
) -> str:
    client = scope.get("client")
    record: dict[str, Any] = {
        "ts": time.time(),
        "event": "request",
        "request_id": request_id.decode(),
        "method": method,
        "path": scope["path"],
        "route": route,
        "status": status,
        "ms": round(seconds * 1000, 3),
        "client": client[0] if client else None,
        "pid": os.getpid(),  # which worker answered
    }
    return orjson.dumps(record).decode()
