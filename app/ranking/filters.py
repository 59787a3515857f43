"""Request-time filters (genres, years, items to leave out) as one boolean mask over the rows a
ranking scores: the catalogue's, then the folded-in new items'. The top-N kernel sets every row
outside the mask to -inf inside its one scoring pass, so n items come back whenever n pass, with
no over-fetching, and a filtered-out item never comes back.

Genres and years come from the served version's item metadata (`items.json`: MovieLens genres,
the release year), overridden by what `PUT /items` registered since: `ItemAttributes` keeps them
per catalogue row. Genre names match case-insensitively; an item of unknown year passes no year
bound.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from app.serving.loader import LoadedVersion
from artifact.files import title_year

if TYPE_CHECKING:
    from app.events.live import NewItems


class Described(Protocol):
    """What a registered item says about itself (`app.events.store.Item`)."""

    @property
    def title(self) -> str | None: ...

    @property
    def genres(self) -> list[str]: ...

    @property
    def year(self) -> int | None: ...


class ItemAttributes:
    """Genre membership and release year per catalogue row of one served version."""

    def __init__(self, loaded: LoadedVersion) -> None:
        n = loaded.n_items
        self.n_items = n
        self.years = np.full(n, np.nan, np.float32)
        if loaded.years is not None:
            known = [(r, y) for r, y in enumerate(loaded.years) if y is not None]
            if known:
                rows, years = zip(*known, strict=True)
                self.years[list(rows)] = years
        self.columns: dict[str, np.ndarray] = {}  # lower-cased genre -> (n_items,) bool
        self.names: dict[str, str] = {}  # lower-cased genre -> as first spelled
        for row, genres in enumerate(loaded.genres or []):
            for genre in genres:
                self._column(genre)[row] = True

    def register(self, row: int | None, item: Described) -> None:
        """What PUT /items said about an item: its genres and year (or the year its title ends
        with) replace the version's for a catalogue row; its genres become known names either
        way."""
        for genre in item.genres:
            self._column(genre)
        if row is None:
            return
        for column in self.columns.values():
            column[row] = False
        for genre in item.genres:
            self.columns[genre.lower()][row] = True
        year = item.year if item.year is not None else title_year(item.title)
        self.years[row] = np.nan if year is None else year

    def _column(self, genre: str) -> np.ndarray:
        key = genre.lower()
        column = self.columns.get(key)
        if column is None:
            column = self.columns[key] = np.zeros(self.n_items, bool)
            self.names[key] = genre
        return column


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
