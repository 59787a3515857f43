"""The catalogue as people see it: a film's title, genres, year and number of raters, from the
served version's metadata, what PUT /items registered since, and the live counts."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.events.view import VersionView


def describe(view: VersionView, item_id: str) -> dict[str, Any] | None:
    """One item's card, or None when neither the version nor PUT /items knows it."""
    loaded, new = view.loaded, view.new_items
    row = view.item_row(item_id, new)
    registered = view.log.items.get(item_id)
    if row is None and registered is None:
        return None
    title, genres, year = None, [], None
    if row is not None and row < loaded.n_items:
        title = loaded.titles[row] if loaded.titles else None
        genres = list(loaded.genres[row]) if loaded.genres else []
        year = loaded.years[row] if loaded.years else None
    if registered is not None:
        title = registered.title or title
        genres = list(registered.genres) or genres
        year = registered.year if registered.year is not None else year
    return {
        "item_id": item_id,
        "title": title,
        "genres": genres,
        "year": year,
        "raters": _raters(view, item_id, row),
        "in_model": item_id in loaded.item_index,
    }


def search(view: VersionView, text: str, n: int) -> list[dict[str, Any]]:
    """Up to `n` items whose title contains `text` (case-insensitive), most raters first, equal
    counts by title."""
    loaded, wanted = view.loaded, text.casefold()
    rows = loaded.titles.containing(text) if loaded.titles is not None else np.empty(0, np.int64)
    ids = {loaded.item_ids[row] for row in rows}
    for item, registered in list(view.log.items.items()):
        if registered.title and wanted in registered.title.casefold():
            ids.add(item)
    cards = [card for item in ids if (card := describe(view, item)) is not None]
    cards.sort(key=lambda c: (-c["raters"], c["title"] or "", c["item_id"]))
    return cards[:n]


def _raters(view: VersionView, item_id: str, row: int | None) -> int:
    if row is not None and row < view.loaded.n_items:
        return int(view.popularity[row])
    return len(view.raters.get(item_id, {}))
