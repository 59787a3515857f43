"""The admin's choice as a control row of the event store (`artifact.eventlog.control`): every
worker and replica of the store reads the same row, whichever host it runs on, and a restore
of the store brings it back with the log.

The file form of earlier releases (`<data_dir>/admin/<model>.json`) is migrated once: when the
store has no row yet, the file's choice becomes the row; from then on the file is ignored.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from app.errors import StoreUnavailable
from app.events.store import EventStore, StoreError
from app.serving.control import Choice, ControlFile

log = logging.getLogger("app.events")
T = TypeVar("T")


class ControlRows:
    """The store's control rows from the event loop: each call runs in the store's reader thread
    and answers StoreUnavailable when the store cannot be reached."""

    def __init__(self, store: EventStore, reader: Executor) -> None:
        self.store, self.reader = store, reader

    async def get(self, key: str) -> tuple[str, int] | None:
        return await self._call(self.store.control_get, key)

    async def put(self, key: str, value: str, if_absent: bool = False) -> int:
        return await self._call(self.store.control_put, key, value, if_absent)

    async def list(self, prefix: str) -> dict[str, tuple[str, int]]:
        return await self._call(self.store.control_list, prefix)

    async def _call(self, method: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self.reader, method, *args)
        except StoreError as err:
            raise StoreUnavailable(str(err)) from None


class StoreControl:
    def __init__(self, rows: ControlRows, model_name: str, legacy: ControlFile) -> None:
        self.rows, self.legacy = rows, legacy
        self.key = f"admin:{model_name}"
        self.migrated = False

    async def read(self) -> Choice | None:
        """The row's choice (None: no admin has chosen).

        Raises:
            ValueError: the row is not such a choice.
            StoreUnavailable: the store cannot be read.
        """
        if not self.migrated:
            await self._migrate()
        found = await self.rows.get(self.key)
        if found is None:
            return None
        value, _ = found
        try:
            raw = json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"control row {self.key!r}: not JSON ({err})") from None
        return Choice.parse(raw, f"control row {self.key!r}")

    async def write(self, choice: Choice) -> None:
        """Raises:
        StoreUnavailable: not written (this worker follows the row again at its next poll).
        """
        await self.rows.put(self.key, choice.to_json())

    async def _migrate(self) -> None:
        try:
            choice = self.legacy.read_now()
        except (OSError, ValueError) as err:  # a broken file must not keep the service down
            log.error("not migrating the admin's choice: %s", err)
            choice = None
        if choice is not None:
            revision = await self.rows.put(self.key, choice.to_json(), if_absent=True)
            if revision == 1:
                log.info("admin's choice migrated from %s into the event store", self.legacy.path)
        self.migrated = True
