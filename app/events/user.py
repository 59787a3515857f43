"""One user as one served version sees them, resolved once per request (`VersionView.user`):
the version, their trained row, their folded-in vectors, the ratings the version did not learn,
and the new items folded in when the request began. Ranking takes this one object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from app.events.applied import Rated
from app.events.foldin import Folded, NewItems
from app.serving.loader import LoadedVersion

if TYPE_CHECKING:
    from app.events.view import VersionView


@dataclass(frozen=True)
class UserView:
    view: VersionView
    user_id: str
    row: int | None  # trained row (None: new, or forgotten since the version was trained)
    folded: Folded | None  # vectors solved from `live` against this version
    live: dict[str, Rated]  # item -> their latest rating the version did not learn
    new: NewItems | None  # the folded-in new items, as this request sees them
    pending: bool  # live ratings not yet folded in against this version (a swap just happened)

    @property
    def loaded(self) -> LoadedVersion:
        return self.view.loaded

    @property
    def known(self) -> bool:
        """The version can answer for them personally (or will, once `pending` is solved)."""
        return self.row is not None or self.folded is not None or self.pending

    def rated_rows(self) -> np.ndarray:
        """Rows (catalogue, then new items) of the items of their live ratings."""
        if not self.live:
            return np.empty(0, np.int64)
        rows = (self.view.item_row(item, self.new) for item in self.live)
        return np.fromiter((r for r in rows if r is not None), np.int64)

    def exclusions(self) -> np.ndarray:
        """What they rated: in the data the version learned from, and since."""
        if self.row is None:
            return self.rated_rows()
        seen = self.loaded.seen.of(self.row)
        if not self.live:
            return seen
        return np.concatenate([seen, self.rated_rows()])

    def rating_row(self, new_items: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Every item row they rated, with the rating: the version's training ratings (NaN
        where it kept none), then live ones, which replace a training rating of the same item;
        rows among the new items too unless `new_items` is off."""
        if self.row is not None and not self.live:  # the trained row alone, as stored
            seen = self.loaded.seen
            lo, hi = int(seen.indptr[self.row]), int(seen.indptr[self.row + 1])
            rows = seen.indices[lo:hi].astype(np.int64)
            if seen.ratings is None:
                return rows, np.full(hi - lo, np.nan)
            return rows, seen.ratings[lo:hi].astype(np.float64)
        mine: dict[int, float] = {}
        if self.row is not None:
            seen = self.loaded.seen
            lo, hi = int(seen.indptr[self.row]), int(seen.indptr[self.row + 1])
            values = (
                seen.ratings[lo:hi].tolist() if seen.ratings is not None else [np.nan] * (hi - lo)
            )
            mine.update(zip(seen.indices[lo:hi].tolist(), values, strict=True))
        new = self.new if new_items else None
        for item, (rating, _, _) in self.live.items():
            col = self.view.item_row(item, new)
            if col is not None:
                mine[col] = rating
        rows = np.fromiter(mine, np.int64, len(mine))
        return rows, np.fromiter(mine.values(), np.float64, len(mine))
