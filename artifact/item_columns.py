"""`item_columns.npz`: a version's item metadata as the arrays `artifact.metadata` holds.

`items.json` stays the readable copy (and what older services read); this file is the same
titles, genres and years already in columnar form, so a worker's start is a few array reads, not
a parse of one JSON object per item: at a million items the JSON took 7.5 s of a worker's start
and left 85 MB behind (bench/README.md, "A million items in one worker"). The export writes both
from one source, and both are in the manifest's checksums.

Arrays (uncompressed .npz, no pickles):
- `title_text` uint8: the UTF-8 of every title end to end; `title_ends` int64: where each row's
  title ends, in characters; `title_known` bool: rows that have a title.
- `genre_names`: the genre vocabulary (unicode); `genre_codes` int16/int32: one code per (row,
  genre), row by row; `genre_ends` int64: where each row's codes end.
- `years` float64: the release year, NaN where unknown.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from artifact.errors import ArtifactError
from artifact.metadata import Genres, Titles, Years

_KEYS = {
    "title_text",
    "title_ends",
    "title_known",
    "genre_names",
    "genre_codes",
    "genre_ends",
    "years",
}


def write_item_columns(
    path: Path,
    titles: Sequence[str | None],
    genres: Sequence[Sequence[str]],
    years: Sequence[int | None],
) -> None:
    """Write one row per item: its title (or None), genre list and year (or None)."""
    packed_titles, packed_genres, packed_years = Titles(titles), Genres(genres), Years(years)
    with path.open("wb") as out:
        np.savez(
            out,
            title_text=np.frombuffer(packed_titles.text.encode("utf-8"), np.uint8),
            title_ends=packed_titles.ends,
            title_known=packed_titles.known,
            genre_names=np.array(packed_genres.names, dtype=str),
            genre_codes=packed_genres.codes,
            genre_ends=packed_genres.ends,
            years=packed_years.values,
        )


def read_item_columns(path: Path, n_items: int) -> tuple[Titles, Genres, Years]:
    """The columns of `n_items` rows, checked.

    Raises:
        ArtifactError: missing, not an .npz of these arrays (or pickled), of another length or
            dtype, offsets that do not run through the text and codes in order, genre codes
            outside the vocabulary, or titles that are not UTF-8 (the message says which).
    """
    try:
        with np.load(path, allow_pickle=False) as stored:
            found = set(stored.files)
            if found != _KEYS:
                raise ArtifactError(f"{path}: arrays {sorted(found)}, expected {sorted(_KEYS)}")
            arrays = {key: stored[key] for key in _KEYS}
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing") from None
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise ArtifactError(f"{path}: not a readable .npz of arrays ({err})") from None
    _check_kinds(path, arrays, n_items)
    try:
        text = arrays["title_text"].tobytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ArtifactError(f"{path}: title_text is not UTF-8 ({err})") from None
    names = [str(name) for name in arrays["genre_names"]]
    codes = arrays["genre_codes"]
    _check_offsets(path, "title_ends", arrays["title_ends"], len(text))
    _check_offsets(path, "genre_ends", arrays["genre_ends"], len(codes))
    if len(codes) and (codes.min() < 0 or codes.max() >= len(names)):
        raise ArtifactError(
            f"{path}: genre_codes run from {codes.min()} to {codes.max()}, "
            f"but genre_names has {len(names)}"
        )
    return (
        Titles.of_arrays(text, arrays["title_ends"], arrays["title_known"]),
        Genres.of_arrays(names, codes, arrays["genre_ends"]),
        Years.of_array(arrays["years"]),
    )


def _check_kinds(path: Path, arrays: dict[str, np.ndarray], n_items: int) -> None:
    kinds = {
        "title_text": ("u", "uint8"),
        "title_ends": ("i", "integer"),
        "title_known": ("b", "bool"),
        "genre_names": ("U", "unicode"),
        "genre_codes": ("i", "integer"),
        "genre_ends": ("i", "integer"),
        "years": ("f", "float"),
    }
    for key, (kind, named) in kinds.items():
        array = arrays[key]
        if array.ndim != 1 or array.dtype.kind != kind:
            raise ArtifactError(
                f"{path}: {key} is {array.ndim}-D {array.dtype}, expected 1-D {named}"
            )
    for key in ("title_ends", "title_known", "genre_ends", "years"):
        if len(arrays[key]) != n_items:
            raise ArtifactError(
                f"{path}: {key} has {len(arrays[key])} rows, the id list {n_items} items"
            )


def _check_offsets(path: Path, key: str, ends: np.ndarray, total: int) -> None:
    if len(ends) and (ends[0] < 0 or (np.diff(ends) < 0).any() or ends[-1] != total):
        raise ArtifactError(f"{path}: {key} do not rise from 0 to {total} in order")
