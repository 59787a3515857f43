"""The event log as one worker applied it, in the store's order and idempotently: every live
rating (the latest of each (user, item) by (timestamp, log id)), every forget, every registered
item. It holds no version: each served version's view (`app.events.view`) reads from it the
ratings that version did not learn and follows what each applied change did (`Effect`).

Rows at or below `floor` were not read: every served version learned them (their item rows
excepted: registered items are read whatever their id, `register`). Applying is idempotent and
order-tolerant: a rating replaces another of the same (user, item) only if it is later by
(timestamp, log id), a rating stored before its user's forget is ignored (the store deleted it
with them), and a change already applied is skipped (by the cursor, or, for this worker's own
writes applied ahead of it, by id).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from app.events.changes import Change, Item

# One live rating: (rating, timestamp, log id), the id breaking ties between equal times. A
# plain tuple of numbers on purpose: CPython stops tracking such tuples (and dicts holding only
# them) in its garbage collector, so the log, which grows with every event, adds nothing to full
# collections. As objects it did: p99 of POST /events went from ~22 ms to ~230 ms
# (bench/README.md, "Ingestion").
Rated = tuple[float, int, int]


@dataclass(slots=True)  # one per event applied: see `app.events.changes.Rating`
class Rerated:
    """A rating applied: `new` replaced `old` (None: the pair's first live rating)."""

    user: str
    item: str
    old: Rated | None
    new: Rated


@dataclass(frozen=True)
class Forgot:
    """A user forgotten at log id `at` (their previous forget: `before`, 0 for none); `dropped`
    are their live ratings stored before it."""

    user: str
    at: int
    before: int
    dropped: dict[str, Rated]


@dataclass(frozen=True)
class Registered:
    item: Item


Effect = Rerated | Forgot | Registered


class AppliedLog:
    def __init__(self, floor: int = 0) -> None:
        self.floor = floor  # rows up to here were not read (every served version learned them)
        self.cursor = floor  # every change with an id up to here is applied
        self.ahead: set[int] = set()  # applied ids above the cursor (this worker's own writes)
        self.ratings: dict[str, dict[str, Rated]] = {}  # user -> item -> latest live rating
        self.forgotten: dict[str, int] = {}  # user -> log id of their latest forget
        self.items: dict[str, Item] = {}  # registered with PUT /items, latest wins

    def apply(self, changes: Iterable[Change], through: int | None = None) -> list[Effect]:
        """Apply `changes` (in id order). With `through` (a read of the store), they are every
        change after the cursor up to that id that this worker had not applied yet, and the
        cursor moves there; without (this worker's own writes), they are remembered as applied
        ahead of it. Returns what each change that was not skipped did."""
        effects: list[Effect] = []
        for change in changes:
            if change.id <= self.cursor or change.id in self.ahead:
                continue
            effect = self._apply_one(change)
            if effect is not None:
                effects.append(effect)
            if through is None:
                self.ahead.add(change.id)
        if through is not None and through > self.cursor:
            self.cursor = through
            self.ahead = {i for i in self.ahead if i > through}
        return effects

    def register(self, changes: Iterable[Change]) -> None:
        """Item rows at or below the floor: registered items count whatever their id (a version
        learns an item's ratings, not that it was registered)."""
        for change in changes:
            if change.kind == "item" and change.id <= self.floor:
                self._apply_one(change)

    def _apply_one(self, change: Change) -> Effect | None:
        if change.kind == "rating":
            return self._rate(change)
        if change.kind == "item" and change.item_id is not None:
            item = self.items[change.item_id] = Item(
                change.item_id, change.title, change.genres, change.year
            )
            return Registered(item)
        if change.kind == "forget" and change.user_id is not None:
            return self._forget(change.user_id, change.id)
        return None

    def _rate(self, change: Change) -> Rerated | None:
        user, item = change.user_id, change.item_id
        assert user is not None and item is not None and change.rating is not None
        if change.id < self.forgotten.get(user, 0):
            return None  # stored before the user was forgotten (and deleted with them)
        new = (float(change.rating), int(change.ts), int(change.id))
        mine = self.ratings.get(user)
        old = mine.get(item) if mine is not None else None
        if old is not None and old[1:] >= new[1:]:
            return None
        if mine is None:
            mine = self.ratings[user] = {}
        mine[item] = new
        return Rerated(user, item, old, new)

    def _forget(self, user: str, at: int) -> Forgot | None:
        before = self.forgotten.get(user, 0)
        if at <= before:
            return None
        self.forgotten[user] = at
        mine = self.ratings.get(user, {})
        # Ratings stored after the forget (applied first, out of order) are a fresh start.
        dropped = {item: r for item, r in mine.items() if r[2] < at}
        kept = {item: r for item, r in mine.items() if r[2] > at}
        if kept:
            self.ratings[user] = kept
        else:
            self.ratings.pop(user, None)
        return Forgot(user, at, before, dropped)
