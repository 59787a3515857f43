"""The service's Prometheus metrics: one registry per app (tests build many apps in one
process), or, with several uvicorn workers, client_python's multiprocess files
(`app.metrics_files`), so a scrape of /metrics on any worker sums them all.

Every layer counts here (the version owner, the event store, the HTTP middleware); the HTTP
layer only exposes the result at /metrics. The labelled children of the per-request metrics are
looked up once per (method, route, status): every request pays for that lookup otherwise.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from app import metrics_files

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

        self.versions_refused = Gauge(
            "recsys_versions_refused",
            "Versions on disk that failed their checks and are not served (retried when their "
            "manifest changes or on a reload)",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.store_synced = Gauge(
            "recsys_store_last_sync_timestamp_seconds",
            "When the event store last answered a poll (Unix time; the stalest worker's)",
            registry=self.registry,
            multiprocess_mode="livemin",
        )
        self.fold_in_pending = Gauge(
            "recsys_fold_in_pending_users",
            "Live users waiting to be folded in against a newly served version (after a swap or "
            "at start-up; the busiest worker's)",
            registry=self.registry,
            multiprocess_mode="livemax",
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
        self.impressions = Counter(
            "recsys_impressions",
            "Answers recorded as impressions, by route, version and variant (empty: none)",
            ("route", "version", "variant"),
            registry=self.registry,
        )
        self.hits = Counter(
            "recsys_hits",
            "Ratings attributed to an impression (hits), by the version and variant that placed "
            "the item",
            ("version", "variant"),
            registry=self.registry,
        )
        self.retrain_refused = Gauge(
            "recsys_retrain_refused_total",
            "Retrain rounds the gate refused, as the event store's history records them (the "
            "last 50 rounds per model; a gauge read from the store, the same on every worker)",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.rate_limited = Counter(
            "recsys_rate_limited",
            "Requests refused (429) over their client's rate limit, by kind (write, read)",
            ("kind",),
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
        self._impression_children: dict[tuple[str, str, str], Any] = {}

    def impression(self, route: str, version: int, variant: str | None) -> None:
        key = (route, str(version), variant or "")
        child = self._impression_children.get(key)
        if child is None:
            child = self._impression_children[key] = self.impressions.labels(*key)
        child.inc()

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
