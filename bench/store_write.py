"""Where the event store's writer thread spends a batch of 1,000 ratings (SQLite).

    PYTHONPATH=. .venv/bin/python bench/store_write.py [--rows 300000] [--synchronous full]

POST /events' batches of 1,000 are committed by one writer thread (`app.events.store`); under
wrk (bench/ingest.py) that thread, not the event loop, is the busier one. This times its parts
on a store that grows to `--rows` ratings, new users' random ids as the bench sends them: the
whole `EventStore.write` of one 1,000-rating request, and within it the multi-row INSERT
(`_insert_ratings`) and the attribution lookup (the rest: the commit and the Python around
them). Twice: on the store as migrated, and on one without the log's index on `user_id` (what
DELETE /users and the online metrics look users up by), to show that index's share of the
INSERT. Medians per 100,000 rows stored.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections import defaultdict

from app.events import attribution
from app.events.changes import Rating
from app.events.store import EventStore

BATCH = 1000


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


def writes(rows: int, synchronous: str, user_index: bool) -> None:
    events = EventStore(
        f"sqlite:///{tempfile.mkdtemp()}/events.sqlite3", synchronous, background_checkpoints=True
    )
    events.open()
    if not user_index:
        with events._engine().begin() as conn:
            conn.exec_driver_sql("DROP INDEX log_user")
    parts: dict[str, list[float]] = defaultdict(list)
    insert, attribute = EventStore._insert_ratings, attribution.attribute
    EventStore._insert_ratings = timed(insert, parts["insert"])
    attribution.attribute = timed(attribute, parts["attribution"])
    try:
        source = batches(0)
        for k in range(rows // BATCH):
            started = time.perf_counter()
            events.write([next(source)])
            parts["write"].append(time.perf_counter() - started)
            if k % 50 == 49:
                events.checkpoint()
    finally:
        EventStore._insert_ratings, attribution.attribute = insert, attribute
        events.close()
    label = "EventStore.write, " + ("the store as migrated" if user_index else "no user_id index")
    for start in range(0, rows // BATCH, 100):
        med = {p: statistics.median(v[start : start + 100]) * 1000 for p, v in parts.items()}
        print(
            f"{label}, {start + 100}k rows: {med['write']:.1f} ms a request (insert "
            f"{med['insert']:.1f}, attribution {med['attribution']:.1f}, the rest "
            f"{med['write'] - med['insert'] - med['attribution']:.1f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--synchronous", default="full", choices=["full", "normal"])
    args = parser.parse_args()
    for user_index in (True, False):
        writes(args.rows, args.synchronous, user_index)


if __name__ == "__main__":
    main()
