"""Background steps that run every few seconds for the life of the service: looking for a new
version, reading other workers' events. A step that fails is logged and tried again next time;
nothing it raises stops the loop, since the service keeps serving what it has."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("app")


def every(seconds: float, step: Callable[[], Awaitable[object]], name: str) -> asyncio.Task[None]:
    """Run `step` every `seconds` in a task named `name` (cancel it with `stop`)."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await step()
            except Exception:
                log.exception("%s failed; trying again in %g s", name, seconds)

    return asyncio.get_running_loop().create_task(loop(), name=name)


async def stop(task: asyncio.Task[None] | None) -> None:
    """Cancel `task` (if any) and wait until it has ended."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
