"""Reading the files of a version, each checked, each error naming the file.

Arrays are memory-mapped and never unpickled; JSON is parsed strictly enough to refuse what a
buggy exporter or a hand edit could leave behind (ids that are not strings, duplicates, a shape
that disagrees with the id lists).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from artifact.errors import ArtifactError
from artifact.metadata import Genres, Titles, Years


def read_json(path: Path, missing: str = "missing") -> Any:
    """Parse one JSON file of a version.

    Raises:
        ArtifactError: the file is missing (message `missing`) or is not valid JSON.
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path}: {missing}") from None
    except (OSError, ValueError) as err:
        raise ArtifactError(f"{path}: unreadable JSON ({err})") from None


def read_ids(path: Path) -> list[str]:
    """An id list (`user_ids.json`, `item_ids.json`): distinct strings, row order.

    Raises:
        ArtifactError: missing, not JSON, not a list of strings, or with duplicates.
    """
    ids = read_json(path)
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ArtifactError(f"{path}: expected a JSON list of string ids")
    if len(set(ids)) != len(ids):
        raise ArtifactError(f"{path}: {len(ids) - len(set(ids))} duplicate ids")
    return ids


def read_array(
    path: Path, shape: tuple[int | None, ...] | None, dtype: npt.DTypeLike = np.float32
) -> np.ndarray:
    """Memory-map one .npy and check it; `shape` may leave a dimension as None (any size), and
    `shape=None` asks for any 1-D array. Float arrays must be finite.

    Raises:
        ArtifactError: missing, unreadable (or pickled), of another dtype or shape, or with
            NaN/inf (the message names the file and what it found).
    """
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing") from None
    except (OSError, ValueError) as err:
        raise ArtifactError(f"{path}: not a readable .npy array ({err})") from None
    if array.dtype != dtype:
        raise ArtifactError(f"{path}: dtype {array.dtype}, expected {np.dtype(dtype)}")
    if shape is not None and (
        array.ndim != len(shape)
        or any(
            want is not None and got != want for got, want in zip(array.shape, shape, strict=True)
        )
    ):
        wanted = tuple("any" if d is None else d for d in shape)
        raise ArtifactError(f"{path}: shape {array.shape}, expected {wanted} from the id lists")
    if shape is None and array.ndim != 1:
        raise ArtifactError(f"{path}: {array.ndim}-D, expected 1-D")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise ArtifactError(f"{path}: contains NaN or infinite values")
    # A plain ndarray view of the same mapped pages: np.memmap's Python-level __getitem__ cost
    # ~6 us per index on the /recommend path; the view shares the page cache all the same.
    return np.asarray(array)


# MovieLens titles end with the release year: "Toy Story (1995)", "Heat (1995) " in a few files.
_TITLE_YEAR = re.compile(r"\((\d{4})\)\s*$")


def title_year(title: object) -> int | None:
    """The year a MovieLens-style title ends with, or None."""
    if not isinstance(title, str):
        return None
    found = _TITLE_YEAR.search(title)
    return int(found.group(1)) if found else None


class ItemMetadata(NamedTuple):
    titles: Titles
    genres: Genres
    years: Years  # `year` where written, else the year the title ends with


def read_item_metadata(path: Path, n_items: int) -> ItemMetadata | None:
    """Titles, genre lists and years per item row from `items.json`; None when there is no such
    file (item metadata is optional). Versions written before `year` existed get the year their
    titles end with.

    Raises:
        ArtifactError: not JSON, or not a list of exactly `n_items` entries.
    """
    if not path.is_file():
        return None
    rows = read_json(path)
    if not isinstance(rows, list) or len(rows) != n_items:
        raise ArtifactError(f"{path}: expected a list of {n_items} items")
    titles = [r.get("title") for r in rows]
    years = [
        r["year"] if isinstance(r.get("year"), int) else title_year(t)
        for r, t in zip(rows, titles, strict=True)
    ]
    genres = [list(r.get("genres") or []) for r in rows]
    del rows  # the parsed objects go before the arrays are built from the lists
    return ItemMetadata(Titles(titles), Genres(genres), Years(years))
