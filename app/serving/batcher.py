"""Dynamic batching for /predict: concurrent requests are coalesced into one SavedModel call.

Like TensorFlow Serving's batching: `max_batch_size` bounds the instances of one call and
`batch_timeout_micros` how long the first request of a batch waits for company. One worker task
forms batches on the event loop and runs each in a single dedicated thread (TensorFlow releases
the GIL, so the loop keeps parsing requests meanwhile). With a timeout of 0 (the default) a batch
is whatever queued up while the previous call ran: no wait at low load, big batches under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from app.serving.loader import PredictFn  # user ids, item ids -> ratings

log = logging.getLogger("app")


@dataclass
class _Pending:
    user_ids: list[str]
    item_ids: list[str]
    future: asyncio.Future[np.ndarray]


class PredictBatcher:
    def __init__(
        self,
        predict: PredictFn,
        max_batch_size: int,
        timeout_s: float,
        on_batch: Callable[[int, int], None] | None = None,
    ):
        """`on_batch(requests, instances)` is told the size of every call (for /metrics)."""
        self.predict, self.max_batch_size, self.timeout_s = predict, max_batch_size, timeout_s
        self.on_batch = on_batch
        self.queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        self.task: asyncio.Task[None] | None = None
        self.carry: _Pending | None = None
        self.draining = False  # drain()'s None was taken from the queue while forming a batch

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name="predict-batcher")

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

    async def predict_async(self, user_ids: list[str], item_ids: list[str]) -> np.ndarray:
        """The ratings for these pairs, computed in some batch with other callers' pairs."""
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        await self.queue.put(_Pending(user_ids, item_ids, future))
        return await future

    async def _next_batch(self) -> list[_Pending] | None:
        if self.carry is None and self.draining:
            return None  # drain(): everything queued before it has been answered
        first = self.carry or await self.queue.get()
        self.carry = None
        if first is None:
            return None
        batch, size = [first], len(first.user_ids)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        while size < self.max_batch_size:
            try:
                item = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), remaining)
                except TimeoutError:
                    break
            if item is None:  # drain() queued behind this batch: stop after answering it
                self.draining = True
                break
            if size + len(item.user_ids) > self.max_batch_size:
                self.carry = item  # first in the next batch: order is kept, no batch overflows
                break
            batch.append(item)
            size += len(item.user_ids)
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
            users = [u for p in live for u in p.user_ids]
            items = [i for p in live for i in p.item_ids]
            try:
                ratings = await loop.run_in_executor(self.executor, self.predict, users, items)
            except Exception as err:  # the model failed: every caller in the batch hears why
                log.exception("predict batch of %d instances failed", len(users))
                for p in live:
                    if not p.future.done():
                        p.future.set_exception(err)
                continue
            if self.on_batch is not None:
                self.on_batch(len(live), len(users))
            start = 0
            for p in live:
                end = start + len(p.user_ids)
                if not p.future.done():
                    p.future.set_result(ratings[start:end])
                start = end
