"""The one typed object a running service keeps on `app.state.service`."""

from __future__ import annotations

from dataclasses import dataclass

from app.events.control import ControlRows, StoreControl
from app.events.live import LiveVersion
from app.events.service import EventService
from app.experiments.owner import Experiments
from app.http.drain import Drain
from app.http.observability import AccessLog
from app.metrics import Metrics
from app.quotas import Quota
from app.serving.control import ControlFile
from app.serving.versions import VersionOwner
from app.settings import Settings


@dataclass(frozen=True)
class ServiceState:
    """Everything handlers and middleware share, built once by `create_app`.

    `versions` owns the served version (and swaps it); `events` owns the event store and the
    live state built from it; `experiments` the running experiment and each request's route
    through it; the rest is configuration and counters.
    """

    settings: Settings
    metrics: Metrics
    drain: Drain
    versions: VersionOwner[LiveVersion]
    events: EventService
    access: AccessLog | None  # None: RECSYS_ACCESS_LOG off
    write_quota: Quota | None  # None: RECSYS_WRITE_RATE off
    experiments: Experiments

    @classmethod
    def build(cls, settings: Settings) -> ServiceState:
        metrics = Metrics()
        events = EventService(settings, metrics)
        legacy = ControlFile(settings.data_dir / "admin" / f"{settings.model_name}.json")
        rows = ControlRows(events.store, events.reader)
        control = StoreControl(rows, settings.model_name, legacy)
        versions = VersionOwner(settings, metrics, events.serve, control)
        access = AccessLog() if settings.access_log else None
        quota = None
        if settings.write_rate > 0:
            quota = Quota(settings.write_rate, settings.write_burst)
        drain = Drain(settings.drain_seconds)
        experiments = Experiments(settings, rows, versions, metrics)
        return cls(settings, metrics, drain, versions, events, access, quota, experiments)
