"""Every answer an impression: a recommendation id handed out with it, and a record of what it
showed, kept in memory for a moment and written to the store in batches by the writer thread,
off the request path (`app.events.service`).

Recommendation ids are opaque and unique across workers and replicas: a random prefix per
process, then a counter (no system call per answer, as `uuid4` would make). An impression not
yet written when its process dies is lost; a rating that answers it then goes unattributed, and
nothing else is. A worker writes its own impressions before any rating it stores, so a rating
posted to the worker that answered is always attributed; a rating posted to another worker or
replica within the flush interval (`FLUSH_SECONDS`) of the answer may miss it.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Iterator

from app.events.changes import Impression

FLUSH_SECONDS = 0.1


def _ids() -> Iterator[str]:
    prefix = secrets.token_hex(6)
    return (f"r{prefix}{n:010x}" for n in itertools.count())


class ImpressionLog:
    def __init__(self) -> None:
        self.ids = _ids()
        self.pending: list[Impression] = []

    def new_id(self) -> str:
        """A recommendation id for an answer about to be given."""
        return next(self.ids)

    def record(
        self,
        rid: str,
        route: str,
        user_id: str | None,
        version: int,
        items: list[str],
        experiment: str | None = None,
        variant: str | None = None,
        credits: tuple[tuple[str, int], ...] | None = None,
    ) -> None:
        """Note the answer `rid` (from `new_id`)."""
        shown = Impression(
            rid, user_id, route, version, tuple(items), time.time(), experiment, variant, credits
        )
        self.pending.append(shown)

    def take(self) -> list[Impression]:
        """Everything noted since the last take (to be written)."""
        pending, self.pending = self.pending, []
        return pending
