"""Request ids, JSON access logs and Prometheus metrics, as one pure ASGI middleware (Starlette's
BaseHTTPMiddleware would add a task and a stream per request on the hot path).

Metrics live in a registry per app (tests build many apps in one process). With several uvicorn
workers each process counts its own requests: a scrape of /metrics reaches one of them.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
            "The model version being served (absent while none is)",
            ("name",),
            registry=self.registry,
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
            "1 while the event store answers, 0 while it does not",
            registry=self.registry,
        )
        self.store_cursor = Gauge(
            "recsys_store_applied_through",
            "The highest event-log id applied to this worker's live state",
            registry=self.registry,
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

    def observe_commit(self, requests: int, events: int) -> None:
        self.commit_requests.observe(requests)
        self.commit_events.observe(events)

    def observe_batch(self, requests: int, instances: int) -> None:
        self.batch_requests.observe(requests)
        self.batch_instances.observe(instances)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class ObservabilityMiddleware:
    """Gives every request an id (the caller's `X-Request-ID` when it is a safe token, else a new
    one), echoes it as a response header, counts and times the request by route template (never
    by raw path: unknown paths count as "unmatched", so label values stay bounded) and, with
    `log_requests`, writes one JSON line per request to the `app.access` logger."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, log_requests: bool, drain: Drain | None = None
    ) -> None:
        self.app, self.metrics, self.log_requests = app, metrics, log_requests
        self.drain = drain  # while it drains (after SIGTERM), each answer closes its connection

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = next((v for k, v in scope["headers"] if k == REQUEST_ID), None)
        request_id = given if given and _SAFE_ID.match(given) else uuid.uuid4().hex.encode()
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
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(seconds)
            if self.log_requests and access_log.isEnabledFor(logging.INFO):
                access_log.info(_access_line(scope, request_id, method, template, status, seconds))


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
    }
    return orjson.dumps(record).decode()
