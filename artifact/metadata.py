"""A version's item metadata (titles, genre lists, years per catalogue row) held in arrays.

As Python lists, a million items' metadata is three million objects: a str per title, a list
per genre set, an int per year, each with its header and a pointer in a list (bench/metadata.py
measures both). Here each column is one object and a few arrays: the titles one string with
their end offsets, the genres a vocabulary with one small code per (row, genre), the years a
float column with NaN for unknown. Each reads like the list it replaces (`titles[row]`,
`genres[row]`, `years[row]`, `len`, iteration, slices as lists), and the filters and the title
search read the arrays directly.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any, overload

import numpy as np


class _Packed(Sequence[Any]):
    """Rows 0..n-1 of variable-length values laid end to end, row r ending at `ends[r]`."""

    ends: np.ndarray

    def __len__(self) -> int:
        return len(self.ends)

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self._row(r) for r in range(*index.indices(len(self)))]
        row = operator.index(index)
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(f"row {index} of {len(self)}")
        return self._row(row)

    def _span(self, row: int) -> tuple[int, int]:
        return (int(self.ends[row - 1]) if row else 0), int(self.ends[row])

    def _row(self, row: int) -> Any:
        raise NotImplementedError


def _ends(lengths: Any, n: int) -> np.ndarray:
    return np.cumsum(np.fromiter(lengths, np.int64, n))


class Titles(_Packed):
    """Titles per row (None where a row has none) as one string and end offsets."""

    def __init__(self, titles: Sequence[str | None]) -> None:
        n = len(titles)
        self.ends = _ends((len(t) if t else 0 for t in titles), n)
        self.known = np.fromiter((t is not None for t in titles), bool, n)
        self.text = "".join(t for t in titles if t)
        self._folded: tuple[str, np.ndarray] | None = None

    @classmethod
    def of_arrays(cls, text: str, ends: np.ndarray, known: np.ndarray) -> Titles:
        """The titles as `artifact.item_columns` stores them: `text`, each row's end in it (in
        characters) and which rows have a title."""
        titles = cls.__new__(cls)
        titles.text, titles.ends, titles.known = text, ends.astype(np.int64), known.astype(bool)
        titles._folded = None
        return titles

    def _row(self, row: int) -> str | None:
        if not self.known[row]:
            return None
        start, end = self._span(row)
        return self.text[start:end]

    def containing(self, text: str) -> np.ndarray:
        """The rows (ascending) whose title contains `text`, both case-folded."""
        wanted = text.casefold()
        if not wanted:
            return np.flatnonzero(np.diff(self.ends, prepend=0) > 0)
        if "\0" in wanted:  # could span two titles in the joined text: one at a time
            return np.array(
                [r for r, t in enumerate(self) if t and wanted in t.casefold()], np.int64
            )
        folded, starts = self._casefolded()
        rows, at = [], folded.find(wanted)
        while at >= 0:  # a match holds no "\0", so it lies inside one title
            row = int(np.searchsorted(starts, at, side="right")) - 1
            rows.append(row)
            at = folded.find(wanted, int(starts[row + 1]) if row + 1 < len(starts) else len(folded))
        return np.array(rows, np.int64)

    def _casefolded(self) -> tuple[str, np.ndarray]:
        """The titles case-folded, joined by "\\0", and where each starts; built on the first
        search (case-folding can change a title's length, so the offsets are its own)."""
        if self._folded is None:
            folded = [(t or "").casefold() for t in self]
            lengths = _ends((len(t) + 1 for t in folded), len(folded))
            self._folded = "\0".join(folded), np.concatenate([[0], lengths[:-1]])
        return self._folded


class Genres(_Packed):
    """Genre lists per row as a vocabulary (`names`, in first-seen order) and one code per
    (row, genre), row by row."""

    def __init__(self, genres: Sequence[Sequence[str]]) -> None:
        vocabulary: dict[str, int] = {}
        codes = [vocabulary.setdefault(g, len(vocabulary)) for row in genres for g in row]
        self.names = list(vocabulary)
        self.codes = np.array(codes, np.int32 if len(vocabulary) > 32_767 else np.int16)
        self.ends = _ends(map(len, genres), len(genres))

    @classmethod
    def of_arrays(cls, names: list[str], codes: np.ndarray, ends: np.ndarray) -> Genres:
        """The genres as `artifact.item_columns` stores them."""
        genres = cls.__new__(cls)
        genres.names, genres.codes, genres.ends = names, codes, ends.astype(np.int64)
        return genres

    def _row(self, row: int) -> list[str]:
        start, end = self._span(row)
        return [self.names[c] for c in self.codes[start:end].tolist()]

    def rows_by_name(self) -> dict[str, np.ndarray]:
        """Each genre's rows (ascending), by its name as written."""
        rows = np.repeat(np.arange(len(self), dtype=np.int64), np.diff(self.ends, prepend=0))
        order = np.argsort(self.codes, kind="stable")
        groups = np.split(order, np.flatnonzero(np.diff(self.codes[order])) + 1)
        return {self.names[int(self.codes[g[0]])]: rows[g] for g in groups if len(g)}


class Years(_Packed):
    """Release years per row (None where unknown) as a float column with NaN for unknown."""

    def __init__(self, years: Sequence[int | None]) -> None:
        self.values = np.array([np.nan if y is None else y for y in years], np.float64)

    @classmethod
    def of_array(cls, values: np.ndarray) -> Years:
        """The years as `artifact.item_columns` stores them (NaN: unknown)."""
        years = cls.__new__(cls)
        years.values = values.astype(np.float64)
        return years

    def __len__(self) -> int:
        return len(self.values)

    def _row(self, row: int) -> int | None:
        value = self.values[row]
        return None if np.isnan(value) else int(value)
