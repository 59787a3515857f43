"""The event store: an SQL database holding the log (`artifact.eventlog`), behind SQLAlchemy.

SQLite (the default: a file, WAL journal) serves one host; PostgreSQL (`postgresql://...`)
serves several workers or replicas sharing one store. Every method here is blocking and is
called from one dedicated thread (`app.events.service`): writes arrive as batches of many
requests and commit in one transaction (group commit), so a write is acknowledged only once it
is durable, at the cost of one commit per batch rather than per request.

Durability: PostgreSQL commits are durable across power loss (its default `synchronous_commit`).
SQLite with `synchronous="full"` (the default here) syncs the WAL at every commit: durable across
power loss; `"normal"` survives a crash of the process but may lose the last commits on power
loss.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, delete, event, insert, select
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError

from app.events import attribution
from app.events.changes import Change, Item, Rating, Shown, Write, Written
from app.events.control_table import ControlTable
from artifact.eventlog import (
    StoreIdentity,
    engine_url,
    log,
    public_url,
    read_identity,
    read_meta,
)

logger = logging.getLogger("app.events")
T = TypeVar("T")

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Rows per INSERT: 6 parameters each stays under SQLite's 32,766 (and keeps statements small).
CHUNK_ROWS = 2000
WRITE_LOCK = 0x7265637379730001  # PostgreSQL advisory lock key of the log's writers ("recsys")


class StoreError(Exception):
    """The store could not be reached or refused a write; the message names the store."""


class EventStore(ControlTable):
    def __init__(
        self,
        url: str,
        sqlite_synchronous: str = "full",
        background_checkpoints: bool = False,
        attribution_window: float = 86_400.0,
    ):
        """`background_checkpoints`: the caller runs `checkpoint()` regularly, so SQLite's
        automatic WAL checkpoint (which runs inside a commit, with every queued write waiting)
        is turned off. `attribution_window`: seconds within which a rating answers the user's
        most recent impression of its item (`app.events.attribution`)."""
        self.background_checkpoints = background_checkpoints
        self.attribution_window = attribution_window
        self.url = engine_url(url)
        self.public_url = public_url(self.url)
        self.synchronous = sqlite_synchronous
        self.engine: Engine | None = None
        self.identity: StoreIdentity | None = None  # read at `open`

    @property
    def dialect(self) -> str:
        return make_url(self.url).get_backend_name()

    def open(self) -> StoreIdentity:
        """Connect, bring the schema to the newest revision (creating the SQLite file and its
        directory if needed) and read the store's identity.

        Raises:
            StoreError: the database cannot be reached or migrated.
        """
        try:
            if self.dialect == "sqlite":
                database = make_url(self.url).database
                if database and database != ":memory:":
                    Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(self.url, pool_pre_ping=True)
            if self.dialect == "sqlite":
                event.listen(engine, "connect", self._sqlite_pragmas)
            with engine.begin() as conn:
                config = Config()
                config.set_main_option("script_location", str(MIGRATIONS))
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
                identity = read_identity(conn)
                backup_of = read_meta(conn).get("backup_of")
        except (SQLAlchemyError, OSError) as err:
            raise StoreError(
                f"event store {self.public_url}: cannot open ({driver_reason(err)})"
            ) from None
        if backup_of is not None:
            raise StoreError(
                f"event store {self.public_url}: a backup of store {backup_of}, not a store: "
                "restore it into one (`recsys store restore`)"
            )
        if identity is None:  # the migrations write it: a store they did not reach
            raise StoreError(f"event store {self.public_url}: no identity after migrating")
        self.engine, self.identity = engine, identity
        return identity

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()

    def _sqlite_pragmas(self, connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        cursor.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
        cursor.execute("PRAGMA busy_timeout=5000")  # another process writing: wait, then fail
        if self.background_checkpoints:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    def checkpoint(self) -> None:
        """SQLite: copy the WAL into the database file as far as readers allow, without blocking
        the writer (a passive checkpoint); elsewhere nothing.

        Raises:
            StoreError: the store cannot be reached.
        """
        if self.dialect != "sqlite":
            return
        engine = self._engine()
        with self._reaching(engine), engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    @contextmanager
    def _reaching(self, engine: Engine) -> Iterator[None]:
        """Turn a driver failure into a StoreError naming the store, and drop the pooled
        connections so the next call opens fresh ones (the store may be back by then)."""
        try:
            yield
        except SQLAlchemyError as err:
            engine.dispose()
            raise StoreError(
                f"event store {self.public_url} unavailable: {driver_reason(err)}"
            ) from None

    def write(self, writes: list[Write]) -> list[Written]:
        """Store every write in one transaction, in order; one result per write.

        Raises:
            StoreError: nothing was stored (the transaction rolled back).
        """
        engine = self._engine()
        now = time.time()
        with self._reaching(engine), engine.begin() as conn:
            if self.dialect == "postgresql":
                # One writer at a time across every worker and replica, until commit: ids are
                # then committed in the order they were handed out, so a reader that sees id n
                # has seen every committed id below it, and a poll's cursor never passes an id
                # that commits later (two concurrent writers would otherwise commit out of
                # order and a replica's poll would skip the slower one's events for good).
                # SQLite's write lock does the same already.
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            seen_ids: set[str] = set()
            results: list[Written] = []
            run: list[list[Rating]] = []  # consecutive rating writes: one statement
            for write in writes:
                if isinstance(write, list):
                    run.append(write)
                    continue
                results += self._write_ratings(conn, run, now, seen_ids)
                run = []
                results.append(self._write_one(conn, write, now))
            results += self._write_ratings(conn, run, now, seen_ids)
            return results

    def _write_one(self, conn: Connection, write: Item | str | Shown, now: float) -> Written:
        if isinstance(write, Shown):
            attribution.write_impressions(conn, self.dialect, write.impressions)
            return Written([])
        if isinstance(write, Item):
            row = {
                "kind": "item",
                "item_id": write.item_id,
                "title": write.title,
                "genres": json.dumps(write.genres),
                "year": write.year,
                "ts": int(now),
                "received": now,
            }
            new_id = conn.execute(insert(log).returning(log.c.id), row).scalar_one()
            change = Change(
                new_id,
                "item",
                item_id=write.item_id,
                title=write.title,
                genres=list(write.genres),
                year=write.year,
                ts=int(now),
            )
            return Written([change])
        deleted = conn.execute(
            delete(log).where((log.c.kind == "rating") & (log.c.user_id == write))
        ).rowcount
        attribution.forget(conn, write)
        row = {"kind": "forget", "user_id": write, "ts": int(now), "received": now}
        new_id = conn.execute(insert(log).returning(log.c.id), row).scalar_one()
        return Written([Change(new_id, "forget", user_id=write, ts=int(now))], deleted=deleted)

    def _write_ratings(
        self, conn: Connection, requests: list[list[Rating]], now: float, seen: set[str]
    ) -> list[Written]:
        """The ratings of consecutive requests in one multi-row INSERT ... ON CONFLICT (event_id)
        DO NOTHING ... RETURNING (in chunks), straight to the driver: SQLAlchemy's per-row work
        cost 10 ms per 1,000 rows, the driver's 1-2 ms. Rows go in request order and ids follow
        it, so of two ratings of one (user, item) with the same timestamp the later one wins,
        as the loaders keep the later row. One result per request."""
        kept: list[tuple[int, Rating]] = []  # (request, rating) to insert, in order
        for k, ratings in enumerate(requests):
            for r in ratings:
                if r.event_id is not None:
                    if r.event_id in seen:
                        continue  # the same key twice in this batch: stored once
                    seen.add(r.event_id)
                kept.append((k, r))
        returned: list[tuple[int, str | None]] = []
        for start in range(0, len(kept), CHUNK_ROWS):
            chunk = [r for _, r in kept[start : start + CHUNK_ROWS]]
            returned += self._insert_ratings(conn, chunk, now)
        stored_keys = {key for _, key in returned if key is not None}
        survivors = [(k, r) for k, r in kept if r.event_id is None or r.event_id in stored_keys]
        # Ids are handed out in VALUES order (rows skipped on conflict take none).
        ids = sorted(i for i, _ in returned)
        changes: list[list[Change]] = [[] for _ in requests]
        named: list[list[tuple[Change, str | None]]] = [[] for _ in requests]
        for new_id, (k, r) in zip(ids, survivors, strict=True):
            change = Change(new_id, "rating", r.user_id, r.item_id, r.rating, r.ts)
            changes[k].append(change)
            named[k].append((change, r.recommendation_id))
        found = iter(
            attribution.attribute(
                conn, [pair for n in named for pair in n], self.attribution_window, now
            )
        )
        hits = [[h for h in itertools.islice(found, len(n)) if h is not None] for n in named]
        # A duplicate: an event id stored before, or earlier in this batch.
        return [
            Written(c, len(r) - len(c), hits=h)
            for c, r, h in zip(changes, requests, hits, strict=True)
        ]

    def _insert_ratings(
        self, conn: Connection, ratings: list[Rating], now: float
    ) -> list[tuple[int, str | None]]:
        if self.dialect == "postgresql":
            return self._insert_ratings_pg(conn, ratings, now)
        row = "('rating'," + ",".join(["?"] * 7) + ")"
        sql = (
            "INSERT INTO log (kind, event_id, user_id, item_id, rating, ts, received, "
            f"recommendation_id) VALUES {','.join([row] * len(ratings))} "
            "ON CONFLICT (event_id) DO NOTHING RETURNING id, event_id"
        )
        params = tuple(
            v
            for r in ratings
            for v in (r.event_id, r.user_id, r.item_id, r.rating, r.ts, now, r.recommendation_id)
        )
        return [(int(row[0]), row[1]) for row in conn.exec_driver_sql(sql, params).all()]

    def _insert_ratings_pg(
        self, conn: Connection, ratings: list[Rating], now: float
    ) -> list[tuple[int, str | None]]:
        """PostgreSQL takes the columns as seven arrays, unnested in order: one short statement
        whatever the batch. psycopg parses a statement's text for its placeholders on every
        execution of one too long for its cache; with 7,000 of them that was 38% of the writer
        thread's time at batches of 1,000 (bench/README.md, "Ingestion")."""
        sql = (
            "INSERT INTO log (kind, event_id, user_id, item_id, rating, ts, received, "
            "recommendation_id) SELECT 'rating', e, u, i, r, t, %s, c FROM unnest(%s::text[], "
            "%s::text[], %s::text[], %s::float8[], %s::int8[], %s::text[]) WITH ORDINALITY "
            "AS v(e, u, i, r, t, c, n) ORDER BY n "
            "ON CONFLICT (event_id) DO NOTHING RETURNING id, event_id"
        )
        params = (
            now,
            [r.event_id for r in ratings],
            [r.user_id for r in ratings],
            [r.item_id for r in ratings],
            [float(r.rating) for r in ratings],
            [r.ts for r in ratings],
            [r.recommendation_id for r in ratings],
        )
        return [(int(row[0]), row[1]) for row in conn.exec_driver_sql(sql, params).all()]

    def changes_after(
        self, cursor: int, limit: int = 100_000, known: AbstractSet[int] = frozenset()
    ) -> tuple[list[Change], int]:
        """The log's rows with an id above `cursor`, in id order (at most `limit` ids), but only
        the ids the caller does not know already (its own writes): the ids are read first, the
        rows only for the rest. Returns them and the highest id read (`cursor` if none).

        Raises:
            StoreError: the store cannot be read.
        """
        engine = self._engine()
        with self._reaching(engine), engine.connect() as conn:
            ids = (
                conn.execute(
                    select(log.c.id).where(log.c.id > cursor).order_by(log.c.id).limit(limit)
                )
                .scalars()
                .all()
            )
            wanted = [i for i in ids if i not in known]
            rows: list[Any] = []
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows += conn.execute(select(log).where(log.c.id.in_(chunk))).all()
        changes = sorted((_change(row._mapping) for row in rows), key=lambda c: c.id)
        return changes, (ids[-1] if ids else cursor)

    def read(self, query: Callable[[Connection], T]) -> T:
        """`query(connection)`'s answer, on a connection of its own (reports, counts).

        Raises:
            StoreError: the store cannot be read.
        """
        engine = self._engine()
        with self._reaching(engine), engine.connect() as conn:
            return query(conn)

    def items_through(self, floor: int) -> list[Change]:
        """The item rows with an id up to `floor`, in id order (registered items count however
        old they are; see `app.events.applied.AppliedLog.register`).

        Raises:
            StoreError: the store cannot be read.
        """
        engine = self._engine()
        with self._reaching(engine), engine.connect() as conn:
            rows = conn.execute(
                select(log).where((log.c.kind == "item") & (log.c.id <= floor)).order_by(log.c.id)
            ).all()
        return [_change(row._mapping) for row in rows]

    def _engine(self) -> Engine:
        if self.engine is None:
            self.open()
        assert self.engine is not None
        return self.engine


def _change(row: Any) -> Change:
    return Change(
        id=int(row["id"]),
        kind=row["kind"],
        user_id=row["user_id"],
        item_id=row["item_id"],
        rating=row["rating"],
        ts=int(row["ts"]),
        title=row["title"],
        genres=json.loads(row["genres"]) if row["genres"] else [],
        year=row["year"],
    )


def driver_reason(err: BaseException) -> str:
    """The driver's own message, first line only (no SQL, no parameters)."""
    original = getattr(err, "orig", None) or err
    return str(original).strip().splitlines()[0] if str(original).strip() else type(err).__name__
