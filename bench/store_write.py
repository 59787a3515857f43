"""Where the event store's writer thread spends a batch of 1,000 ratings (SQLite).

    PYTHONPATH=. .venv/bin/python bench/store_write.py [--rows 300000] [--synchronous full]

POST /events' batches of 1,000 are committed by one writer thread (`app.events.store`); under
wrk (bench/ingest.py) that thread, not the event loop, is the busier one. This times its parts
on a store that grows to `--rows` ratings, new users' random ids as the bench sends them:
- the whole `EventStore.write` of one 1,000-rating request, and within it the multi-row INSERT
  and the attribution lookup (the rest: the commit and the Python around them);
- the same INSERT statement on a bare SQLite table of the log's columns, with and without the
  index on `user_id` (what DELETE /users and the online metrics look users up by).
Medians per 100,000 rows stored.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from collections import defaultdict

from app.events import attribution, store
from app.events.changes import Rating
from app.events.store import EventStore

BATCH = 1000
COLUMNS = "kind, event_id, user_id, item_id, rating, ts, received, recommendation_id"
INSERT = (
    f"INSERT INTO log ({COLUMNS}) VALUES "
    + ",".join(["('rating'," + ",".join(["?"] * 7) + ")"] * BATCH)
    + " ON CONFLICT (event_id) DO NOTHING RETURNING id, event_id"
)


def batches(seed: int):
    rnd = random.Random(seed)
    while True:
        yield [
            Rating(f"bench-{rnd.randrange(100_000)}", str(rnd.randrange(1, 1683)),
                   float(rnd.randint(1, 5)), 1_700_000_000, None, None)
            for _ in range(BATCH)
        ]  # fmt: skip


def timed(function, into: list[float]):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - started)

    return wrapper


def service_store(rows: int, synchronous: str) -> None:
    events = EventStore(
        f"sqlite:///{tempfile.mkdtemp()}/events.sqlite3", synchronous, background_checkpoints=True
    )
    events.open()
    parts: dict[str, list[float]] = defaultdict(list)
    insert, attribute = EventStore._insert_ratings, attribution.attribute
    EventStore._insert_ratings = timed(insert, parts["insert"])
    store.attribution.attribute = timed(attribute, parts["attribution"])
    source = batches(0)
    for k in range(rows // BATCH):
        started = time.perf_counter()
        events.write([next(source)])
        parts["write"].append(time.perf_counter() - started)
        if k % 50 == 49:
            events.checkpoint()
    for start in range(0, rows // BATCH, 100):
        med = {p: statistics.median(v[start : start + 100]) * 1000 for p, v in parts.items()}
        print(
            f"EventStore.write, {start + 100}k rows: {med['write']:.1f} ms a request "
            f"(insert {med['insert']:.1f}, attribution {med['attribution']:.1f}, the rest "
            f"{med['write'] - med['insert'] - med['attribution']:.1f})"
        )


def bare_table(rows: int, synchronous: str, user_index: bool) -> None:
    db = sqlite3.connect(f"{tempfile.mkdtemp()}/bare.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute(
        "CREATE TABLE log (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, event_id "
        "TEXT UNIQUE, user_id TEXT, item_id TEXT, rating FLOAT, ts BIGINT NOT NULL, received "
        "FLOAT NOT NULL, recommendation_id TEXT)"
    )
    if user_index:
        db.execute("CREATE INDEX log_user ON log (user_id)")
    source, took = batches(0), []
    for _ in range(rows // BATCH):
        params = tuple(
            v for r in next(source) for v in (None, r.user_id, r.item_id, r.rating, r.ts, 1.0, None)
        )
        db.execute("BEGIN IMMEDIATE")
        started = time.perf_counter()
        db.execute(INSERT, params).fetchall()
        took.append(time.perf_counter() - started)
        db.execute("COMMIT")
    medians = [
        f"{start + 100}k rows {statistics.median(took[start : start + 100]) * 1000:.1f} ms"
        for start in range(0, len(took), 100)
    ]
    print(f"bare INSERT, {'with' if user_index else 'without'} the user_id index: {medians}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--synchronous", default="full", choices=["full", "normal"])
    args = parser.parse_args()
    service_store(args.rows, args.synchronous)
    for user_index in (True, False):
        bare_table(args.rows, args.synchronous, user_index)


if __name__ == "__main__":
    main()
