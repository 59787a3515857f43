"""One served version's live state: what follows, for that version, from the applied log
(`app.events.applied`): the ratings it did not learn (log ids above its `learned`), popularity
(training raters plus live ones, less forgotten users), genres and years with registered items'
changes, new items' raters, and the users and new items folded in against its vectors.

A view is built whole off the event loop (`LiveState.serve`), then follows each applied change
(`follow`) on the loop. The fold-in thread solves a new view's users (`refold_users`) and new
items (`refold_items`, `new_items`); a user whose ratings change after that is `stale` and
solved when a request first reads them (`user`), on the reading thread. Solves read snapshots
of the ratings, and one is kept only if no change came after its snapshot. A request resolves
its user once into a `UserView` (`user`) and ranks with that alone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

import numpy as np

from app.events.applied import AppliedLog, Effect, Forgot, Rated, Registered, Rerated
from app.events.attributes import ItemAttributes
from app.events.foldin import Folded, FoldedItem, Folder, NewItems
from app.events.user import UserView
from app.serving.loader import LoadedVersion

log = logging.getLogger("app.events")

FOLD_BLOCK = 256  # users solved together (one (users, items) product per Newton step)
# A solve that fails is logged and the user or item served as before.
FOLD_ERRORS = (np.linalg.LinAlgError, ValueError, FloatingPointError)


class VersionView:
    def __init__(
        self,
        loaded: LoadedVersion,
        applied: AppliedLog,
        learned: int,
        min_item_ratings: int = 5,
        previous: VersionView | None = None,
    ) -> None:
        """Count everything `applied` holds against `loaded`, which learned every log id up to
        `learned`. Every user with live ratings is `pending` until the fold-in thread solves
        them; a `previous` view of the same loaded version lends its solved vectors meanwhile
        (they were solved against the same version)."""
        self.loaded, self.log, self.learned = loaded, applied, learned
        self.min_item_ratings = min_item_ratings
        self.attributes = ItemAttributes(loaded)
        for registered in applied.items.values():
            self.attributes.register(loaded.item_index.get(registered.item_id), registered)
        self.popularity = np.bincount(loaded.seen.indices, minlength=loaded.n_items).astype(
            np.float32
        )
        self.log_popularity = np.zeros(0, np.float32)  # log(1 + popularity), once counted
        self.raters: dict[str, dict[str, float]] = {}  # new item -> user -> live rating
        for user, at in applied.forgotten.items():
            if at > learned and user in loaded.user_index:
                self._count_base(loaded.user_index[user], -1)
        live_users = []
        for user, rated in applied.ratings.items():
            row = self.base_row(user)
            mine = [(item, r) for item, r in rated.items() if r[2] > learned]
            if mine:
                live_users.append(user)
            for item, r in mine:
                self._count(row, item, +1)
                if item not in loaded.item_index:
                    self.raters.setdefault(item, {})[user] = r[0]
        self.log_popularity = np.log1p(np.maximum(self.popularity, 0))
        same = previous is not None and previous.loaded is loaded
        self.folder: Folder = previous.folder if previous is not None and same else Folder(loaded)
        self.folded: dict[str, Folded] = {}
        self.folded_items: dict[str, FoldedItem] = {}
        self.new_items: NewItems | None = None
        if previous is not None and same:
            # Snapshots (list, dict: one step each): the fold-in thread may be filling them.
            lent = list(previous.folded.items())
            self.folded = {u: f for u, f in lent if u in applied.ratings}
            self.folded_items = dict(previous.folded_items)
            self._publish_new_items()
        self.pending: set[str] = set(live_users)  # not yet solved against this version
        # Users whose live ratings changed since they were solved (or never were): each is
        # solved at their next read (`user`), not by the fold-in thread at every write, so a
        # write costs no solve and a read always sees every acknowledged rating. The value is
        # the generation of the change: a solve is kept only if none came after its snapshot.
        self.stale: dict[str, int] = {}
        self._generation = 0
        self._lock = threading.Lock()  # `stale` and `folded` change together under it

    @classmethod
    def empty(cls, loaded: LoadedVersion) -> VersionView:
        """A view of `loaded` with no event applied: what a trained user's request sees (for
        work in process: benchmarks, tests)."""
        return cls(loaded, AppliedLog(), 0)

    @property
    def version(self) -> int:
        return self.loaded.version

    # --- reads ---------------------------------------------------------------------------------

    def user(self, user_id: str) -> UserView:
        """Everything ranking reads of one user for this version, resolved once; a user with
        ratings not yet solved is solved now (one user: a millisecond or so)."""
        generation = self.stale.get(user_id)  # before the snapshot of their ratings
        live = self.live_ratings(user_id)
        if generation is not None and live:
            folded = self._solve_now(user_id, live, generation)
        else:
            folded = self.folded.get(user_id) if live else None
        pending = folded is None and bool(live) and user_id in self.pending
        return UserView(
            self, user_id, self.base_row(user_id), folded, live, self.new_items, pending
        )

    def base_row(self, user: str) -> int | None:
        """The user's trained row, unless they were forgotten since this version was trained
        (they are then answered like an unknown user)."""
        if self.log.forgotten.get(user, 0) > self.learned:
            return None
        return self.loaded.user_index.get(user)

    def live_ratings(self, user: str) -> dict[str, Rated]:
        """The user's ratings this version did not learn (a snapshot: safe in any thread)."""
        mine = self.log.ratings.get(user)
        if not mine:
            return {}
        learned = self.learned
        return {item: r for item, r in list(mine.items()) if r[2] > learned}

    def item_row(self, item: str, new: NewItems | None) -> int | None:
        """The item's row: in the catalogue, or among the folded-in new items `new`."""
        row = self.loaded.item_index.get(item)
        if row is None and new is not None:
            row = new.index.get(item)
        return row

    def known_item(self, item: str) -> bool:
        """Rateable: in the catalogue or registered with PUT /items."""
        return item in self.loaded.item_index or item in self.log.items

    def progress(self) -> dict[str, int]:
        """How far the fold-in against this version got (for /ready)."""
        return {"version": self.version, "pending": len(self.pending), "folded": len(self.folded)}

    # --- following the log -------------------------------------------------------------------

    def follow(self, effects: Iterable[Effect]) -> set[str]:
        """Count what applying changes did; the new items whose fold-in is due. Users whose
        ratings changed are `stale`: solved at their next read."""
        users: set[str] = set()
        items: set[str] = set()
        learned, index = self.learned, self.loaded.item_index
        for effect in effects:
            if isinstance(effect, Rerated):
                was = effect.old is not None and effect.old[2] > learned
                now = effect.new[2] > learned
                if not (was or now):
                    continue
                if was != now:
                    self._count(self.base_row(effect.user), effect.item, +1 if now else -1)
                if effect.item not in index:
                    if now:
                        self.raters.setdefault(effect.item, {})[effect.user] = effect.new[0]
                    else:
                        self.raters.get(effect.item, {}).pop(effect.user, None)
                    items.add(effect.item)
                users.add(effect.user)
            elif isinstance(effect, Forgot):
                items |= self._forget(effect)
            elif isinstance(effect, Registered):
                self.attributes.register(index.get(effect.item.item_id), effect.item)
        if users:
            with self._lock:
                self._generation += 1
                self.stale.update(dict.fromkeys(users, self._generation))
        return items

    def _forget(self, forgot: Forgot) -> set[str]:
        if forgot.at <= self.learned:
            return set()  # this version left them out already
        trained = None
        if forgot.before <= self.learned:  # their training ratings counted until now
            trained = self.loaded.user_index.get(forgot.user)
            if trained is not None:
                self._count_base(trained, -1)
        touched = set()
        for item, r in forgot.dropped.items():
            if r[2] > self.learned:
                self._count(trained, item, -1)
                if item in self.raters:
                    self.raters[item].pop(forgot.user, None)
                    touched.add(item)
        with self._lock:
            self.folded.pop(forgot.user, None)
            self.stale.pop(forgot.user, None)
        self.pending.discard(forgot.user)
        return touched

    def _count(self, row: int | None, item: str, step: int) -> None:
        """A live (user, item) pair adds a rater to a catalogue item, unless the user's training
        ratings (trained row `row`) already had it."""
        col = self.loaded.item_index.get(item)
        if col is None:
            return
        if row is not None:
            seen = self.loaded.seen.of(row)
            at = int(np.searchsorted(seen, col))
            if at < len(seen) and seen[at] == col:
                return
        self.popularity[col] += step
        if len(self.log_popularity):
            self.log_popularity[col] = np.log1p(max(float(self.popularity[col]), 0.0))

    def _count_base(self, row: int, step: int) -> None:
        cols = self.loaded.seen.of(row)
        self.popularity[cols] += step
        if len(self.log_popularity):
            self.log_popularity[cols] = np.log1p(np.maximum(self.popularity[cols], 0))

    # --- fold-in (the fold-in thread; a stale user's first read) ---------------------------------

    def refold_users(self, users: Iterable[str]) -> None:
        """Solve the users' vectors from their live ratings against this version, `FOLD_BLOCK`
        at a time (a new view's users, in the fold-in thread); each leaves `pending`."""
        pending = list(users)
        for start in range(0, len(pending), FOLD_BLOCK):
            block = pending[start : start + FOLD_BLOCK]
            with self._lock:
                generations = {user: self.stale.get(user) for user in block}
            try:
                results = self._solve({user: self.live_ratings(user) for user in block})
            except FOLD_ERRORS as err:
                log.error("fold-in of %d users failed (%s); served as before", len(block), err)
                self.pending.difference_update(block)
                continue
            self._keep(results, generations)
            self.pending.difference_update(block)

    def _solve_now(self, user: str, live: dict[str, Rated], generation: int) -> Folded | None:
        """A stale user's vectors from `live`, a snapshot taken after `generation` was read;
        kept unless a later change made them stale again (their next read solves that)."""
        try:
            results = self._solve({user: live})
        except FOLD_ERRORS as err:
            log.error("fold-in of user %r failed (%s); served as before", user, err)
            return self.folded.get(user)
        self._keep(results, {user: generation})
        return results[user]

    def _solve(self, snapshots: dict[str, dict[str, Rated]]) -> dict[str, Folded | None]:
        """Each user's vectors from a snapshot of their live ratings, solved together; None for
        a user with no rating of an item the version knows (or when nothing can be folded)."""
        inputs = {
            user: got for user, live in snapshots.items() if (got := self._fold_input(user, live))
        }
        results: dict[str, Folded | None] = dict.fromkeys(snapshots)
        if inputs:
            each = list(inputs.values())
            folded = self.folder.fold_many(
                [i[0] for i in each], [i[1] for i in each], [i[2] for i in each],
                [i[3] for i in each],
            )  # fmt: skip
            results.update(zip(inputs, folded, strict=True))
        return results

    def _keep(self, results: dict[str, Folded | None], generations: dict[str, int | None]) -> None:
        """Install solved users whose ratings did not change after their solve's snapshot
        (their `stale` generation is the one read before it)."""
        with self._lock:
            for user, result in results.items():
                if self.stale.get(user) != generations[user]:
                    continue  # rated again meanwhile: still stale
                self.stale.pop(user, None)
                if result is None:
                    self.folded.pop(user, None)
                else:
                    self.folded[user] = result

    def _fold_input(
        self, user: str, live: dict[str, Rated]
    ) -> tuple[np.ndarray, np.ndarray, int | None, int] | None:
        """What `Folder.fold_many` takes for one user: their live ratings' item rows and
        values, their trained row (None for a new or forgotten user) and its rating count; None
        when they have no live rating of an item the version knows."""
        index = self.loaded.item_index
        pairs = [(index[item], r[0]) for item, r in live.items() if item in index]
        if not pairs:
            return None
        rows = np.fromiter((p[0] for p in pairs), np.int64, len(pairs))
        ratings = np.fromiter((p[1] for p in pairs), np.float64, len(pairs))
        row = self.base_row(user)
        count = 0 if row is None else len(self.loaded.seen.of(row))
        return rows, ratings, row, count

    def refold_items(self, items: Iterable[str]) -> None:
        """Solve new items' vectors from their raters the version knows, once there are
        `min_item_ratings` of them; publish the new items' snapshot if any changed."""
        changed = False
        for item in items:
            raters = dict(self.raters.get(item, {}))
            known = [(row, r) for u, r in raters.items() if (row := self.base_row(u)) is not None]
            folded = None
            if len(known) >= self.min_item_ratings:
                rows = np.fromiter((k[0] for k in known), np.int64, len(known))
                ratings = np.fromiter((k[1] for k in known), np.float64, len(known))
                try:
                    folded = self.folder.fold_item(rows, ratings)
                except FOLD_ERRORS as err:
                    log.error("fold-in of item %r failed (%s)", item, err)
            if folded is not None:
                self.folded_items[item] = folded
                changed = True
            elif self.folded_items.pop(item, None) is not None:
                changed = True
        if changed:
            self._publish_new_items()

    def _publish_new_items(self) -> None:
        counts = {item: len(users) for item, users in list(self.raters.items())}
        folded = dict(self.folded_items)
        self.new_items = NewItems.of(self.loaded.n_items, folded, counts) if folded else None
