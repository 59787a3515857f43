"""The store's schema: one append-only log, read in id order by every worker.

Every change is a row of `log`: a rating (`kind="rating"`), an item registered or updated
(`kind="item"`), or a user forgotten (`kind="forget"`; their rating rows are deleted in the same
transaction). One table with one increasing id gives every worker and replica the same order of
changes with one cursor, and gives training one query for what it learns from. Migrations
(`app/events/migrations`) create and upgrade it.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, MetaData, String, Table, Text

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
