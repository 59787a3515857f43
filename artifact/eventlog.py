"""The event log: the second contract between the service and training (the first is the
version directory). The service writes it (`app.events.store`, whose migrations create and
upgrade it); `recsys train --store` reads it (`read_log`).

Every change is a row of `log`: a rating (`kind="rating"`), an item registered or updated
(`kind="item"`), or a user forgotten (`kind="forget"`; their rating rows are deleted in the same
transaction). One table with one increasing id gives every worker and replica the same order of
changes with one cursor, and gives training one query for what it learns from.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    select,
)
from sqlalchemy.engine import Connection, make_url

metadata = MetaData()

# SQLite makes an INTEGER PRIMARY KEY the rowid; PostgreSQL gets a BIGINT from a sequence.
Id = BigInteger().with_variant(Integer(), "sqlite")

log = Table(
    "log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),  # "rating", "item" or "forget"
    Column("event_id", String(128), nullable=True, unique=True),  # the caller's idempotency key
    Column("user_id", String(128), nullable=True),
    Column("item_id", String(128), nullable=True),
    Column("rating", Float, nullable=True),
    Column("ts", BigInteger, nullable=False),  # when it happened (seconds), the caller's or ours
    Column("received", Float, nullable=False),  # when the store took it (seconds)
    Column("title", Text, nullable=True),  # kind="item": its metadata
    Column("genres", Text, nullable=True),  # JSON list of strings
    Column("year", Integer, nullable=True),
    # kind="rating": the impression the caller said the rating answers (app's attributions)
    Column("recommendation_id", String(64), nullable=True),
    Index("log_user", "user_id"),
    # Ids are never reused, even after the newest rows are deleted (a forget): every worker's
    # cursor relies on it. SQLite would otherwise hand the highest deleted rowid out again.
    sqlite_autoincrement=True,
)


# The store's identity and other facts about it, one row per key (`StoreIdentity`).
store_meta = Table(
    "store_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


# Every answer the service gave (/recommend, /rank, /similar, /popular): who was shown which
# items, in which order, by which version (and, in an experiment, which variant; interleaved
# answers credit each position to the variant that placed it). Exposure, never ratings: training
# reads it as such (`training.data.events`). Deleted with its user.
impressions = Table(
    "impressions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("recommendation_id", String(64), nullable=False, unique=True),
    Column("user_id", String(128), nullable=True),  # /similar and /popular may have none
    Column("route", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("experiment", String(64), nullable=True),
    Column("variant", String(64), nullable=True),  # the user's variant (A/B)
    Column("items", Text, nullable=False),  # JSON list of item ids, best first
    Column("credits", Text, nullable=True),  # JSON [variant, version] per position (interleaved)
    Column("ts", Float, nullable=False),  # when it was answered (seconds)
    Index("impressions_user", "user_id", "ts"),
    Index("impressions_ts", "ts"),
    sqlite_autoincrement=True,
)

# A rating that answered an impression: named by the event (`explicit`) or found as the user's
# most recent impression holding the item within the attribution window. The hit counts for the
# version and variant that placed the item. Written with the rating, in its transaction.
attributions = Table(
    "attributions",
    metadata,
    Column("log_id", Id, primary_key=True),  # the rating's row of `log`
    Column("impression_id", Id, nullable=False),
    Column("user_id", String(128), nullable=True),
    Column("item_id", String(128), nullable=False),
    Column("position", Integer, nullable=False),  # 0 = the first item shown
    Column("version", Integer, nullable=False),
    Column("experiment", String(64), nullable=True),
    Column("variant", String(64), nullable=True),
    Column("rating", Float, nullable=False),
    Column("explicit", Boolean, nullable=False),
    Column("ts", Float, nullable=False),  # when the rating was stored
    Index("attributions_impression", "impression_id"),
    Index("attributions_ts", "ts"),
)

# What operators chose, shared by every worker and replica of the store (the service's
# `app.events.control`): one JSON document per key ("admin:<model>", ...), its revision bumped
# by each write. Training never reads it.
control = Table(
    "control",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", Text, nullable=False),
    Column("revision", BigInteger, nullable=False),
    Column("updated", Float, nullable=False),  # seconds
)


@dataclass(frozen=True)
class StoreIdentity:
    """Which log a store holds: a UUID written when the store was created (kept by migrations)
    and, for a store restored from a backup (`recsys store restore`), its lineage: each store
    its log agrees with up to a log id (the backup's store and the last id the backup held,
    then that store's own lineage). Past that id the logs may part: a version trained from
    that store learned at most that much of this one. A restored store gets an id of its own.

    A version's manifest names the store it learned from (`EventsSpec.store_id`) and the last
    log id it read (`through`); `learned` says how much of this store's log that is."""

    id: str
    lineage: tuple[tuple[str, int], ...] = ()

    def learned(self, store_id: str | None, through: int) -> int:
        """The log id up to which a version that learned `through` from store `store_id`
        learned this store's events (0: none of them)."""
        if store_id is None:
            return 0
        if store_id == self.id:
            return through
        return min((min(through, upto) for sid, upto in self.lineage if sid == store_id), default=0)

    def lineage_json(self) -> str:
        return json.dumps([list(step) for step in self.lineage])


def read_meta(conn: Connection) -> dict[str, str]:
    """The store's `store_meta` rows (none for a store older than identities)."""
    if not conn.dialect.has_table(conn, "store_meta"):
        return {}
    return {str(k): str(v) for k, v in conn.execute(select(store_meta.c.key, store_meta.c.value))}


def read_identity(conn: Connection) -> StoreIdentity | None:
    """The store's identity; None for a store older than identities (not yet migrated), or a
    backup file (`backup_of`: a backup is restored, never served)."""
    rows = read_meta(conn)
    if "store_id" not in rows:
        return None
    lineage = tuple((str(sid), int(upto)) for sid, upto in json.loads(rows.get("lineage", "[]")))
    return StoreIdentity(rows["store_id"], lineage)


def engine_url(url: str) -> str:
    """`postgresql://` and `postgres://` URLs use psycopg (3); anything else as given."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def public_url(url: str) -> str:
    """The store as answers, logs and manifests name it: no password, and for SQLite the
    file's name without the host's directories."""
    parsed = make_url(engine_url(url))
    if parsed.get_backend_name() == "sqlite":
        return f"sqlite:{Path(parsed.database or ':memory:').name}"
    return parsed.render_as_string(hide_password=True)


def read_log(
    url: str, batch: int = 100_000
) -> tuple[StoreIdentity | None, Iterator[dict[str, Any]]]:
    """The store's identity, and every row of its log in id order as plain dicts (one
    read-only pass, `batch` rows per query).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the store cannot be read (no such file, no `log`
            table, the server down); the caller names the store.
        ValueError: the store's identity changed while it was read (a backup was restored
            over it): the rows read would mix two logs' ids.
    """
    target = engine_url(url)
    if make_url(target).get_backend_name() == "sqlite":
        database = make_url(target).database
        if not database or not Path(database).is_file():
            raise FileNotFoundError(f"no event store at {url}")
    engine = create_engine(target)
    try:
        with engine.connect() as conn:
            identity = read_identity(conn)
    except BaseException:
        engine.dispose()
        raise
    return identity, _rows(engine, identity, batch, public_url(url))


def read_impressions(url: str, batch: int = 100_000) -> Iterator[dict[str, Any]]:
    """Every impression with a user, in id order, as plain dicts (`items` parsed): what the
    service showed, for training to read as exposure (never as ratings); nothing from a store
    older than impressions.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the store cannot be read.
    """
    engine = create_engine(engine_url(url))
    try:
        with engine.connect() as conn:
            if not conn.dialect.has_table(conn, "impressions"):
                return
        cursor = 0
        while True:
            with engine.connect() as conn:
                rows = conn.execute(
                    select(impressions)
                    .where(impressions.c.id > cursor, impressions.c.user_id.is_not(None))
                    .order_by(impressions.c.id)
                    .limit(batch)
                ).all()
            for row in rows:
                found = dict(row._mapping)
                found["items"] = json.loads(found["items"])
                yield found
            if len(rows) < batch:
                return
            cursor = rows[-1].id
    finally:
        engine.dispose()


def _rows(
    engine: Any, identity: StoreIdentity | None, batch: int, name: str
) -> Iterator[dict[str, Any]]:
    try:
        cursor = 0
        while True:
            with engine.connect() as conn:
                rows = conn.execute(
                    select(log).where(log.c.id > cursor).order_by(log.c.id).limit(batch)
                ).all()
                if read_identity(conn) != identity:
                    raise ValueError(
                        f"event store {name}: its identity changed while it was read (a "
                        "backup restored over it?); nothing was trained from two logs' ids"
                    )
            for row in rows:
                yield dict(row._mapping)
            if len(rows) < batch:
                return
            cursor = rows[-1].id
    finally:
        engine.dispose()
