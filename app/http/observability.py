"""Request ids, JSON access logs and Prometheus metrics, as one pure ASGI middleware (Starlette's
BaseHTTPMiddleware would add a task and a stream per request on the hot path).

Metrics live in a registry per app (tests build many apps in one process). With several uvicorn
workers the values live in client_python's multiprocess files instead (`app.http.metrics_files`)
and a scrape of /metrics, whichever worker answers it, sums them all.

What a request pays for here is kept small, since every request pays it: the labelled metric
children are looked up once per (method, route, status), request ids come from a per-process
random prefix and a counter instead of `uuid4` (a system call each), and access lines are
written in batches (`AccessLog`).
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
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http import metrics_files
from app.http.drain import Drain

access_log = logging.getLogger("app.access")

REQUEST_ID = b"x-request-id"
_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")  # a caller's id is echoed only if harmless
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "recsys_requests",
            "HTTP requests answered, by route template and status",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "recsys_request_duration_seconds",
            "Time from request to the last response byte, by route template",
            ("method", "route"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.model = Gauge(
            "recsys_model_version",
            "The model version being served (absent while none is); one sample per worker "
            "(pid) when several serve",
            ("name",),
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.batch_requests = Histogram(
            "recsys_predict_batch_requests",
            "/predict requests coalesced into one SavedModel call",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_instances = Histogram(
            "recsys_predict_batch_instances",
            "Instances in one coalesced SavedModel call",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )

        self.store_up = Gauge(
            "recsys_store_up",
            "1 while the event store answers, 0 while it does not (for any worker)",
            registry=self.registry,
            multiprocess_mode="livemin",
        )
        self.store_cursor = Gauge(
            "recsys_store_applied_through",
            "The highest event-log id applied to the live state (the slowest worker's)",
            registry=self.registry,
            multiprocess_mode="livemin",
        )
        self.events = Counter(
            "recsys_events",
            "Ratings posted, by outcome (accepted or duplicate)",
            ("outcome",),
            registry=self.registry,
        )
        self.commit_requests = Histogram(
            "recsys_store_commit_requests",
            "Write requests in one group commit",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.commit_events = Histogram(
            "recsys_store_commit_events",
            "Events in one group commit",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )

        # (method, route, status) -> its request counter and latency histogram children
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def observe_commit(self, requests: int, events: int) -> None:
        self.commit_requests.observe(requests)
        self.commit_events.observe(events)

    def observe_batch(self, requests: int, instances: int) -> None:
        self.batch_requests.observe(requests)
        self.batch_instances.observe(instances)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, str(status))
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(*key),
                self.latency.labels(method, route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The text exposition: this registry's, or every worker's in multiprocess mode."""
        shared = metrics_files.directory()
        body = metrics_files.render(shared) if shared else generate_latest(self.registry)
        return body, CONTENT_TYPE_LATEST


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
