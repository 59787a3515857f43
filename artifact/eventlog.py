"""The event log: the second contract between the service and training (the first is the
version directory). The service writes it (`app.events.store`, whose migrations create and
upgrade it); `recsys train --store` reads it (`read_log`).

Every change is a row of `log`: a rating (`kind="rating"`), an item registered or updated
(`kind="item"`), or a user forgotten (`kind="forget"`; their rating rows are deleted in the same
transaction). One table with one increasing id gives every worker and replica the same order of
changes with one cursor, and gives training one query for what it learns from.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
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
from sqlalchemy.engine import make_url

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
    Index("log_user", "user_id"),
    # Ids are never reused, even after the newest rows are deleted (a forget): every worker's
    # cursor relies on it. SQLite would otherwise hand the highest deleted rowid out again.
    sqlite_autoincrement=True,
)


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


def read_log(url: str, batch: int = 100_000) -> Iterator[dict[str, Any]]:
    """Every row of the store's log in id order, as plain dicts (one read-only pass, `batch`
    rows per query).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the store cannot be read (no such file, no `log`
            table, the server down); the caller names the store.
    """
    target = engine_url(url)
    if make_url(target).get_backend_name() == "sqlite":
        database = make_url(target).database
        if not database or not Path(database).is_file():
            raise FileNotFoundError(f"no event store at {url}")
    engine = create_engine(target)
    try:
        cursor = 0
        while True:
            with engine.connect() as conn:
                rows = conn.execute(
                    select(log).where(log.c.id > cursor).order_by(log.c.id).limit(batch)
                ).all()
            for row in rows:
                yield dict(row._mapping)
            if len(rows) < batch:
                return
            cursor = rows[-1].id
    finally:
        engine.dispose()
