"""The control rows' SQL (`artifact.eventlog.control`), a part of the event store
(`app.events.store.EventStore`): one JSON document per key, its revision bumped by each write.
Blocking, like the rest of the store: the service calls it through `app.events.control`."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager

from sqlalchemy import Engine, insert, select

from artifact.eventlog import control


class ControlTable:
    # Given by the store: its engine, and a guard turning driver failures into StoreError.
    def _engine(self) -> Engine:
        raise NotImplementedError

    def _reaching(self, engine: Engine) -> AbstractContextManager[None]:
        raise NotImplementedError

    def control_get(self, key: str) -> tuple[str, int] | None:
        """A control row's JSON value and revision; None when nobody wrote it.

        Raises:
            StoreError: the store cannot be read.
        """
        engine = self._engine()
        with self._reaching(engine), engine.connect() as conn:
            row = conn.execute(
                select(control.c.value, control.c.revision).where(control.c.key == key)
            ).first()
        return None if row is None else (str(row[0]), int(row[1]))

    def control_list(self, prefix: str) -> dict[str, tuple[str, int]]:
        """Every control row whose key starts with `prefix`: key -> (value, revision).

        Raises:
            StoreError: the store cannot be read.
        """
        engine = self._engine()
        with self._reaching(engine), engine.connect() as conn:
            rows = conn.execute(
                select(control.c.key, control.c.value, control.c.revision).where(
                    control.c.key.startswith(prefix, autoescape=True)
                )
            ).all()
        return {str(r[0]): (str(r[1]), int(r[2])) for r in rows}

    def control_put(self, key: str, value: str, if_absent: bool = False) -> int:
        """Write a control row (its revision one more than before); with `if_absent`, only if
        there is none yet. Returns the row's revision afterwards.

        Raises:
            StoreError: nothing was written.
        """
        engine = self._engine()
        now = time.time()
        with self._reaching(engine), engine.begin() as conn:
            found = conn.execute(
                select(control.c.revision).where(control.c.key == key).with_for_update()
            ).first()
            if found is not None:
                if if_absent:
                    return int(found[0])
                revision = int(found[0]) + 1
                conn.execute(
                    control.update()
                    .where(control.c.key == key)
                    .values(value=value, revision=revision, updated=now)
                )
                return revision
            conn.execute(
                insert(control), {"key": key, "value": value, "revision": 1, "updated": now}
            )
            return 1
