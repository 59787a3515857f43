"""Request-time filters (genres, years, items to leave out) as one boolean mask over the rows a
ranking scores: the catalogue's, then the folded-in new items'. The top-N kernel sets every row
outside the mask to -inf inside its one scoring pass, so n items come back whenever n pass, with
no over-fetching, and a filtered-out item never comes back.

Genres and years come from the served version's item metadata, overridden by what `PUT /items`
registered since (`app.events.attributes`). Genre names match case-insensitively; an item of
unknown year passes no year bound.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from app.events.attributes import Described, ItemAttributes
from app.events.foldin import NewItems
from app.events.view import VersionView


@dataclass(frozen=True)
class ItemFilter:
    """Which items a ranking may return. Empty: every item."""

    genres: tuple[str, ...] = ()  # any of
    exclude_genres: tuple[str, ...] = ()
    year_min: int | None = None
    year_max: int | None = None
    exclude_items: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        genres: Iterable[str] = (),
        exclude_genres: Iterable[str] = (),
        year_min: int | None = None,
        year_max: int | None = None,
        exclude_items: Iterable[str] = (),
    ) -> ItemFilter:
        """A filter from a request's fields (blank names dropped)."""
        return cls(
            tuple(g.strip() for g in genres if g.strip()),
            tuple(g.strip() for g in exclude_genres if g.strip()),
            year_min,
            year_max,
            tuple(i.strip() for i in exclude_items if i.strip()),
        )

    def __bool__(self) -> bool:
        return bool(
            self.genres
            or self.exclude_genres
            or self.year_min is not None
            or self.year_max is not None
            or self.exclude_items
        )

    def allowed(
        self,
        attributes: ItemAttributes,
        item_index: Mapping[str, int],
        new: NewItems | None,
        registered: Mapping[str, Described],
    ) -> np.ndarray | None:
        """The (catalogue rows + new items) mask of what may be returned; None when the filter
        is empty. Ids in `exclude_items` that no item has are ignored (a frontend's own list may
        name items the model never saw); a genre no item has matches none (`warnings` says
        so)."""
        if not self:
            return None
        n = attributes.n_items
        extra = [registered.get(i) for i in new.ids] if new is not None else []
        mask = np.ones(n + len(extra), bool)
        if self.genres:
            mask &= self._any_genre(attributes, self.genres, extra)
        if self.exclude_genres:
            mask &= ~self._any_genre(attributes, self.exclude_genres, extra)
        if self.year_min is not None or self.year_max is not None:
            years = attributes.years
            if extra:
                more = [np.nan if i is None or i.year is None else i.year for i in extra]
                years = np.concatenate([years, np.array(more, np.float32)])
            with np.errstate(invalid="ignore"):  # NaN (unknown year) passes no bound
                if self.year_min is not None:
                    mask &= years >= self.year_min
                if self.year_max is not None:
                    mask &= years <= self.year_max
        for item in self.exclude_items:
            row = item_index.get(item)
            if row is None and new is not None:
                row = new.index.get(item)
            if row is not None:
                mask[row] = False
        return mask

    def warnings(self, attributes: ItemAttributes | None) -> list[str]:
        """What in the filter no item can pass, said to the caller with the answer: a genre no
        item has (the known ones named: a misspelt genre would otherwise quietly empty the
        list), year bounds the wrong way round. The filter still applies as asked: an unknown
        genre matches no item."""
        notes = []
        if attributes is not None:
            for field, wanted in (
                ("genres", self.genres),
                ("exclude_genres", self.exclude_genres),
            ):
                unknown = [g for g in wanted if g.lower() not in attributes.columns]
                if unknown:
                    known = ", ".join(sorted(attributes.names.values())) or "none"
                    listed = ", ".join(map(repr, unknown))
                    notes.append(f"{field}: no item has the genre {listed} (known: {known})")
        if self.year_min is not None and self.year_max is not None:
            if self.year_min > self.year_max:
                notes.append(
                    f"year_min {self.year_min} is above year_max {self.year_max}: no item passes"
                )
        return notes

    @staticmethod
    def _any_genre(
        attributes: ItemAttributes, genres: tuple[str, ...], extra: list[Described | None]
    ) -> np.ndarray:
        wanted = {g.lower() for g in genres}
        out = np.zeros(attributes.n_items + len(extra), bool)
        for genre in wanted:
            column = attributes.columns.get(genre)
            if column is not None:
                out[: attributes.n_items] |= column
        for j, item in enumerate(extra):
            if item is not None and any(g.lower() in wanted for g in item.genres):
                out[attributes.n_items + j] = True
        return out


def allowed_by(
    view: VersionView, where: ItemFilter | None, new: NewItems | None
) -> np.ndarray | None:
    """The mask `where` asks for over `view`'s rows (and the new items `new`); None for no
    filter."""
    if not where:
        return None
    return where.allowed(view.attributes, view.loaded.item_index, new, view.log.items)
