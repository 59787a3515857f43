"""The event store as the service uses it: writes group-committed in one writer thread, this
worker's own writes applied to its live state at once, everyone else's picked up by a poller
every `RECSYS_SYNC_SECONDS`.

When the store cannot be reached (PostgreSQL stopped, a read-only SQLite file), writes answer
503 naming the store and nothing is stored; reads keep serving from the live state already
built; the next write or poll that reaches the store again recovers on its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from app import periodic
from app.batching import Batcher
from app.errors import StoreUnavailable
from app.events.live import LiveState
from app.events.store import EventStore, StoreError, Write, Written
from app.http.observability import Metrics
from app.settings import Settings

log = logging.getLogger("app.events")

POLL_BATCH = 100_000  # log rows read per query when catching up

Due = tuple[frozenset[str], frozenset[str]]  # users and new items whose fold-in is due
# How long a write's answer waits for its users' fold-in, when the fold-in thread was idle.
# Waiting for it whatever the load held every write behind every fold queued before it: single
# events fell from ~2,000/s to ~900/s and batches of 1,000 (1,000 new users each) to 6,000/s
# (bench/README.md, "Ingestion").
FOLD_WAIT_SECONDS = 0.1


class EventService:
    def __init__(self, settings: Settings, metrics: Metrics):
        self.settings, self.metrics = settings, metrics
        # With a poller, SQLite's WAL checkpoints run in it, off the commit path (auto-checkpoint
        # inside a commit held every queued write: p99 75 ms with synchronous=FULL).
        self.store = EventStore(
            settings.resolved_store_url,
            settings.store_synchronous,
            background_checkpoints=settings.sync_seconds > 0,
        )
        self.live = LiveState(settings.min_item_ratings, self.store.public_url)
        self.error: str | None = "not opened yet"
        self.reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="events-read")
        self.writer: Batcher[Write, Written] = Batcher(
            self.store.write,
            lambda w: len(w) if isinstance(w, list) else 1,
            settings.events_commit_size,
            0.0,
            metrics.observe_commit,
            name="events-commit",
        )
        # Fold-in runs in its own thread, beside the event loop; users queued while it solves
        # are solved together, each once.
        self.refolder: Batcher[Due, None] = Batcher(
            self._refold, lambda due: len(due[0]) + len(due[1]), 10_000, 0.0, name="events-fold-in"
        )
        self.folding: set[asyncio.Future[None]] = set()  # fold-ins not awaited to the end
        self.poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the store (migrating its schema), read the whole log into the live state, then
        poll. A store that cannot be opened is logged; the poller keeps trying."""
        self.writer.start()
        self.refolder.start()
        await self._catch_up()
        if self.error is not None:
            log.error("event store not available, writes answer 503 until it is: %s", self.error)
        if self.settings.sync_seconds > 0:
            self.poller = periodic.every(self.settings.sync_seconds, self._sync, "event sync")

    async def stop(self) -> None:
        await periodic.stop(self.poller)
        await self.writer.drain()  # acknowledged writes are committed; answer the queued ones
        await self.refolder.drain()
        self.reader.shutdown(wait=True)
        self.store.close()

    async def write(self, write: Write) -> Written:
        """Store one write (with whatever else is queued, in one transaction), apply it here and
        fold its users in again; answered once it is durable and, when the fold-in thread had
        nothing to do, once their new vectors serve (`FOLD_WAIT_SECONDS`).

        Raises:
            StoreUnavailable: it was not stored (503, naming the store).
        """
        try:
            written = await self.writer.submit(write)
        except StoreError as err:
            self._down(str(err))
            raise StoreUnavailable(str(err)) from None
        self._up()
        idle = not self.folding
        fold = asyncio.ensure_future(self._fold_in(self.live.apply(written.changes)))
        self.folding.add(fold)
        fold.add_done_callback(self.folding.discard)
        # Durable now. When the fold-in thread was idle, the answer waits a moment for the
        # users' new vectors (about a millisecond), so the writer's next read sees them; under
        # load it does not wait behind the backlog: closed-loop writers would run at the pace
        # of the fold-ins (bench/README.md, "Ingestion").
        if idle:
            await asyncio.wait({fold}, timeout=FOLD_WAIT_SECONDS)
        return written

    async def _sync(self) -> None:
        """One poll: other workers' changes, then (SQLite) a checkpoint off the commit path."""
        await self._catch_up()
        try:
            await asyncio.get_running_loop().run_in_executor(self.reader, self.store.checkpoint)
        except StoreError as err:
            self._down(str(err))

    async def _catch_up(self) -> None:
        """Apply every change after the live state's cursor, in batches."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        while True:
            cursor, known = self.live.cursor, frozenset(self.live.ahead)
            try:
                changes, through = await loop.run_in_executor(
                    self.reader, self.store.changes_after, cursor, POLL_BATCH, known
                )
            except StoreError as err:
                self._down(str(err))
                return
            self._up()
            await self._fold_in(self.live.apply(changes, through))
            self.metrics.store_cursor.set(self.live.cursor)
            if through - cursor < POLL_BATCH:
                break
        if time.perf_counter() - started > 1:
            log.info("applied the event log up to id %d", self.live.cursor)

    async def _fold_in(self, due: tuple[set[str], set[str]]) -> None:
        users, items = due
        if users or items:
            await self.refolder.submit((frozenset(users), frozenset(items)))

    def _refold(self, batches: list[Due]) -> list[None]:
        users = frozenset().union(*(b[0] for b in batches))
        items = frozenset().union(*(b[1] for b in batches))
        self.live.refold(users, items)
        return [None] * len(batches)

    def _down(self, error: str) -> None:
        if self.error != error:
            log.error("%s", error)
        self.error = error
        self.metrics.store_up.set(0)

    def _up(self) -> None:
        if self.error is not None and self.error != "not opened yet":
            log.info("event store %s is back", self.store.public_url)
        self.error = None
        self.metrics.store_up.set(1)

    def status(self) -> dict[str, Any]:
        """What /ready says of the store."""
        return {
            "status": "ok" if self.error is None else "unavailable",
            "url": self.store.public_url,
            "applied_through": self.live.cursor,
            "error": self.error,
        }
