"""Genres and release years per catalogue row of one served version, as the filters read them:
the version's item metadata (`items.json`), overridden by what `PUT /items` registered since.
Part of each served version's live state (`app.events.view`), which keeps it current as item
changes arrive."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from app.serving.loader import LoadedVersion
from artifact.files import title_year


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
            self.years[:] = loaded.years.values
        self.columns: dict[str, np.ndarray] = {}  # lower-cased genre -> (n_items,) bool
        self.names: dict[str, str] = {}  # lower-cased genre -> as first spelled
        if loaded.genres is not None:
            for genre, rows in loaded.genres.rows_by_name().items():
                self._column(genre)[rows] = True

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
