"""The frames every loader returns, and the checks every ratings file goes through.

Ratings come back as a DataFrame with string columns `user_id`, `item_id`, a float32 `rating`
and, where the source has one, an int64 `timestamp`. Ids stay exactly as the file spells them
(as strings), so `196` in u.data and `"196"` in a request are the same user. Items come back as
`item_id`, `title` and `genres` (a list of strings), or `None` when the source has no metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from training.data.datasets import Scale

log = logging.getLogger("training.data")

RATING_COLUMNS = ["user_id", "item_id", "rating"]


@dataclass(frozen=True)
class RatingsData:
    """Explicit ratings plus optional item metadata, ids as strings."""

    ratings: pd.DataFrame
    items: pd.DataFrame | None = None
    source: str = ""
    store: Any = None  # training.data.events.StoreInput when the event store was read too
    # What the service showed (user_id, item_id, position, ts, version): exposure, never
    # ratings; no model reads it yet. None without an event store.
    exposures: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        missing = [c for c in RATING_COLUMNS if c not in self.ratings.columns]
        if missing:
            raise ValueError(f"ratings from {self.source or 'input'} lack columns {missing}")


def clean_ratings(
    frame: pd.DataFrame, source: str, header: bool = True, scale: Scale | None = None
) -> pd.DataFrame:
    """Normalise dtypes: string ids, float32 ratings, int64 timestamps; refuse NaN ratings, and
    ratings outside `scale` (low, high) when it is known."""
    users, user_codes, blank_users = _ids(frame["user_id"])
    items, item_codes, blank_items = _ids(frame["item_id"])
    out = pd.DataFrame(
        {
            "user_id": users,
            "item_id": items,
            "rating": pd.to_numeric(frame["rating"], errors="coerce").to_numpy(np.float32),
        }
    )  # positions from here on: line numbers, and the rows dropped below
    if "timestamp" in frame.columns:
        stamps = pd.to_numeric(frame["timestamp"], errors="coerce")
        out["timestamp"] = stamps.fillna(0).to_numpy(np.int64)
    if out.empty:
        raise ValueError(f"{source}: no ratings")
    problems = [
        ("ratings are not numbers", out["rating"].isna()),
        ("ratings are infinite or negative", ~np.isfinite(out["rating"]) | (out["rating"] < 0)),
        ("rows have a blank user or item id", blank_users | blank_items),
        (
            "rows have a user or item id that is missing",
            frame["user_id"].isna().to_numpy() | frame["item_id"].isna().to_numpy(),
        ),
    ]
    if scale is not None:
        low, high = scale
        outside = (out["rating"] < low) | (out["rating"] > high)
        problems.insert(2, (f"ratings are outside the scale {low:g}-{high:g}", outside))
    for problem, bad in problems:
        rows = np.flatnonzero(np.asarray(bad))
        if len(rows):
            raise ValueError(f"{source}: {len(rows):,} {problem} ({_where(rows, header)})")
    # The same (user, item) twice: keep the latest rating (by timestamp, else the later row).
    # Pairs are compared as integer codes: on string pairs this took ~10 s of 20M rows' load.
    pairs = user_codes.astype(np.int64) * (int(item_codes.max()) + 2) + item_codes
    if _in_order(frame) or not pd.Series(pairs).duplicated().any():  # the usual file
        return out
    order = (
        np.argsort(out["timestamp"].to_numpy(), kind="stable")
        if "timestamp" in out.columns
        else np.arange(len(out))
    )
    duplicated = pd.Series(pairs[order]).duplicated(keep="last").to_numpy()
    rows = np.sort(order[duplicated])
    log.warning(
        "%s: %s repeated (user, item) ratings dropped, the latest of each kept (%s)",
        source,
        f"{len(rows):,}",
        _where(rows, header),
    )
    return out.drop(index=rows).reset_index(drop=True)


def _in_order(frame: pd.DataFrame) -> bool:
    """Whether integer ids run strictly ascending by (user, item), as in MovieLens' csv files:
    then no pair repeats, and the hash of 20M pairs (~3.7 s) is not needed."""
    users, items = frame["user_id"], frame["item_id"]
    if not (pd.api.types.is_integer_dtype(users) and pd.api.types.is_integer_dtype(items)):
        return False
    user_step = np.diff(users.to_numpy())
    return bool(((user_step > 0) | ((user_step == 0) & (np.diff(items.to_numpy()) > 0))).all())


def _ids(column: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The column as stripped strings, an integer code per row (equal codes, equal ids; -1 for
    a missing one) and which rows are blank. Each distinct spelling is converted and stripped
    once, not each row: 20M rows hold ~150k distinct ids."""
    codes, spellings = pd.factorize(column)
    if pd.api.types.is_integer_dtype(column):  # read as integers: each id spelled once here
        spelled = np.array([str(v) for v in spellings], dtype=object)
        return spelled[codes], codes, np.zeros(len(column), dtype=bool)
    as_text = pd.Index(spellings.astype(str), dtype=object)
    stripped = as_text.str.strip()
    blank_spelling = np.append(np.asarray(stripped == ""), False)  # index -1: a missing id
    if (
        codes.min(initial=0) >= 0
        and as_text.equals(pd.Index(spellings, dtype=object))
        and (stripped.equals(as_text))
    ):  # the usual file: every id a string already as it should read; no copy of 20M rows
        return column.to_numpy(dtype=object), codes, blank_spelling[codes]
    merged, distinct = pd.factorize(stripped)  # " 7" and "7" are one id
    row_codes = np.where(codes >= 0, merged[np.maximum(codes, 0)], -1)
    # A missing id reads "nan", as `astype(str)` spells it (refused below by the caller).
    values = np.append(np.asarray(distinct, dtype=object), "nan")[row_codes]
    return values, row_codes, blank_spelling[codes]


def _where(rows: np.ndarray, header: bool, shown: int = 5) -> str:
    """Row positions as the file's line numbers (1-based, after a header line if it has one)."""
    lines = ", ".join(str(int(r) + 1 + header) for r in rows[:shown])
    more = f" and {len(rows) - shown:,} more" if len(rows) > shown else ""
    return f"line{'s' if len(rows) > 1 else ''} {lines}{more}"


def items_frame(
    item_ids: Iterable[str],
    titles: Iterable[str],
    genres: Iterable[list[str]],
    years: Iterable[int | None] | None = None,
) -> pd.DataFrame:
    """The items frame: stripped string ids, titles, genre lists and, where the source states it
    apart from the title, a nullable integer `year`."""
    frame = pd.DataFrame(
        {"item_id": pd.Series(item_ids).astype(str).str.strip(), "title": titles, "genres": genres}
    )
    if years is not None:
        frame["year"] = pd.array(list(years), dtype="Int64")
    return frame
