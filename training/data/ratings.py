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
    out = pd.DataFrame(
        {
            "user_id": frame["user_id"].astype(str).str.strip(),
            "item_id": frame["item_id"].astype(str).str.strip(),
            "rating": pd.to_numeric(frame["rating"], errors="coerce").astype("float32"),
        }
    )
    if "timestamp" in frame.columns:
        stamps = pd.to_numeric(frame["timestamp"], errors="coerce")
        out["timestamp"] = stamps.fillna(0).astype("int64")
    if out.empty:
        raise ValueError(f"{source}: no ratings")
    problems = [
        ("ratings are not numbers", out["rating"].isna()),
        ("ratings are infinite or negative", ~np.isfinite(out["rating"]) | (out["rating"] < 0)),
        ("rows have a blank user or item id", (out["user_id"] == "") | (out["item_id"] == "")),
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
    order = out.sort_values("timestamp", kind="stable") if "timestamp" in out.columns else out
    duplicated = order.duplicated(["user_id", "item_id"], keep="last")
    if duplicated.any():
        rows = np.sort(order.index[duplicated.to_numpy()].to_numpy())
        log.warning(
            "%s: %s repeated (user, item) ratings dropped, the latest of each kept (%s)",
            source,
            f"{len(rows):,}",
            _where(rows, header),
        )
        out = out.drop(index=rows)
    return out.reset_index(drop=True)


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
