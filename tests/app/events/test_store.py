"""The event store on SQLite and on a real PostgreSQL server: the schema migrated, writes
committed in order and idempotent, ids never reused, failures named and recovered from."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from app.events.changes import Item, Rating
from app.events.store import MIGRATIONS, EventStore, StoreError, engine_url
from tests.helpers import fresh_store_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store_url(request):
    if request.param == "sqlite":
        return fresh_store_url()
    return request.getfixturevalue("postgres").new_database()  # a store of its own per test


def head() -> str:
    """The newest migration's revision."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    revision = ScriptDirectory.from_config(config).get_current_head()
    assert revision is not None
    return revision


@pytest.fixture
def store(store_url):
    store = EventStore(store_url)
    store.open()
    yield store
    store.close()


def test_opening_migrates_the_schema_once_and_keeps_the_stores_identity(store, store_url):
    with create_engine(engine_url(store_url)).connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head()
    assert store.identity is not None and len(store.identity.id) == 36  # a UUID
    again = EventStore(store_url)
    assert again.open() == store.identity  # already at head: nothing to do, nothing lost
    assert again.changes_after(0) == ([], 0)
    again.close()
    other = EventStore(fresh_store_url())
    assert other.open().id != store.identity.id  # each store its own
    other.close()


def test_writes_commit_in_request_order_and_event_ids_are_stored_once(store):
    first, second = store.write(
        [
            [Rating("u", "a", 4, 10, "k1"), Rating("u", "b", 3, 10), Rating("u", "c", 5, 10, "k1")],
            [Rating("v", "a", 2, 11, "k1"), Rating("v", "b", 1, 11, "k2")],
        ]
    )
    assert [(c.user_id, c.item_id) for c in first.changes] == [("u", "a"), ("u", "b")]
    assert first.duplicates == 1 and second.duplicates == 1
    assert [c.item_id for c in second.changes] == ["b"]
    (again,) = store.write([[Rating("w", "z", 3, 12, "k2")]])  # a retry: already stored
    assert again.changes == [] and again.duplicates == 1
    ids = [c.id for c in store.changes_after(0)[0]]
    assert ids == sorted(ids) and len(ids) == 3


def test_items_and_forgets_are_changes_too(store):
    store.write([[Rating("u", "a", 4, 10)], Item("new", "A film", ["Drama"], 2026)])
    (forget,) = store.write(["u"])
    assert forget.deleted == 1
    changes, _ = store.changes_after(0)
    assert [(c.kind, c.user_id, c.item_id) for c in changes] == [
        ("item", None, "new"),
        ("forget", "u", None),
    ]
    assert changes[0].genres == ["Drama"] and changes[0].year == 2026


def test_ids_are_never_reused_after_the_newest_rows_are_deleted(store):
    (written,) = store.write([[Rating("u", "a", 4, 10), Rating("u", "b", 4, 10)]])
    newest = max(c.id for c in written.changes)
    (forget,) = store.write(["u"])  # deletes the two newest rows
    assert forget.changes[0].id > newest
    assert store.changes_after(newest)[0][0].kind == "forget"


def test_a_cursor_reads_only_what_came_after_it(store):
    store.write([[Rating("u", str(i), 3, i) for i in range(10)]])
    assert [c.item_id for c in store.changes_after(7)[0]] == ["7", "8", "9"]
    first_two, through = store.changes_after(0, limit=2)
    assert [c.item_id for c in first_two] == ["0", "1"] and through == first_two[-1].id
    # Ids the caller already applied (its own writes) are passed over, the cursor still moves.
    rest, through = store.changes_after(through, known={3, 4, 5})
    assert [c.id for c in rest] == [6, 7, 8, 9, 10] and through == 10


def test_an_unreachable_store_is_named_and_stores_nothing(tmp_path):
    (tmp_path / "a-directory.sqlite3").mkdir()  # a file the driver cannot open
    store = EventStore(f"sqlite:///{tmp_path}/a-directory.sqlite3")
    with pytest.raises(StoreError, match=r"event store sqlite:a-directory.sqlite3: cannot open"):
        store.open()
    with pytest.raises(StoreError, match="a-directory.sqlite3"):
        store.write([[Rating("u", "a", 4, 1)]])


@pytest.mark.integration
def test_postgres_stopped_then_back_the_store_recovers_by_itself(postgres):
    store = EventStore(postgres.new_database())
    store.open()
    store.write([[Rating("u", "a", 4, 1)]])
    postgres.stop()
    try:
        with pytest.raises(StoreError, match=r"event store postgresql\+psycopg://postgres@127"):
            store.write([[Rating("u", "b", 4, 2)]])
    finally:
        postgres.resume()
    store.write([[Rating("u", "c", 4, 3)]])  # no restart of ours needed
    assert [c.item_id for c in store.changes_after(0)[0]] == ["a", "c"]
    store.close()
