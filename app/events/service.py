"""The event store as the service uses it: writes group-committed in one writer thread, this
worker's own writes applied to its live state at once, everyone else's picked up by a poller
every `RECSYS_SYNC_SECONDS`.

Whenever the set of served versions changes (start-up, a swap either way, a pin), `serve`
builds their live state afresh: the store's log is read from the lowest id any of them has not
learned into a new log, their views are built from it off the event loop, and the whole is
installed in one step, what was applied meanwhile replayed onto it. Their users are then folded
in again in the fold-in thread, a block at a time, while the service answers (a user not yet
solved is answered from their trained vectors or popularity, and the answer says so). A user
whose ratings change afterwards (a write here or a poll) is solved at their next read, on the
reading thread: writes cost no solve and share no fold-in backlog.

When the store cannot be reached (PostgreSQL stopped, a read-only SQLite file), writes answer
503 naming the store and nothing is stored; reads keep serving from the live state already
built; the next write or poll that reaches the store again recovers on its own (a live state
built while it was down is rebuilt from it then).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection

from app import periodic
from app.batching import Batcher
from app.errors import StoreUnavailable
from app.events.applied import AppliedLog
from app.events.changes import Shown, Write, Written
from app.events.impressions import FLUSH_SECONDS, ImpressionLog
from app.events.live import Due, LiveState, LiveVersion
from app.events.store import EventStore, StoreError
from app.events.view import FOLD_BLOCK, VersionView
from app.metrics import Metrics
from app.serving.loader import LoadedVersion
from app.settings import Settings

log = logging.getLogger("app.events")
T = TypeVar("T")

POLL_BATCH = 100_000  # log rows read per query when catching up
# How long a write's answer waits for the fold-in of the new items it rated, when the fold-in
# thread was idle. Waiting for it whatever the load held every write behind every fold queued
# before it (bench/README.md, "Ingestion"). A write's users are solved at their next read.
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
            attribution_window=settings.attribution_window,
        )
        self.impressions = ImpressionLog()
        self.live = LiveState()
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
            self._refold, lambda due: len(due.users) + len(due.items), 10_000, 0.0,
            name="events-fold-in",
        )  # fmt: skip
        self.folding: set[asyncio.Future[None]] = set()  # writes' fold-ins not awaited to the end
        # A new view's users, folded in block by block (`_fold_pending`).
        self.refolds: set[asyncio.Task[None]] = set()
        self.serving = asyncio.Lock()
        self.stale = False  # the live state was built without the store: rebuild when it answers
        self.poller: asyncio.Task[None] | None = None
        self.flusher: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Start the writer and fold-in threads and open the store (migrating its schema). A
        store that cannot be opened is logged; writes answer 503 and the poller keeps trying."""
        self.writer.start()
        self.refolder.start()
        self.flusher = periodic.every(FLUSH_SECONDS, self.flush_impressions, "impressions")
        if not await self._open():
            log.error("event store not available, writes answer 503 until it is: %s", self.error)

    def start_polling(self) -> None:
        if self.settings.sync_seconds > 0:
            self.poller = periodic.every(self.settings.sync_seconds, self._sync, "event sync")

    async def stop(self) -> None:
        await periodic.stop(self.poller)
        await periodic.stop(self.flusher)
        await self.flush_impressions()
        for task in list(self.refolds):
            task.cancel()
        await asyncio.gather(*self.refolds, return_exceptions=True)
        await self.writer.drain()  # acknowledged writes are committed; answer the queued ones
        await self.refolder.drain()
        self.reader.shutdown(wait=True)
        self.store.close()

    async def _open(self) -> bool:
        if self.store.identity is not None:
            return True
        loop = asyncio.get_running_loop()
        try:
            identity = await loop.run_in_executor(self.reader, self.store.open)
        except StoreError as err:
            self._down(str(err))
            return False
        self._up()
        log.info("event store %s, identity %s", self.store.public_url, identity.id)
        return True

    # --- the served versions' live state ---------------------------------------------------

    async def serve(self, versions: list[LoadedVersion]) -> list[LiveVersion]:
        """The live state of `versions` (the served ones from now on), built afresh from the
        store: what a restart serving them would build. Their users are folded in again in the
        background. Without the store, it is built from what this worker has applied, and
        rebuilt once the store answers."""
        async with self.serving:
            return await self._rebuild(versions)

    async def _rebuild(self, versions: list[LoadedVersion]) -> list[LiveVersion]:
        previous = {view.version: view for view in self.live.views}
        reachable = await self._open()
        learned = [self._learned(v) for v in versions]
        applied = await self._read_log(min(learned, default=0)) if reachable else None
        self.stale = applied is None
        if applied is None:  # on the loop: the log it reads is the one the loop writes
            views = self._views(versions, learned, self.live.log, previous)
            served = self.live.install(self.live.log, views)
        else:
            views = await asyncio.to_thread(self._views, versions, learned, applied, previous)
            served = self.live.install(applied, views)
        for view in views:
            task = asyncio.get_running_loop().create_task(self._fold_pending(view))
            self.refolds.add(task)
            task.add_done_callback(self.refolds.discard)
        return served

    def _views(
        self,
        versions: list[LoadedVersion],
        learned: list[int],
        applied: AppliedLog,
        previous: dict[int, VersionView],
    ) -> list[VersionView]:
        minimum = self.settings.min_item_ratings
        return [
            VersionView(v, applied, t, minimum, previous.get(v.version))
            for v, t in zip(versions, learned, strict=True)
        ]

    def _learned(self, loaded: LoadedVersion) -> int:
        """Up to which log id of this store `loaded` learned the events (0: none)."""
        events = loaded.manifest.events
        if events is None:
            return 0
        identity = self.store.identity
        learned = 0 if identity is None else identity.learned(events.store_id, events.through)
        if learned < events.through:
            here = "unknown (not reachable)" if identity is None else identity.id
            log.warning(
                "version %s learned the events of store %s (identity %s) up to log id %d, this "
                "store %s is %s: its events from log id %d on are applied, none skipped",
                loaded.version, events.store, events.store_id, events.through,
                self.store.public_url, here, learned + 1,
            )  # fmt: skip
        return learned

    async def _read_log(self, floor: int) -> AppliedLog | None:
        """The store's log above `floor` (and every registered item) as a new applied log;
        None when the store cannot be read. Changes applied to the current log meanwhile are
        kept for `LiveState.install`."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        self.live.start_replay()
        applied = AppliedLog(floor)
        try:
            if floor:
                applied.register(
                    await loop.run_in_executor(self.reader, self.store.items_through, floor)
                )
            while True:
                cursor = applied.cursor
                changes, through = await loop.run_in_executor(
                    self.reader, self.store.changes_after, cursor, POLL_BATCH
                )
                await asyncio.to_thread(applied.apply, changes, through)  # a log nobody reads yet
                if through - cursor < POLL_BATCH:
                    break
        except StoreError as err:
            self.live.stop_replay()
            self._down(str(err))
            log.error("live state built without the event store (rebuilt when it answers)")
            return None
        self._up()
        if time.perf_counter() - started > 1:
            log.info("read the event log from id %d to %d", floor, applied.cursor)
        return applied

    async def _fold_pending(self, view: VersionView) -> None:
        """Fold in every user a new view holds, a block at a time through the fold-in thread
        (writes' fold-ins take their turn between blocks), and its new items."""
        if view.raters:
            await self.refolder.submit(Due(view, frozenset(), frozenset(view.raters)))
        todo = list(view.pending)
        for start in range(0, len(todo), FOLD_BLOCK):
            if all(view is not current for current in self.live.views):
                return  # replaced meanwhile: its successor folds everyone in
            block = frozenset(u for u in todo[start : start + FOLD_BLOCK] if u in view.pending)
            if block:
                await self.refolder.submit(Due(view, block, frozenset()))

    # --- writes and polls ----------------------------------------------------------------------

    async def write(self, write: Write) -> Written:
        """Store one write (with whatever else is queued, in one transaction) and apply it here
        (its users are solved again at their next read); answered once it is durable and, when
        it rated new items and the fold-in thread had nothing to do, once their vectors serve
        (`FOLD_WAIT_SECONDS`).

        Raises:
            StoreUnavailable: it was not stored (503, naming the store).
        """
        self._enqueue_impressions()  # ahead of the write: its ratings can answer them
        try:
            written = await self.writer.submit(write)
        except StoreError as err:
            self._down(str(err))
            raise StoreUnavailable(str(err)) from None
        self._up()
        for hit in written.hits:
            self.metrics.hits.labels(str(hit.version), hit.variant or "").inc()
        due = self.live.apply(written.changes)
        if not due:
            return written  # durable, and every read from now on sees it
        idle = not self.folding and not self.refolds
        fold = asyncio.ensure_future(self._fold_in(due))
        self.folding.add(fold)
        fold.add_done_callback(self.folding.discard)
        # Durable now. When the fold-in thread was idle, the answer waits a moment for the new
        # items' vectors, so the writer's next read ranks them; under load it does not wait
        # behind the backlog: closed-loop writers would run at the pace of the fold-ins.
        if idle:
            await asyncio.wait({fold}, timeout=FOLD_WAIT_SECONDS)
        return written

    def _enqueue_impressions(self) -> asyncio.Future[Written] | None:
        shown = self.impressions.take()
        if not shown:
            return None
        future = self.writer.enqueue(Shown(shown))
        future.add_done_callback(self._impressions_written)
        return future

    def _impressions_written(self, future: asyncio.Future[Written]) -> None:
        if not future.cancelled() and (err := future.exception()) is not None:
            self._down(str(err))
            log.warning("impressions not stored (their ratings go unattributed): %s", err)

    async def flush_impressions(self) -> None:
        """Write the impressions noted since the last flush (every `FLUSH_SECONDS`). Those the
        store refuses are dropped (logged): a read never fails for want of its record."""
        pending = self._enqueue_impressions()
        if pending is not None:
            await asyncio.wait({pending})  # its failure is logged by the callback

    async def _sync(self) -> None:
        """One poll: other workers' changes (or, after an outage at a swap, the whole live state
        again), then (SQLite) a checkpoint off the commit path."""
        if self.stale:
            async with self.serving:
                if self.stale and await self._open():
                    await self._rebuild([served.loaded for served in self.live.served.values()])
        else:
            await self._catch_up()
        self.metrics.fold_in_pending.set(sum(len(view.pending) for view in self.live.views))
        try:
            await asyncio.get_running_loop().run_in_executor(self.reader, self.store.checkpoint)
        except StoreError as err:
            self._down(str(err))

    async def _catch_up(self) -> None:
        """Apply every change after the live log's cursor, in batches."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        while True:
            applied = self.live.log
            cursor, known = applied.cursor, frozenset(applied.ahead)
            try:
                changes, through = await loop.run_in_executor(
                    self.reader, self.store.changes_after, cursor, POLL_BATCH, known
                )
            except StoreError as err:
                self._down(str(err))
                return
            self._up()
            if self.live.log is not applied:
                return  # a rebuild installed another log meanwhile: it read these
            await self._fold_in(self.live.apply(changes, through))
            self.metrics.store_cursor.set(self.live.log.cursor)
            if through - cursor < POLL_BATCH:
                break
        if time.perf_counter() - started > 1:
            log.info("applied the event log up to id %d", self.live.log.cursor)

    async def _fold_in(self, due: list[Due]) -> None:
        await asyncio.gather(*(self.refolder.submit(d) for d in due))

    def _refold(self, batches: list[Due]) -> list[None]:
        merged: dict[int, tuple[VersionView, set[str], set[str]]] = {}
        for due in batches:
            _, users, items = merged.setdefault(id(due.view), (due.view, set(), set()))
            users |= due.users
            items |= due.items
        for view, users, items in merged.values():
            view.refold_items(items)
            view.refold_users(users)
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
        self.metrics.store_synced.set(time.time())

    async def query(self, query: Callable[[Connection], T]) -> T:
        """`query(connection)` in the store's reader thread.

        Raises:
            StoreUnavailable: the store cannot be read (503, naming it).
        """
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.reader, self.store.read, query)
        except StoreError as err:
            self._down(str(err))
            raise StoreUnavailable(str(err)) from None

    def status(self) -> dict[str, Any]:
        """What /ready says of the store."""
        identity = self.store.identity
        return {
            "status": "ok" if self.error is None else "unavailable",
            "url": self.store.public_url,
            "id": identity.id if identity else None,
            "applied_through": self.live.log.cursor,
            "error": self.error,
        }

    def fold_in(self) -> list[dict[str, int]]:
        """Per served version, how far folding its users in got (for /ready)."""
        return [view.progress() for view in self.live.views]
