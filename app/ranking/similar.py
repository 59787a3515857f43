"""Items like an item ("more like this"): cosine between the version's default ranking vectors,
through the shared top-N kernel. Folded-in new items (`app.events.live.NewItems`) are both
queries and candidates, after the catalogue's rows."""

from __future__ import annotations

import numpy as np

from app.errors import UnknownIds
from app.events.live import LiveState
from app.ranking.filters import ItemFilter
from app.ranking.recommend import Recommendation
from app.serving.loader import LoadedVersion
from artifact.topn import top_n


def similar(
    loaded: LoadedVersion,
    live: LiveState,
    item_id: str,
    n: int,
    where: ItemFilter | None = None,
) -> Recommendation:
    """The `n` items whose vectors point most nearly the way `item_id`'s does, best first, never
    the item itself, only those `where` lets through; scores are cosines.

    Raises:
        UnknownIds: the item is neither in the catalogue nor folded in.
    """
    new = live.new_items
    row = live.item_row(item_id, new)
    if row is None:
        raise UnknownIds([], [item_id])
    unit = loaded.unit_items
    extra = None
    if new is not None:
        norms = np.linalg.norm(new.vectors, axis=1, keepdims=True)
        extra = new.vectors / np.maximum(norms, 1e-12)
    if row < loaded.n_items:
        query = unit[row]
    else:
        assert extra is not None
        query = extra[row - loaded.n_items]
    scores = unit @ query
    if extra is not None:
        scores = np.concatenate([scores, extra @ query])
    allowed = None
    if where and live.attributes is not None:
        allowed = where.allowed(live.attributes, loaded.item_index, new, live.items)
    rows, top = top_n(scores, n, np.array([row]), allowed)
    return Recommendation(rows, top, "model", new)
