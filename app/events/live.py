"""What one worker knows beyond the served version: ratings that arrived since, items registered,
users forgotten; and what follows from them for ranking (each user's rated rows, popularity).

Changes are applied in log order by the sync poller and, for this worker's own writes, at once
after their commit. Applying is idempotent and order-tolerant: a rating replaces another of the
same (user, item) only if it is later by (timestamp, log id), a rating older than its user's
forget is ignored, and a change already applied is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from app.events.store import Change, Item
from app.serving.loader import LoadedVersion

# One live rating: (rating, timestamp, log id), the id breaking ties between equal times. A
# plain tuple of numbers on purpose: CPython stops tracking such tuples (and dicts holding only
# them) in its garbage collector, so the live state, which grows with every event, adds nothing
# to full collections. As objects it did: p99 of POST /events went from ~22 ms to ~230 ms
# (bench/README.md, "Ingestion").
Rated = tuple[float, int, int]


class LiveState:
    def __init__(self) -> None:
        self.cursor = 0  # every change with an id up to here is applied
        self.ahead: set[int] = set()  # applied ids above the cursor (this worker's own writes)
        self.ratings: dict[str, dict[str, Rated]] = {}  # user -> item -> latest live rating
        self.forgotten: dict[str, int] = {}  # user -> log id of the forget
        self.items: dict[str, Item] = {}  # registered with PUT /items, latest wins
        self.loaded: LoadedVersion | None = None
        self.popularity = np.zeros(0, np.float32)  # raters per item row of `loaded`

    # --- applying changes ------------------------------------------------------------------

    def apply(self, changes: Iterable[Change], through: int | None = None) -> None:
        """Apply `changes` (in id order). With `through` (a poll), they are every change after
        the cursor up to that id that this worker had not applied yet, and the cursor moves
        there; without (this worker's own writes), they are remembered as applied ahead of it."""
        for change in changes:
            if change.id <= self.cursor or change.id in self.ahead:
                continue
            self._apply_one(change)
            if through is None:
                self.ahead.add(change.id)
        if through is not None and through > self.cursor:
            self.cursor = through
            self.ahead = {i for i in self.ahead if i > through}

    def _apply_one(self, change: Change) -> None:
        if change.kind == "rating":
            self._rate(change)
        elif change.kind == "item" and change.item_id is not None:
            self.items[change.item_id] = Item(
                change.item_id, change.title, change.genres, change.year
            )
        elif change.kind == "forget" and change.user_id is not None:
            self._forget(change.user_id, change.id)

    def _rate(self, change: Change) -> None:
        user, item = change.user_id, change.item_id
        assert user is not None and item is not None and change.rating is not None
        if change.id < self.forgotten.get(user, 0):
            return  # stored before the user was forgotten (and deleted with them)
        mine = self.ratings.setdefault(user, {})
        new = (float(change.rating), int(change.ts), int(change.id))
        old = mine.get(item)
        if old is not None and old[1:] >= new[1:]:
            return
        mine[item] = new
        if old is None:
            self._count(user, item, +1)

    def _forget(self, user: str, at: int) -> None:
        if self.base_row(user) is not None:
            self._count_base(user, -1)  # their training ratings stop counting
        for item in self.ratings.pop(user, {}):
            self._count(user, item, -1)
        self.forgotten[user] = max(at, self.forgotten.get(user, 0))

    # --- per version ---------------------------------------------------------------------------

    def rebase(self, loaded: LoadedVersion) -> None:
        """A new version serves: recount popularity against its catalogue and seen items."""
        self.loaded = loaded
        counts = np.bincount(loaded.seen.indices, minlength=loaded.n_items).astype(np.float32)
        self.popularity = counts
        for user in self.forgotten:
            if user in loaded.user_index:
                self._count_base(user, -1)
        for user, items in self.ratings.items():
            for item in items:
                self._count(user, item, +1)

    def base_row(self, user: str) -> int | None:
        """The user's row in the served version, unless they were forgotten since it was
        trained (they are then answered like an unknown user)."""
        if self.loaded is None or user in self.forgotten:
            return None
        return self.loaded.user_index.get(user)

    def rated_rows(self, user: str) -> np.ndarray:
        """Item rows (in the served version) of the user's live ratings."""
        items = self.ratings.get(user)
        if not items or self.loaded is None:
            return np.empty(0, np.int64)
        index = self.loaded.item_index
        return np.fromiter((index[i] for i in items if i in index), np.int64)

    def _count(self, user: str, item: str, step: int) -> None:
        """A live (user, item) pair adds a rater to the item, unless the user's training ratings
        already had it."""
        if self.loaded is None:
            return
        col = self.loaded.item_index.get(item)
        if col is None:
            return
        row = self.base_row(user)
        if row is not None:
            seen = self.loaded.seen.of(row)
            at = int(np.searchsorted(seen, col))
            if at < len(seen) and seen[at] == col:
                return
        self.popularity[col] += step

    def _count_base(self, user: str, step: int) -> None:
        assert self.loaded is not None
        row = self.loaded.user_index[user]
        self.popularity[self.loaded.seen.of(row)] += step
