"""`recsys store backup` and `restore`: the log and control rows to one file and back, on SQLite
and PostgreSQL, checked (rows, last id, checksum); a restored store gets an identity of its own
with the backup's store in its lineage, so a version trained before the backup skips only what
the backup held, and ids go on above every id handed out before."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import create_engine, text

from app.events import backup as backups
from app.events.backup import BackupError, backup, restore
from app.events.changes import Item, Rating
from app.events.store import EventStore, StoreError
from artifact.eventlog import StoreIdentity, engine_url
from cli import main as recsys
from tests.helpers import fresh_store_url


def filled(url: str) -> tuple[StoreIdentity, int]:
    """A store with ratings, a registered item, a forget and a control row; its identity and
    its highest id (the forget deleted rows, the newest among them)."""
    store = EventStore(url)
    identity = store.open()
    store.write([[Rating("u", "a", 4.5, 10, "e1"), Rating("v", "b", 1.0, 11)]])
    store.write([Item("film", "A Film (2026)", ["Drama", "Comedy"], 2026)])
    store.write([[Rating("w", "a", 3.25, 12)], "w"])  # the forget deletes w's rating
    store.control_put("admin:movielens", '{"pinned": 1, "reloads": 0}')
    last = store.changes_after(0)[1]
    store.close()
    return identity, last


def rows(url: str) -> list[tuple]:
    with create_engine(engine_url(url)).connect() as conn:
        return conn.execute(text("SELECT * FROM log ORDER BY id")).all()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def stores(request):
    """Two empty stores of one kind: the one backed up, the one restored into."""
    if request.param == "sqlite":
        return fresh_store_url(), fresh_store_url()
    server = request.getfixturevalue("postgres")
    return server.new_database(), server.new_database()


def test_a_restored_store_holds_the_same_log_under_an_identity_of_its_own(stores, tmp_path):
    url, target = stores
    identity, last = filled(url)
    summary = backup(url, tmp_path / "events.backup")
    assert (summary.rows, summary.last_id) == (4, last)
    restored, new_id = restore(tmp_path / "events.backup", target)
    assert restored == summary and new_id != identity.id
    assert rows(target) == rows(url)
    store = EventStore(target)
    again = store.open()
    assert again == StoreIdentity(new_id, ((identity.id, last),))
    assert store.control_get("admin:movielens") == ('{"pinned": 1, "reloads": 0}', 1)
    (written,) = store.write([[Rating("x", "b", 2.0, 13)]])
    assert written.changes[0].id == last + 1  # above every id handed out before
    store.close()


def test_a_version_trained_before_the_backup_learned_only_what_the_backup_held():
    restored = StoreIdentity("new", (("old", 100),))
    assert restored.learned("old", 80) == 80  # all of it is in the restored log, same ids
    assert restored.learned("old", 150) == 100  # ids 101-150 here are new events, not those
    assert restored.learned("new", 7) == 7
    assert restored.learned("other", 50) == 0 and restored.learned(None, 50) == 0
    twice = StoreIdentity("newer", (("new", 120), ("old", 100)))
    assert twice.learned("old", 150) == 100 and twice.learned("new", 130) == 120


def test_a_backup_is_never_served_and_never_overwrites(tmp_path):
    url = fresh_store_url()
    filled(url)
    path = tmp_path / "events.backup"
    backup(url, path)
    with pytest.raises(StoreError, match="a backup of store .*restore it"):
        EventStore(f"sqlite:///{path}").open()
    with pytest.raises(BackupError, match="already exists"):
        backup(url, path)
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_restore_over_events_needs_replace_and_a_mismatch_commits_nothing(tmp_path, monkeypatch):
    source, target = fresh_store_url(), fresh_store_url()
    filled(source)
    path = tmp_path / "events.backup"
    backup(source, path)
    store = EventStore(target)
    store.open()
    store.write([[Rating("kept", "z", 5.0, 1)]])
    store.close()
    with pytest.raises(BackupError, match="already holds events"):
        restore(path, target)
    assert [r.user_id for r in rows(target)] == ["kept"]
    copy = backups._copy_rows

    def lossy(source_conn, conn):  # a restore that loses a row must not commit
        copy(source_conn, conn)
        conn.execute(text("DELETE FROM log WHERE user_id = 'v'"))

    monkeypatch.setattr(backups, "_copy_rows", lossy)
    with pytest.raises(BackupError, match="differs from the backup .*nothing committed"):
        restore(path, target, replace=True)
    assert [r.user_id for r in rows(target)] == ["kept"]  # rolled back whole
    monkeypatch.undo()
    restore(path, target, replace=True)
    assert rows(target) == rows(source)


@pytest.mark.integration
def test_from_postgresql_to_sqlite_and_back(postgres, tmp_path):
    pg = postgres.new_database()
    identity, last = filled(pg)
    backup(pg, tmp_path / "pg.backup")
    lite = fresh_store_url()
    summary, _ = restore(tmp_path / "pg.backup", lite)
    assert summary.rows == 4 and rows(lite) == rows(pg)
    backup(lite, tmp_path / "lite.backup")
    other = postgres.new_database()
    again, newest = restore(tmp_path / "lite.backup", other)
    assert again.checksum == summary.checksum and rows(other) == rows(pg)
    store = EventStore(other)
    lineage = store.open().lineage
    assert lineage[1] == (identity.id, last)  # the original, through both restores
    (written,) = store.write([[Rating("x", "b", 2.0, 13)]])
    assert written.changes[0].id == last + 1
    store.close()


def test_the_command_line_backs_up_and_restores_with_the_figures(tmp_path, capsys):
    source, target = fresh_store_url(), fresh_store_url()
    filled(source)
    path = tmp_path / "cli.backup"
    assert recsys(["store", "backup", str(path), "--store", source]) == 0
    said = capsys.readouterr().out
    assert said.startswith("backed up sqlite:events.sqlite3 to") and "4 rows, last id 5" in said
    assert recsys(["store", "restore", str(path), "--store", target]) == 0
    said = capsys.readouterr().out
    assert "4 rows, last id 5" in said and "the same as the backup" in said
    assert recsys(["store", "restore", str(path), "--store", target]) == 2
    assert "already holds events" in capsys.readouterr().err
