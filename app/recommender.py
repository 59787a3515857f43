"""The maths on a loaded bundle: top-N by one matrix-vector product, and rating prediction."""

from __future__ import annotations

import numpy as np

from app.errors import UnknownIds, UnknownUser
from app.registry import Bundle


def recommend(
    bundle: Bundle, user_id: str, n: int, exclude_seen: bool = True, by_rating: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The `n` best item rows for `user_id` and their scores, best first.

    One matvec over the catalogue, seen items masked in place, `argpartition` to find the `n`
    winners in linear time, then a sort of only those `n`. Fewer than `n` come back when the user
    has rated nearly everything. `by_rating` ranks with the rating model's factors instead of the
    version's default vectors (the retrieval vectors, when the version has them).

    Raises:
        UnknownUser: `user_id` is not in the served model.
    """
    row = bundle.user_index.get(user_id)
    if row is None:
        raise UnknownUser(user_id)
    vectors = bundle.rating_vectors if by_rating else bundle.vectors
    scores = vectors.item_factors @ vectors.user_factors[row]  # a fresh array: safe to edit
    if vectors.item_bias is not None:
        scores += vectors.item_bias
    if exclude_seen:
        scores[bundle.seen_indices[bundle.seen_indptr[row] : bundle.seen_indptr[row + 1]]] = -np.inf
        available = bundle.n_items - int(bundle.seen_indptr[row + 1] - bundle.seen_indptr[row])
    else:
        available = bundle.n_items
    n = min(n, available)
    if n <= 0:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    winners = np.argpartition(scores, len(scores) - n)[len(scores) - n :]
    # Best first; equal scores in row order, so the answer does not depend on argpartition.
    winners = winners[np.lexsort((winners, -scores[winners]))]
    top_scores = scores[winners]
    if vectors.user_offset is not None:
        top_scores = top_scores + vectors.user_offset[row]
    return winners, top_scores


def predict(bundle: Bundle, user_ids: list[str], item_ids: list[str]) -> np.ndarray:
    """Predicted ratings for the pairs, computed by the exported SavedModel.

    Raises:
        UnknownIds: any id is not in the served model (nothing is predicted then).
    """
    unknown_users = _unknown(user_ids, bundle.user_index)
    unknown_items = _unknown(item_ids, bundle.item_index)
    if unknown_users or unknown_items:
        raise UnknownIds(unknown_users, unknown_items)
    return bundle.predict_ratings(user_ids, item_ids)


def _unknown(ids: list[str], index: dict[str, int]) -> list[str]:
    return list(dict.fromkeys(i for i in ids if i not in index))
