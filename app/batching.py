"""Coalescing concurrent calls into one: the /predict batcher and the event store's group commit.

Like TensorFlow Serving's batching: `max_batch_size` bounds the size of one call and `timeout_s`
how long the first request of a batch waits for company. One worker task forms batches on the
event loop and runs each in a single dedicated thread (TensorFlow and the database drivers
release the GIL, so the loop keeps parsing requests meanwhile). With a timeout of 0 a batch is
whatever queued up while the previous call ran: no wait at low load, big batches under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger("app")

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Pending(Generic[T, R]):
    item: T
    future: asyncio.Future[R]


class Batcher(Generic[T, R]):
    """Calls `run(items)` -> one result per item, in a thread, for batches of concurrent
    `submit(item)` calls; each caller gets its own item's result (or the batch's exception)."""

    def __init__(
        self,
        run: Callable[[list[T]], list[R]],
        size: Callable[[T], int],
        max_batch_size: int,
        timeout_s: float,
        on_batch: Callable[[int, int], None] | None = None,
        name: str = "batch",
        alone_on_loop: bool = False,
    ):
        """`size(item)` is what `max_batch_size` counts; `on_batch(requests, size)` is told the
        size of every call (for /metrics). With `alone_on_loop`, a batch of one request runs
        on the event loop instead of the thread: for calls short enough to block the loop for
        (a /predict), where the hop to the thread and back costs a noticeable share."""
        self.run, self.size = run, size
        self.max_batch_size, self.timeout_s, self.on_batch = max_batch_size, timeout_s, on_batch
        self.name, self.alone_on_loop = name, alone_on_loop
        self.queue: asyncio.Queue[_Pending[T, R] | None] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self.task: asyncio.Task[None] | None = None
        self.carry: _Pending[T, R] | None = None
        self.draining = False  # drain()'s None was taken from the queue while forming a batch

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def drain(self) -> None:
        """Answer everything queued so far, then stop (a model swap: the requests already given
        to this batcher finish on its model). Requests read the served model and enqueue without
        yielding to the loop, so none can arrive after the swap that precedes this call."""
        await self.queue.put(None)
        if self.task is not None:
            await self.task
        self.executor.shutdown(wait=True)

    async def cancel(self) -> None:
        """Stop now (shutdown): whatever is queued is dropped with its callers."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.executor.shutdown(wait=True)

    async def submit(self, item: T) -> R:
        """`item`'s result, computed in some batch with other callers' items."""
        return await self.enqueue(item)

    def enqueue(self, item: T) -> asyncio.Future[R]:
        """Queue `item` now, in order with every call before it; the future of its result."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait(_Pending(item, future))  # the queue is unbounded
        return future

    async def _next_batch(self) -> list[_Pending[T, R]] | None:
        if self.carry is None and self.draining:
            return None  # drain(): everything queued before it has been answered
        first = self.carry or await self.queue.get()
        self.carry = None
        if first is None:
            return None
        batch, size = [first], self.size(first.item)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        while size < self.max_batch_size:
            try:
                pending = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    pending = await asyncio.wait_for(self.queue.get(), remaining)
                except TimeoutError:
                    break
            if pending is None:  # drain() queued behind this batch: stop after answering it
                self.draining = True
                break
            if size + self.size(pending.item) > self.max_batch_size:
                self.carry = pending  # first in the next batch: order kept, no batch overflows
                break
            batch.append(pending)
            size += self.size(pending.item)
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            if batch is None:
                return
            live = [p for p in batch if not p.future.done()]  # a caller may have gone away
            if not live:
                continue
            items = [p.item for p in live]
            try:
                if len(live) == 1 and self.alone_on_loop:
                    results = self.run(items)
                else:
                    results = await loop.run_in_executor(self.executor, self.run, items)
            except Exception as err:  # every caller in the batch hears why
                log.warning("%s of %d requests failed: %r", self.name, len(live), err)
                for p in live:
                    if not p.future.done():
                        p.future.set_exception(err)
                continue
            if self.on_batch is not None:
                self.on_batch(len(live), sum(self.size(i) for i in items))
            for p, result in zip(live, results, strict=True):
                if not p.future.done():
                    p.future.set_result(result)
