"""What one worker knows beyond the served version: ratings that arrived since, items registered,
users forgotten; and what follows from them for ranking (each user's rated rows, popularity).

Changes are applied in log order by the sync poller and, for this worker's own writes, at once
after their commit. Applying is idempotent and order-tolerant: a rating replaces another of the
same (user, item) only if it is later by (timestamp, log id), a rating older than its user's
forget is ignored, and a change already applied is skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from app.events.store import Change, Item
from app.ranking.filters import ItemAttributes
from app.ranking.foldin import Folded, FoldedItem, Folder
from app.serving.loader import LoadedVersion

log = logging.getLogger("app.events")

FOLD_BLOCK = 256  # users solved together (one (users, items) product per Newton step)

# One live rating: (rating, timestamp, log id), the id breaking ties between equal times. A
# plain tuple of numbers on purpose: CPython stops tracking such tuples (and dicts holding only
# them) in its garbage collector, so the live state, which grows with every event, adds nothing
# to full collections. As objects it did: p99 of POST /events went from ~22 ms to ~230 ms
# (bench/README.md, "Ingestion").
Rated = tuple[float, int, int]


@dataclass(frozen=True)
class NewItems:
    """The items folded in beyond the served catalogue, as one snapshot readers take whole:
    row n_items + j is `ids[j]`."""

    ids: tuple[str, ...]
    index: dict[str, int]  # id -> row (n_items + j)
    vectors: np.ndarray  # (m, K) in the default ranking vectors
    bias: np.ndarray  # (m,)
    rating_factors: np.ndarray | None  # (m, K') in the rating model's factors
    rating_bias: np.ndarray | None  # (m,)
    log_popularity: np.ndarray  # (m,) log(1 + raters)

    @classmethod
    def of(cls, n_items: int, folded: dict[str, FoldedItem], raters: dict[str, int]) -> NewItems:
        ids = tuple(sorted(folded))
        items = [folded[i] for i in ids]
        with_rating = all(f.rating is not None for f in items)
        return cls(
            ids,
            {item: n_items + j for j, item in enumerate(ids)},
            np.array([f.vector for f in items], np.float32),
            np.array([f.bias for f in items], np.float32),
            np.array([f.rating[0] for f in items if f.rating], np.float32) if with_rating else None,
            np.array([f.rating[1] for f in items if f.rating], np.float32) if with_rating else None,
            np.log1p(np.array([raters.get(i, 0) for i in ids], np.float32)),
        )


class LiveState:
    def __init__(self, min_item_ratings: int = 5, store: str | None = None) -> None:
        """`store`: the event store as manifests name it (`artifact.eventlog.public_url`), to
        tell a version trained from it."""
        self.store = store
        self.learned = 0  # the served version learned every rating up to this log id
        self.cursor = 0  # every change with an id up to here is applied
        self.ahead: set[int] = set()  # applied ids above the cursor (this worker's own writes)
        self.ratings: dict[str, dict[str, Rated]] = {}  # user -> item -> latest live rating
        self.forgotten: dict[str, int] = {}  # user -> log id of the forget
        self.items: dict[str, Item] = {}  # registered with PUT /items, latest wins
        self.attributes: ItemAttributes | None = None  # genres and years per catalogue row
        self.loaded: LoadedVersion | None = None
        self.popularity = np.zeros(0, np.float32)  # raters per item row of `loaded`
        self.log_popularity = np.zeros(0, np.float32)  # log(1 + popularity)
        self.folder: Folder | None = None
        self.folded: dict[str, Folded] = {}  # users with live ratings, solved against `loaded`
        # Items outside the served catalogue: who rated them, and those folded in so far.
        self.min_item_ratings = min_item_ratings
        self.raters: dict[str, dict[str, float]] = {}  # item -> user -> rating
        self.folded_items: dict[str, FoldedItem] = {}
        self.new_items: NewItems | None = None

    # --- applying changes ------------------------------------------------------------------

    def apply(
        self, changes: Iterable[Change], through: int | None = None
    ) -> tuple[set[str], set[str]]:
        """Apply `changes` (in id order). With `through` (a poll), they are every change after
        the cursor up to that id that this worker had not applied yet, and the cursor moves
        there; without (this worker's own writes), they are remembered as applied ahead of it.

        Returns the users whose live ratings changed and the new items (outside the served
        catalogue) that were rated: their fold-in is due (`refold`)."""
        rated: set[str] = set()
        items: set[str] = set()
        for change in changes:
            if change.id <= self.cursor or change.id in self.ahead:
                continue
            self._apply_one(change)
            if change.kind == "rating" and change.user_id is not None:
                rated.add(change.user_id)
                if change.item_id in self.raters:
                    items.add(change.item_id)
            if through is None:
                self.ahead.add(change.id)
        if through is not None and through > self.cursor:
            self.cursor = through
            self.ahead = {i for i in self.ahead if i > through}
        return rated, items

    # --- fold-in -------------------------------------------------------------------------------

    def refold(self, users: Iterable[str], items: Iterable[str] = ()) -> None:
        """Solve the users' vectors from their live ratings, and the new items' from theirs,
        against the served version, `FOLD_BLOCK` users at a time. Safe to run in a thread beside
        the event loop: it reads a snapshot of each one's ratings and keeps a result only if the
        version it was solved against still serves."""
        self._refold_items(items)
        pending = list(users)
        for start in range(0, len(pending), FOLD_BLOCK):
            folder = self.folder
            if folder is None:
                return
            block = pending[start : start + FOLD_BLOCK]
            inputs = [self._fold_input(folder, user) for user in block]
            solvable = [(user, got) for user, got in zip(block, inputs, strict=True) if got]
            rows = [got[0] for _, got in solvable]
            ratings = [got[1] for _, got in solvable]
            base_rows = [got[2] for _, got in solvable]
            counts = [got[3] for _, got in solvable]
            try:
                folded = folder.fold_many(rows, ratings, base_rows, counts) if solvable else []
            except (np.linalg.LinAlgError, ValueError, FloatingPointError) as err:
                log.error("fold-in of %d users failed (%s); served as before", len(block), err)
                continue
            if folder is not self.folder:
                return  # a swap refolds everyone against the new version
            for user, got in zip(block, inputs, strict=True):
                if got is None:
                    self.folded.pop(user, None)
            for (user, _), result in zip(solvable, folded, strict=True):
                if result is None:
                    self.folded.pop(user, None)
                else:
                    self.folded[user] = result

    def _refold_items(self, items: Iterable[str]) -> None:
        folder = self.folder
        if folder is None:
            return
        changed = False
        for item in items:
            raters = dict(self.raters.get(item, {}))
            known = [(folder.loaded.user_index[u], r) for u, r in raters.items()
                     if u not in self.forgotten and u in folder.loaded.user_index]  # fmt: skip
            folded = None
            if len(known) >= self.min_item_ratings:
                rows = np.fromiter((k[0] for k in known), np.int64, len(known))
                ratings = np.fromiter((k[1] for k in known), np.float64, len(known))
                try:
                    folded = folder.fold_item(rows, ratings)
                except (np.linalg.LinAlgError, ValueError, FloatingPointError) as err:
                    log.error("fold-in of item %r failed (%s)", item, err)
            if folder is not self.folder:
                return  # a swap refolds every new item against the new version
            if folded is not None:
                self.folded_items[item] = folded
                changed = True
            elif self.folded_items.pop(item, None) is not None:
                changed = True
        if changed:
            self._publish_new_items(folder)

    def _publish_new_items(self, folder: Folder) -> None:
        counts = {item: len(users) for item, users in list(self.raters.items())}
        self.new_items = (
            NewItems.of(folder.loaded.n_items, dict(self.folded_items), counts)
            if self.folded_items
            else None
        )

    def item_row(self, item: str, new: NewItems | None) -> int | None:
        """The item's row: in the served catalogue, or among the folded-in new items."""
        assert self.loaded is not None
        row = self.loaded.item_index.get(item)
        if row is None and new is not None:
            row = new.index.get(item)
        return row

    def folded_of(self, user: str) -> Folded | None:
        """The user's folded-in vectors for the served version, if they have any."""
        folded = self.folded.get(user)
        if folded is None or self.folder is None or folded.version != self.folder.version:
            return None
        return folded

    def _fold_input(
        self, folder: Folder, user: str
    ) -> tuple[np.ndarray, np.ndarray, int | None, int] | None:
        """What `Folder.fold_many` takes for one user: their live ratings' item rows and
        values, their trained row (None for a new or forgotten user) and its rating count; None
        when they have no live rating of an item the version knows."""
        mine = self.ratings.get(user)
        if not mine:
            return None
        index = folder.loaded.item_index
        pairs = [(index[item], r[0]) for item, r in list(mine.items()) if item in index]
        if not pairs:
            return None
        rows = np.fromiter((p[0] for p in pairs), np.int64, len(pairs))
        ratings = np.fromiter((p[1] for p in pairs), np.float64, len(pairs))
        row = None if user in self.forgotten else folder.loaded.user_index.get(user)
        count = 0 if row is None else len(folder.loaded.seen.of(row))
        return rows, ratings, row, count

    def _apply_one(self, change: Change) -> None:
        if change.kind == "rating":
            self._rate(change)
        elif change.kind == "item" and change.item_id is not None:
            item = self.items[change.item_id] = Item(
                change.item_id, change.title, change.genres, change.year
            )
            if self.attributes is not None and self.loaded is not None:
                self.attributes.register(self.loaded.item_index.get(item.item_id), item)
        elif change.kind == "forget" and change.user_id is not None:
            if change.id > self.learned:  # the served version left them out already
                self._forget(change.user_id, change.id)

    def _rate(self, change: Change) -> None:
        user, item = change.user_id, change.item_id
        assert user is not None and item is not None and change.rating is not None
        if change.id < self.forgotten.get(user, 0):
            return  # stored before the user was forgotten (and deleted with them)
        if change.id <= self.learned:
            return  # the served version learned it
        mine = self.ratings.setdefault(user, {})
        new = (float(change.rating), int(change.ts), int(change.id))
        old = mine.get(item)
        if old is not None and old[1:] >= new[1:]:
            return
        mine[item] = new
        if self.loaded is None or item not in self.loaded.item_index:
            self.raters.setdefault(item, {})[user] = new[0]
        if old is None:
            self._count(user, item, +1)

    def _forget(self, user: str, at: int) -> None:
        if self.base_row(user) is not None:
            self._count_base(user, -1)  # their training ratings stop counting
        for item in self.ratings.pop(user, {}):
            self._count(user, item, -1)
            if item in self.raters:
                self.raters[item].pop(user, None)
        self.forgotten[user] = max(at, self.forgotten.get(user, 0))
        self.folded.pop(user, None)

    # --- per version ---------------------------------------------------------------------------

    def rebase(self, loaded: LoadedVersion) -> None:
        """A new version serves: forget the live ratings it learned (a version trained from this
        store records the last event it read), recount popularity against its catalogue and
        seen items, and fold every user with live ratings in again against its vectors."""
        self._drop_learned(loaded)
        self.loaded = loaded
        self.attributes = ItemAttributes(loaded)
        for registered in self.items.values():
            self.attributes.register(loaded.item_index.get(registered.item_id), registered)
        counts = np.bincount(loaded.seen.indices, minlength=loaded.n_items).astype(np.float32)
        self.popularity = counts
        for user in self.forgotten:
            if user in loaded.user_index:
                self._count_base(user, -1)
        for user, items in self.ratings.items():
            for item in items:
                self._count(user, item, +1)
        self.log_popularity = np.log1p(np.maximum(self.popularity, 0))
        self.raters = {}
        for user, rated in self.ratings.items():
            for item, r in rated.items():
                if item not in loaded.item_index:
                    self.raters.setdefault(item, {})[user] = r[0]
        self.folder = Folder(loaded)
        self.folded, self.folded_items, self.new_items = {}, {}, None
        self.refold(list(self.ratings), list(self.raters))

    def _drop_learned(self, loaded: LoadedVersion) -> None:
        events = loaded.manifest.events
        self.learned = 0
        if events is None:
            return
        if self.store is not None and events.store != self.store:
            log.warning(
                "version %s learned from the event store %s, not this one (%s): its live "
                "ratings are kept",
                loaded.version,
                events.store,
                self.store,
            )
            return
        learned = self.learned = events.through
        for user in list(self.ratings):
            kept = {item: r for item, r in self.ratings[user].items() if r[2] > learned}
            if kept:
                self.ratings[user] = kept
            else:
                del self.ratings[user]
        # Forgets it learned are in it too: those users' later ratings are its training data.
        self.forgotten = {user: at for user, at in self.forgotten.items() if at > learned}

    def base_row(self, user: str) -> int | None:
        """The user's row in the served version, unless they were forgotten since it was
        trained (they are then answered like an unknown user)."""
        if self.loaded is None or user in self.forgotten:
            return None
        return self.loaded.user_index.get(user)

    def rated_rows(self, user: str, new: NewItems | None = None) -> np.ndarray:
        """Item rows (in the served version, and among `new` items) of the user's live
        ratings."""
        items = self.ratings.get(user)
        if not items or self.loaded is None:
            return np.empty(0, np.int64)
        index = self.loaded.item_index
        rows = (index.get(i) if new is None else self.item_row(i, new) for i in list(items))
        return np.fromiter((r for r in rows if r is not None), np.int64)

    def rating_row(self, user: str, new: NewItems | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Every item row the user rated, with the rating: the served version's training
        ratings (NaN where it kept none), then live ones, which replace a training rating of the
        same item; rows among `new` items too when given."""
        mine: dict[int, float] = {}
        row = self.base_row(user)
        if row is not None:
            assert self.loaded is not None
            seen = self.loaded.seen
            lo, hi = int(seen.indptr[row]), int(seen.indptr[row + 1])
            values = (
                seen.ratings[lo:hi].tolist() if seen.ratings is not None else [np.nan] * (hi - lo)
            )
            mine.update(zip(seen.indices[lo:hi].tolist(), values, strict=True))
        for item, (rating, _, _) in list(self.ratings.get(user, {}).items()):
            col = self.item_row(item, new)
            if col is not None:
                mine[col] = rating
        rows = np.fromiter(mine, np.int64, len(mine))
        return rows, np.fromiter(mine.values(), np.float64, len(mine))

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
        if len(self.log_popularity) == len(self.popularity):
            self.log_popularity[col] = np.log1p(max(float(self.popularity[col]), 0.0))

    def _count_base(self, user: str, step: int) -> None:
        assert self.loaded is not None
        row = self.loaded.user_index[user]
        cols = self.loaded.seen.of(row)
        self.popularity[cols] += step
        if len(self.log_popularity) == len(self.popularity):
            self.log_popularity[cols] = np.log1p(np.maximum(self.popularity[cols], 0))
