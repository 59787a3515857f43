"""How fast one client may write (and, when asked for, read): a token bucket per client.

A client is the API key it presented (RECSYS_API_KEY), or else its address. Writes cost one
token per event (`POST /events`) or per write (`PUT /items`, `DELETE /users`): the bucket holds
up to `burst` tokens and refills at `rate` per second (RECSYS_WRITE_RATE, RECSYS_WRITE_BURST);
a request that finds too few answers 429 with `Retry-After` (seconds until it would pass) and
stores nothing. A request larger than the burst passes once the bucket is full and leaves it
in debt. Reads cost one token per request when RECSYS_READ_RATE is set (default: unlimited).

Buckets live in each worker process: with several workers (or replicas) a client may write up
to that many times the rate. The buckets of the least recently seen clients are dropped beyond
`MAX_CLIENTS` (a dropped client starts again with a full bucket).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import RateLimited
from app.http.api_keys import OPEN, OPEN_PREFIXES

MAX_CLIENTS = 100_000


class Quota:
    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # (tokens, at)

    def take(self, client: str, cost: float) -> None:
        """Take `cost` tokens from `client`'s bucket.

        Raises:
            RateLimited: too few tokens (nothing taken); `retry_after` seconds until enough.
        """
        now = self.clock()
        tokens, at = self.buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        needed = min(cost, self.burst)
        if tokens < needed:
            self._keep(client, tokens, now)
            raise RateLimited(math.ceil((needed - tokens) / self.rate))
        self._keep(client, tokens - cost, now)

    def _keep(self, client: str, tokens: float, now: float) -> None:
        self.buckets[client] = (tokens, now)
        if len(self.buckets) > MAX_CLIENTS:
            self.buckets.popitem(last=False)


def client_of(scope: Scope, keyed: bool) -> str:
    """Who a request comes from: its API key (when keys are in use), else its address."""
    if keyed:
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                return f"key:{value.decode('latin-1')}"
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                return f"key:{value[7:].decode('latin-1')}"
    client = scope.get("client")
    return "address:" + (client[0] if client else "unknown")


WRITES = (("POST", "/events"), ("PUT", "/items/"), ("DELETE", "/users/"))


def is_write(scope: Scope) -> bool:
    method, path = scope["method"], scope["path"]
    return any(
        method == m and (path == p or p.endswith("/") and path.startswith(p)) for m, p in WRITES
    )


class ReadQuotaMiddleware:
    """RECSYS_READ_RATE: one token per request that is not a write (writes have their own
    quota, taken by their handlers once they know how many events they carry)."""

    def __init__(
        self, app: ASGIApp, quota: Quota, keyed: bool, counted: Callable[[], None]
    ) -> None:
        self.app, self.quota, self.keyed, self.counted = app, quota, keyed, counted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] == "http"
            and not is_write(scope)
            and path not in OPEN  # probes, scrapes and the page's files are never held back
            and not path.startswith(OPEN_PREFIXES)
        ):
            try:
                self.quota.take(client_of(scope, self.keyed), 1)
            except RateLimited as refused:
                self.counted()
                await refused.send(send)
                return
        await self.app(scope, receive, send)
