"""The most-rated items, for a home page: every rater the service knows of (the version's
training ratings, plus live ones, minus forgotten users), or only the ratings of a recent window.

A window ends at the newest rating the service knows of, training's or live: for a service
taking events that is about now, and for a historical dataset (ml-100k ends in 1998) it is the
data's own "now", so "the last 30 days" means something for both. Counting a window reads the
training ratings' timestamps once per version and window start (cached), plus the live ratings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.events.foldin import NewItems
from app.events.view import VersionView
from app.ranking.filters import ItemFilter, allowed_by
from app.ranking.recommend import popularity
from app.ranking.types import Recommendation
from artifact.seen import SeenItems
from artifact.topn import top_n


class NoTimestamps(ValueError):
    """The version was exported without rating times, so no window can be counted."""


@dataclass(frozen=True)
class Window:
    start: int  # unix seconds, inclusive
    end: int


def popular(
    view: VersionView, n: int, where: ItemFilter | None = None, window: int | None = None
) -> tuple[Recommendation, Window | None]:
    """The `n` most-rated items that `where` lets through (scores: raters), and with `window`
    (seconds) only ratings from that long before the newest one.

    Raises:
        NoTimestamps: a window on a version without rating times.
    """
    loaded, new = view.loaded, view.new_items
    span = None
    if window is None:
        counts = popularity(view, new)
    else:
        seen = loaded.seen
        if seen.timestamps is None:
            raise NoTimestamps(f"version {loaded.version} has no rating times to count a window")
        live = _live_ratings(view)
        times = (r[1] for mine in live.values() for r in mine.values())
        newest = max(_newest(seen), max(times, default=0))
        span = Window(newest - window, newest)
        counts = _window_counts(view, live, span.start, new)
    rows, top = top_n(counts, n, None, allowed_by(view, where, new))
    return Recommendation(rows, top, "popular", new), span


# Per version, what one pass over its training ratings' times gives: their newest time, and the
# raters per item from a window's start. Keyed by the id of the version's seen items plus what
# was computed; the seen items are kept so an id reused after a version is dropped never matches.
_PER_VERSION: dict[tuple[int, int | str], tuple[SeenItems, Any]] = {}
CACHED_WINDOWS = 16


def _cached(seen: SeenItems, what: int | str, compute: Callable[[], Any]) -> Any:
    key = (id(seen), what)
    hit = _PER_VERSION.get(key)
    if hit is not None and hit[0] is seen:
        return hit[1]
    value = compute()
    while len(_PER_VERSION) >= CACHED_WINDOWS:
        del _PER_VERSION[next(iter(_PER_VERSION))]
    _PER_VERSION[key] = (seen, value)
    return value


def _newest(seen: SeenItems) -> int:
    """The version's newest training rating time (computed once per version: a pass over
    every rating's time, 20M at ml-20m)."""
    assert seen.timestamps is not None
    times = seen.timestamps
    newest: int = _cached(seen, "newest", lambda: int(times.max()) if len(times) else 0)
    return newest


def _trained_counts(seen: SeenItems, n_items: int, start: int) -> np.ndarray:
    """Raters per item among the version's training ratings at or after `start` (read-only)."""
    assert seen.timestamps is not None
    times = seen.timestamps

    def count() -> np.ndarray:
        out = np.bincount(seen.indices[times >= start], minlength=n_items).astype(np.float32)
        out.flags.writeable = False
        return out

    counts: np.ndarray = _cached(seen, start, count)
    return counts


def _live_ratings(view: VersionView) -> dict[str, dict[str, tuple[float, int, int]]]:
    """Every user's ratings the version did not learn."""
    return {user: mine for user in list(view.log.ratings) if (mine := view.live_ratings(user))}


def _window_counts(
    view: VersionView,
    live: dict[str, dict[str, tuple[float, int, int]]],
    start: int,
    new: NewItems | None,
) -> np.ndarray:
    """Raters per row in the window: training ratings (less forgotten users'), then live ones,
    each (user, item) pair counted once at its latest time."""
    loaded = view.loaded
    seen = loaded.seen
    assert seen.timestamps is not None
    counts = np.concatenate(
        [
            _trained_counts(seen, loaded.n_items, start),
            np.zeros(0 if new is None else len(new.ids), np.float32),
        ]
    )
    for user, at in list(view.log.forgotten.items()):
        row = loaded.user_index.get(user)
        if row is not None and at > view.learned:
            lo, hi = seen.indptr[row], seen.indptr[row + 1]
            counts[seen.indices[lo:hi][seen.timestamps[lo:hi] >= start]] -= 1
    for user, mine in live.items():
        base = view.base_row(user)
        for item, (_, ts, _) in mine.items():
            if ts < start:
                continue
            col = view.item_row(item, new)
            if col is None or col >= len(counts):
                continue
            if base is not None and _rated_in_window(seen, base, col, start):
                continue  # their training rating of it is counted already
            counts[col] += 1
    return counts


def _rated_in_window(seen: SeenItems, row: int, col: int, start: int) -> bool:
    assert seen.timestamps is not None
    lo, hi = int(seen.indptr[row]), int(seen.indptr[row + 1])
    at = lo + int(np.searchsorted(seen.indices[lo:hi], col))
    return at < hi and int(seen.indices[at]) == col and int(seen.timestamps[at]) >= start
