"""Typed errors: what an answer that is not a 200 means, with the fields the service sends."""

from __future__ import annotations

from typing import Any


class RecsysError(Exception):
    """Any answer other than 200 (or no answer at all); `status` is the HTTP status (0: none)."""

    def __init__(self, status: int, detail: str, body: Any = None):
        super().__init__(f"{status}: {detail}" if status else detail)
        self.status = status
        self.detail = detail
        self.body = body


class NotFound(RecsysError):
    """404: unknown users or items (at most 20 of each), or an unknown experiment or version."""

    def __init__(self, status: int, detail: str, body: Any = None):
        super().__init__(status, detail, body)
        body = body if isinstance(body, dict) else {}
        self.unknown_user_ids: list[str] = list(body.get("unknown_user_ids", []))
        self.unknown_item_ids: list[str] = list(body.get("unknown_item_ids", []))


class Invalid(RecsysError):
    """422 (or a request the client could not build): `field` is the first field the service
    names, dotted (`events.3.rating`); `errors` every one of them."""

    def __init__(self, status: int, detail: str, body: Any = None):
        errors = body.get("detail") if isinstance(body, dict) else None
        self.errors: list[dict[str, Any]] = errors if isinstance(errors, list) else []
        self.field = _dotted(self.errors[0].get("loc", [])) if self.errors else None
        if self.errors:
            detail = "; ".join(f"{_dotted(e.get('loc', []))}: {e.get('msg')}" for e in self.errors)
        super().__init__(status, detail, body)


class TooLarge(RecsysError):
    """413: the body is over RECSYS_MAX_BODY_BYTES."""


class Unauthorized(RecsysError):
    """401: a missing or wrong API key or token."""


class Conflict(RecsysError):
    """409: the service refused the change (a version that cannot serve, a running experiment)."""


class RateLimited(RecsysError):
    """429: over this client's rate; `retry_after` seconds until the same request would pass."""

    def __init__(self, status: int, detail: str, body: Any = None, retry_after: float = 1.0):
        super().__init__(status, detail, body)
        self.retry_after = retry_after


class Unavailable(RecsysError):
    """503 (no version served, the event store down), or no answer: the connection failed or
    timed out (`status` 0). `retry_after`: the service's hint, where it gave one."""

    def __init__(
        self, status: int, detail: str, body: Any = None, retry_after: float | None = None
    ):
        super().__init__(status, detail, body)
        self.retry_after = retry_after


def _dotted(loc: list[Any]) -> str:
    """A 422's `loc` as a field name: `events.3.rating` (without `body`, `query`, `path`)."""
    parts = loc[1:] if loc and loc[0] in ("body", "query", "path") else loc
    return ".".join(str(p) for p in parts)


BY_STATUS: dict[int, type[RecsysError]] = {
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    422: Invalid,
    429: RateLimited,
    503: Unavailable,
}


def error_for(status: int, body: Any, retry_after: float | None) -> RecsysError:
    detail = body.get("detail") if isinstance(body, dict) else None
    text = detail if isinstance(detail, str) else str(body)[:500]
    kind = BY_STATUS.get(status, RecsysError)
    if kind is RateLimited:
        wait = retry_after if retry_after is not None else float(body.get("retry_after", 1))
        return RateLimited(status, text, body, wait)
    if kind is Unavailable:
        return Unavailable(status, text, body, retry_after)
    return kind(status, text, body)
