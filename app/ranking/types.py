"""What the ranking modules hand each other and the routes: a ranking (`Recommendation`), how one
user's scores were made (`UserScores`), and how the item-item blend scaled them (`Blend`). Below
every ranking module, so the exact path, the approximate one and the explanations share them
without importing each other."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.events.foldin import NewItems
from app.serving.loader import LoadedVersion


@dataclass(frozen=True)
class Blend:
    """How one user's scores were blended (for explanations)."""

    weight: float
    rated: np.ndarray  # catalogue rows of the user's rating row
    ratings: np.ndarray  # their values in x_u (a new user's lowered by `Trust.shift`)
    item_mean: float  # of x_u B over the catalogue
    item_sd: float
    dot_mean: float  # of the vectors' score over the catalogue
    dot_sd: float
    item_item: np.ndarray | None = None  # x_u B over the catalogue (shared: do not write)
    # The blend's scores when a learned second stage reordered them (`app.ranking.second_stage`):
    # explanations split these, and say so.
    first: np.ndarray | None = None

    def with_first(self, first: np.ndarray) -> Blend:
        """This blend, recorded as reordered from `first` (dataclasses.replace costs 10x)."""
        return Blend(self.weight, self.rated, self.ratings, self.item_mean, self.item_sd,
                     self.dot_mean, self.dot_sd, self.item_item, first)  # fmt: skip


@dataclass(frozen=True)
class UserScores:
    """One user's scores over every row a ranking may return: the catalogue's, then the
    folded-in new items' (`new`)."""

    scores: np.ndarray  # fresh: the kernel may write into it
    offset: float  # added to every score shown (a rating model's global mean + user bias)
    source: str
    rated: np.ndarray | None  # the rows they rated (None: not asked to leave them out)
    new: NewItems | None
    # What the scores came from (for explanations): the user's vector, which item vectors
    # (the rating model's when by_rating), and the weight of log-popularity added to them.
    query: np.ndarray | None = None
    by_rating: bool = False
    popularity: float = 0.0
    blend: Blend | None = None  # the item-item blend, where the version has one


@dataclass(frozen=True)
class Recommendation:
    rows: np.ndarray  # item rows, best first
    scores: np.ndarray
    source: str  # "model", "fold_in" or "popular" (see app.schemas.Source)
    # The folded-in new items the rows may point past the catalogue into (row n_items + j).
    new_items: NewItems | None = None
    scored: UserScores | None = None  # how the user's scores were made (for explanations)
    pending: bool = False  # the user's live ratings are not yet folded in (see UserView)

    def item_ids(self, loaded: LoadedVersion) -> list[str]:
        ids, n, new = loaded.item_ids, loaded.n_items, self.new_items
        return [ids[r] if r < n or new is None else new.ids[r - n] for r in self.rows.tolist()]
