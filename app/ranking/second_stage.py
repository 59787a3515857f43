"""The learned second stage (`artifact.ranker`) over the item-item blend, where the version has
one: the user's candidates (the best of the vectors' and of the item-item scores, unrated),
one matrix of their features, the network's score for each, and the candidates ranked by it
above every other row. Users the version trained on are ranked this way, with or without live
ratings; a new user folded in keeps the blend at their own trust weight (`app.events.trust`),
which bench/coldstart.py tuned against popularity.
"""

from __future__ import annotations

import numpy as np

from app.events.user import UserView
from app.ranking.blend import blended
from app.ranking.types import Blend
from artifact.ranker import candidates, reranked


def ranked_blend(
    user: UserView, dot: np.ndarray, exclude: np.ndarray | None
) -> tuple[np.ndarray, Blend]:
    """The blend of `dot` (the vectors' scores, catalogue then new items) with the user's
    item-item scores at the version's weight, reordered by the version's ranker when it has
    one; `exclude` (the rows the user rated, or None) never become candidates. The Blend keeps
    the first stage's scores (`first`) when the ranker reordered them."""
    first, mixed = blended(user, dot)
    loaded = user.loaded
    if loaded.ranker is None:
        return first, mixed
    # A trained user with nothing live, their seen items left out and no item folded in since:
    # the same candidates and scores on every request (kept like their item-item scores).
    row = user.row if exclude is not None and not user.live and user.new is None else None
    found = loaded.trained_ranks.get(row) if row is not None else None
    if found is None:
        rows, ranked = _scored(user, dot, mixed, exclude)
        if row is not None:
            loaded.trained_ranks.put(row, (rows, ranked))
    else:
        rows, ranked = found
    return reranked(first, rows, ranked), mixed.with_first(first)


def _scored(
    user: UserView, dot: np.ndarray, mixed: Blend, exclude: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The user's candidate rows and the ranker's score of each."""
    weights, n = user.loaded.ranker, user.loaded.n_items
    assert weights is not None and mixed.item_item is not None
    rows = candidates(dot, mixed.item_item, exclude, weights.per_source)
    z_vec = (dot[rows] - mixed.dot_mean) / mixed.dot_sd
    inside = rows < n
    z_ii = np.zeros(len(rows), np.float32)
    z_ii[inside] = (mixed.item_item[rows[inside]] - mixed.item_mean) / mixed.item_sd
    features = weights.features(
        rows, z_vec, z_ii, _ratings_at(user, rows), mixed.rated, mixed.ratings
    )
    return rows, weights.score(features)


def _ratings_at(user: UserView, rows: np.ndarray) -> np.ndarray:
    """The rating model's prediction for `rows` (unclipped): the user's trained factors, or
    their folded-in ones once they have live ratings. Items folded in without rating factors
    get the user's offset alone."""
    loaded, folded = user.loaded, user.folded
    vectors = loaded.rating_vectors
    if folded is not None and folded.rating is not None:
        p, bias = folded.rating
        offset = loaded.manifest.global_mean + bias
    else:
        assert user.row is not None
        p = vectors.user_factors[user.row]
        offset = float(vectors.user_offset[user.row]) if vectors.user_offset is not None else 0.0
    n, new = loaded.n_items, user.new
    if len(rows) == 0 or rows[-1] < n:  # rows ascend: all in the catalogue (the usual case)
        out: np.ndarray = vectors.item_factors[rows] @ p
        if vectors.item_bias is not None:
            out += vectors.item_bias[rows]
        out += offset
        return out
    inside = rows < n
    out = np.full(len(rows), offset, np.float32)
    at = rows[inside]
    out[inside] += vectors.item_factors[at] @ p
    if vectors.item_bias is not None:
        out[inside] += vectors.item_bias[at]
    if new is not None and new.rating_factors is not None:
        extra = rows[~inside] - n
        out[~inside] += new.rating_factors[extra] @ p
        if new.rating_bias is not None:
            out[~inside] += new.rating_bias[extra]
    return out
