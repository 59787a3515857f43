"""The one typed object a running service keeps on `app.state.service`."""

from __future__ import annotations

from dataclasses import dataclass

from app.http.drain import Drain
from app.http.observability import Metrics
from app.serving.versions import VersionOwner
from app.settings import Settings


@dataclass(frozen=True)
class ServiceState:
    """Everything handlers and middleware share, built once by `create_app`.

    `versions` owns the served version (and swaps it); the rest is configuration and counters.
    """

    settings: Settings
    metrics: Metrics
    drain: Drain
    versions: VersionOwner

    @classmethod
    def build(cls, settings: Settings) -> ServiceState:
        metrics = Metrics()
        return cls(
            settings, metrics, Drain(settings.drain_seconds), VersionOwner(settings, metrics)
        )
