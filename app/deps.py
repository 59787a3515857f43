"""What handlers read from the app: the service state and the version it serves.

Plain functions called with the request, not FastAPI dependencies: solving two dependencies per
request was a measurable share of the /recommend hot path (cProfile over direct ASGI calls).
A handler reads the served version once and uses it to the end: a swap never changes the model
under a request in flight.
"""

from __future__ import annotations

from fastapi import Request

from app.auth import require_bearer
from app.errors import AdminDisabled, ModelNotReady, RateLimited
from app.events.live import LiveVersion
from app.events.view import VersionView
from app.quotas import client_of
from app.serving.loader import LoadedVersion
from app.serving.versions import ServedVersion
from app.state import ServiceState


def service_of(request: Request) -> ServiceState:
    service: ServiceState = request.app.state.service
    return service


def served(request: Request) -> ServedVersion[LiveVersion]:
    """The served version, its batcher and its live state; 503 (ModelNotReady) while there is
    none."""
    current = service_of(request).versions.served
    if current is None:
        raise ModelNotReady("no model loaded yet; see the service log for why")
    return current


def loaded(request: Request) -> LoadedVersion:
    return served(request).loaded


def view(request: Request) -> VersionView:
    """The served version's live state (its `loaded` is the served version)."""
    return served(request).live.view


async def history_readable(request: Request) -> None:
    """A dependency of GET /users/{id}/ratings: a rating history is personal data. With API keys
    set only key holders reach it (`app.http.api_keys`); with only RECSYS_WRITE_TOKEN set, it
    takes that token."""
    settings = service_of(request).settings
    if not settings.api_key and settings.write_token is not None:
        require_bearer(request, settings.write_token)


def charge_write(request: Request, cost: int) -> None:
    """Take a write of `cost` events from the caller's quota (RECSYS_WRITE_RATE), before
    anything is stored.

    Raises:
        RateLimited: over it (429 with Retry-After).
    """
    service = service_of(request)
    if service.write_quota is None:
        return
    try:
        service.write_quota.take(client_of(request.scope, bool(service.settings.api_key)), cost)
    except RateLimited:
        service.metrics.rate_limited.labels("write").inc()
        raise


def admin(request: Request) -> ServiceState:
    """The service, once the caller's bearer token is the admin's (compared in constant time).

    Raises:
        AdminDisabled: no RECSYS_ADMIN_TOKEN: the admin routes do not exist (404).
        Unauthorized: missing or wrong (401).
    """
    service = service_of(request)
    token = service.settings.admin_token
    if token is None:
        raise AdminDisabled()
    require_bearer(request, token)
    return service


async def writable(request: Request) -> None:
    """A dependency of the write routes: with RECSYS_WRITE_TOKEN set, the request must carry it
    (checked before the body is read, so an unauthorised caller learns nothing from it). Both
    dependencies are coroutines: FastAPI runs a plain function in its thread pool, a hop that
    cost 7% of the single-event write path's time (bench/README.md, "Ingestion")."""
    token = service_of(request).settings.write_token
    if token is not None:
        require_bearer(request, token)
