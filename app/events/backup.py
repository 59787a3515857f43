"""Backing the event store up to one file and restoring it, checked both ways (`recsys store`).

A backup is an SQLite file with the log, the control rows, the impressions and their
attributions, and what identifies the store it was taken from: `backup_of` (that store's id),
its lineage, and the highest log id handed out (`last_id`, so ids are never reused after a
restore). From an SQLite store it is taken with
SQLite's online backup API while the service keeps writing; from PostgreSQL, rows are copied in
one repeatable-read transaction (one snapshot of the log; `pg_dump` is the native way for a
whole database, described in the README). A backup is never a store: the service refuses to
open one.

A restore writes the backup into a store (an empty one, or with `replace` one whose log it
replaces: stop the service first) in one transaction, and commits only when the restored log
equals the backup's: the same number of rows, the same last id, the same checksum of every row.
The restored store gets an identity of its own, with the backup's store in its lineage up to
the backup's last id (`artifact.eventlog.StoreIdentity`): a version trained from the original
counts as learned only what the backup held, so no event written after the restore is skipped.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, create_engine, delete, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from app.events.store import EventStore, StoreError, driver_reason
from artifact.eventlog import (
    attributions,
    control,
    engine_url,
    impressions,
    log,
    metadata,
    public_url,
    read_meta,
    store_meta,
)

BATCH = 50_000  # rows per read and per insert
# Copied beside the log, whole (the checksum covers the log).
BESIDE = (control, impressions, attributions)


class BackupError(Exception):
    """A backup or restore that did not happen; the message names the file or store."""


@dataclass(frozen=True)
class LogSummary:
    """What a restored log must equal: its rows, the highest id handed out, a SHA-256 over
    every row in id order."""

    rows: int
    last_id: int
    checksum: str

    def describe(self) -> str:
        return f"{self.rows:,} rows, last id {self.last_id}, SHA-256 {self.checksum[:16]}..."


def summarise(conn: Connection, last_id: int) -> LogSummary:
    digest, rows = hashlib.sha256(), 0
    for row in _log_rows(conn):
        digest.update(_canonical(row))
        rows += 1
    return LogSummary(rows, last_id, digest.hexdigest())


def _canonical(row: dict[str, object]) -> bytes:
    """One row as the checksum reads it: every column, floats exactly (repr), the same bytes
    from SQLite and from PostgreSQL."""
    return (json.dumps([row[c.name] for c in log.columns], default=repr) + "\n").encode()


def _log_rows(conn: Connection) -> Iterator[dict[str, object]]:
    cursor = 0
    while True:
        rows = conn.execute(
            select(log).where(log.c.id > cursor).order_by(log.c.id).limit(BATCH)
        ).all()
        for row in rows:
            yield dict(row._mapping)
        if len(rows) < BATCH:
            return
        cursor = rows[-1].id


def backup(url: str, path: Path) -> LogSummary:
    """Back the store at `url` up to `path` (a new file).

    Raises:
        BackupError: the store cannot be read or `path` written (nothing is left at `path`).
    """
    if path.exists():
        raise BackupError(f"{path}: already exists (a backup never overwrites a file)")
    source = EventStore(url)
    try:
        identity = source.open()
    except StoreError as err:
        raise BackupError(str(err)) from None
    staged = path.with_name(f".{path.name}.partial")
    try:
        if source.dialect == "sqlite":
            database = make_url(source.url).database
            assert database is not None
            live, copy = sqlite3.connect(database), sqlite3.connect(staged)
            try:
                live.backup(copy)  # pages copied while writers go on; one consistent state
                copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no WAL
            finally:
                copy.close()
                live.close()
            last_id = _sqlite_last_id(staged)
        else:
            last_id = _copy_logically(source, staged)
        target = create_engine(f"sqlite:///{staged}")
        with target.begin() as conn:
            conn.execute(delete(store_meta))
            meta = {
                "backup_of": identity.id,
                "backup_lineage": identity.lineage_json(),
                "last_id": str(last_id),
                "taken": str(time.time()),
                "source": source.public_url,
            }
            conn.execute(insert(store_meta), [{"key": k, "value": v} for k, v in meta.items()])
            summary = summarise(conn, last_id)
        target.dispose()
        staged.rename(path)
    except (OSError, sqlite3.Error, SQLAlchemyError) as err:
        staged.unlink(missing_ok=True)
        raise BackupError(
            f"backup of {source.public_url} to {path}: {driver_reason(err)}"
        ) from None
    finally:
        source.close()
    return summary


def _copy_logically(source: EventStore, staged: Path) -> int:
    """Copy a PostgreSQL store's log and the tables beside it into a new SQLite file, in one
    snapshot; the highest id its sequence handed out."""
    target = create_engine(f"sqlite:///{staged}")
    metadata.create_all(target)
    engine = source.engine
    assert engine is not None
    snapshot = engine.connect().execution_options(isolation_level="REPEATABLE READ")
    with snapshot as conn, target.begin() as out:
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        out.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        out.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": revision})
        batch: list[dict[str, object]] = []
        for row in _log_rows(conn):
            batch.append(row)
            if len(batch) >= BATCH:
                out.execute(insert(log), batch)
                batch = []
        if batch:
            out.execute(insert(log), batch)
        _copy_beside(conn, out)
        name = conn.execute(text("SELECT pg_get_serial_sequence('log', 'id')")).scalar_one()
        sequence = conn.execute(text(f"SELECT last_value, is_called FROM {name}")).one()
        last_id = int(sequence[0]) if sequence[1] else 0
    target.dispose()
    return last_id


def _sqlite_last_id(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        found = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'log'").fetchone()
        highest = conn.execute("SELECT coalesce(max(id), 0) FROM log").fetchone()[0]
    finally:
        conn.close()
    return max(int(found[0]) if found else 0, int(highest))


def restore(path: Path, url: str, replace: bool = False) -> tuple[LogSummary, str]:
    """Restore the backup at `path` into the store at `url`; its summary and the restored
    store's new identity.

    Raises:
        BackupError: not a backup, a store that holds events (without `replace`), or a
            restored log that does not equal the backup's (nothing is committed then).
    """
    if not path.is_file():
        raise BackupError(f"{path}: no such backup file")
    backup_engine = create_engine(f"sqlite:///{path}")
    target = EventStore(url)
    try:
        with backup_engine.connect() as source:
            meta = read_meta(source)
            if "backup_of" not in meta:
                raise BackupError(f"{path}: not a backup (no backup_of in store_meta)")
            last_id = int(meta["last_id"])
            expected = summarise(source, last_id)
            try:
                target.open()
            except StoreError as err:
                raise BackupError(str(err)) from None
            engine = target.engine
            assert engine is not None
            with engine.begin() as conn:
                held = conn.execute(select(log.c.id).limit(1)).first()
                if held is not None and not replace:
                    raise BackupError(
                        f"event store {target.public_url} already holds events: restore into "
                        "an empty store, or replace its log (--replace, the service stopped)"
                    )
                conn.execute(delete(log))
                for table in BESIDE:
                    conn.execute(delete(table))
                _copy_rows(source, conn)
                new_id = str(uuid.uuid4())
                lineage = [[meta["backup_of"], last_id]] + [
                    [sid, min(int(upto), last_id)]
                    for sid, upto in json.loads(meta["backup_lineage"])
                ]
                conn.execute(delete(store_meta))
                conn.execute(
                    insert(store_meta),
                    [
                        {"key": "store_id", "value": new_id},
                        {"key": "lineage", "value": json.dumps(lineage)},
                    ],
                )
                _continue_ids(conn, target.dialect, last_id)
                restored = summarise(conn, last_id)
                if restored != expected:
                    raise BackupError(
                        f"restored log of {target.public_url} ({restored.describe()}) differs "
                        f"from the backup {path} ({expected.describe()}): nothing committed"
                    )
    except SQLAlchemyError as err:
        raise BackupError(
            f"restore of {path} into {public_url(url)}: {driver_reason(err)}"
        ) from None
    finally:
        target.close()
        backup_engine.dispose()
    return expected, new_id


def _copy_rows(source: Connection, conn: Connection) -> None:
    batch: list[dict[str, object]] = []
    for row in _log_rows(source):
        batch.append(row)
        if len(batch) >= BATCH:
            conn.execute(insert(log), batch)
            batch = []
    if batch:
        conn.execute(insert(log), batch)
    _copy_beside(source, conn)


def _copy_beside(source: Connection, conn: Connection) -> None:
    for table in BESIDE:
        rows = [dict(r._mapping) for r in source.execute(select(table))]
        for start in range(0, len(rows), BATCH):
            conn.execute(insert(table), rows[start : start + BATCH])


def _continue_ids(conn: Connection, dialect: str, last_id: int) -> None:
    """New rows get ids above every id the backup's store handed out."""
    if dialect == "sqlite":
        conn.execute(text("DELETE FROM sqlite_sequence WHERE name = 'log'"))
        conn.execute(
            text("INSERT INTO sqlite_sequence (name, seq) VALUES ('log', :s)"), {"s": last_id}
        )
    elif last_id > 0:
        conn.execute(text("SELECT setval(pg_get_serial_sequence('log', 'id'), :s)"), {"s": last_id})


def store_url_of(url: str | None) -> str:
    """The store `--store` names, else RECSYS_STORE_URL's (the service's own settings)."""
    if url:
        return engine_url(url)
    from app.settings import Settings

    return engine_url(Settings().resolved_store_url)
