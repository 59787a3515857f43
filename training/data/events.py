"""Training input from the service's event store: the base data plus every rating the store
holds, forgotten users removed (base data included), registered items' metadata added.

What the store contributes is recorded (`StoreInput`) and written into the version's manifest:
the service then knows which events the version already learned (ids up to `through`) and drops
them from its live state when it swaps to it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace

import pandas as pd
from sqlalchemy.exc import SQLAlchemyError

from artifact.eventlog import public_url, read_impressions, read_log
from training.data.ratings import RatingsData, items_frame

log = logging.getLogger("training.data")


@dataclass(frozen=True)
class StoreInput:
    """What one read of the store added to a training run."""

    store: str  # the store as the manifest names it (no password, no host paths)
    store_id: str | None  # its identity (None: a store older than identities)
    through: int  # the highest log id read: every event up to it is in the data
    ratings: int  # ratings taken from the store (after replacing earlier ones of the same pair)
    forgotten: int  # users forgotten, left out of the base data too
    items: int  # items registered through the service
    impressions: int = 0  # answers the service recorded (read as exposure, never as ratings)


def with_events(data: RatingsData, url: str, skip: AbstractSet[int] = frozenset()) -> RatingsData:
    """`data` plus everything in the store at `url` but the ratings of the log ids `skip` (the
    retrain loop's held-out ones: left out as if never posted).

    A rating in the store replaces one of the same (user, item) in the base data, as the loaders
    do for a file (the later by timestamp; the store's on a tie). A forgotten user's ratings
    leave the base data; their ratings stored after the forget stay.

    Raises:
        ValueError: the store cannot be read (the message names it).
    """
    ratings, items, forgotten, through = [], {}, set(), 0
    try:
        identity, rows = read_log(url)
        for row in rows:
            through = row["id"]
            if row["kind"] == "rating" and row["id"] not in skip:
                ratings.append((row["user_id"], row["item_id"], row["rating"], row["ts"]))
            elif row["kind"] == "item":
                genres = json.loads(row["genres"] or "[]")
                items[row["item_id"]] = (row["title"], genres, row["year"])
            elif row["kind"] == "forget":
                forgotten.add(row["user_id"])
        shown = list(read_impressions(url))
    except (SQLAlchemyError, FileNotFoundError, OSError) as err:
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        raise ValueError(f"event store {public_url(url)}: cannot read its log ({reason})") from None
    exposures = pd.DataFrame(
        [
            (s["user_id"], item, position, s["ts"], s["version"])
            for s in shown
            if s["user_id"] not in forgotten
            for position, item in enumerate(s["items"])
        ],
        columns=["user_id", "item_id", "position", "ts", "version"],
    )
    base = data.ratings
    kept = base[~base["user_id"].isin(forgotten)]
    events = pd.DataFrame(ratings, columns=["user_id", "item_id", "rating", "timestamp"]).astype(
        {"user_id": str, "item_id": str, "rating": "float32", "timestamp": "int64"}
    )
    if "timestamp" not in kept.columns:
        kept = kept.assign(timestamp=0)
    both = pd.concat([kept, events], ignore_index=True)
    latest = both.sort_values("timestamp", kind="stable").drop_duplicates(
        ["user_id", "item_id"], keep="last"
    )
    merged = latest.sort_index().reset_index(drop=True)
    catalogue = data.items
    if items:
        registered = items_frame(
            list(items),
            [t for t, _, _ in items.values()],
            [g for _, g, _ in items.values()],
            [y for _, _, y in items.values()],
        )
        catalogue = (
            registered
            if catalogue is None
            else pd.concat([catalogue, registered], ignore_index=True).drop_duplicates(
                "item_id", keep="last"
            )
        )
    store = StoreInput(
        public_url(url),
        identity.id if identity else None,
        through,
        len(events),
        len(forgotten),
        len(items),
        len(shown),
    )
    log.info(
        "%s: %s ratings from the event store %s (through log id %d), %d users forgotten",
        data.source,
        f"{len(events):,}",
        store.store,
        through,
        len(forgotten),
    )
    return replace(data, ratings=merged, items=catalogue, store=store, exposures=exposures)
