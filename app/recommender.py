"""The maths on a loaded bundle: top-N by matrix products and argpartition, and id checks."""

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


BLOCK_USERS = 256  # users scored per matrix-matrix product: bounds the (users, items) block


def recommend_many(
    bundle: Bundle, user_ids: list[str], n: int, exclude_seen: bool = True, by_rating: bool = False
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`recommend` for many users at once: per block of users one matrix-matrix product, seen
    items masked with one fancy-index assignment, a row-wise `argpartition` and a row-wise sort of
    the `n` winners. Same answers as `recommend` per user (up to float rounding of near-ties).

    Raises:
        UnknownIds: any user is not in the served model (nothing is computed then).
    """
    unknown = _unknown(user_ids, bundle.user_index)
    if unknown:
        raise UnknownIds(unknown, [])
    rows = np.fromiter((bundle.user_index[u] for u in user_ids), np.int64, len(user_ids))
    vectors = bundle.rating_vectors if by_rating else bundle.vectors
    k = min(n, bundle.n_items)
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for start in range(0, len(rows), BLOCK_USERS):
        block = rows[start : start + BLOCK_USERS]
        scores = vectors.user_factors[block] @ vectors.item_factors.T
        if vectors.item_bias is not None:
            scores += vectors.item_bias
        counts = np.zeros(len(block), np.int64)
        if exclude_seen:
            starts, ends = bundle.seen_indptr[block], bundle.seen_indptr[block + 1]
            counts = ends - starts
            offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            seen = bundle.seen_indices[np.repeat(starts, counts) + offsets]
            scores[np.repeat(np.arange(len(block)), counts), seen] = -np.inf
        cut = bundle.n_items - k
        winners = np.argpartition(scores, cut, axis=1)[:, cut:]
        top = np.take_along_axis(scores, winners, axis=1)
        order = np.lexsort((winners, -top), axis=1)
        winners = np.take_along_axis(winners, order, axis=1)
        top = np.take_along_axis(top, order, axis=1)
        if vectors.user_offset is not None:
            top = top + vectors.user_offset[block][:, None]
        available = np.minimum(bundle.n_items - counts, k)
        out.extend((winners[i, : available[i]], top[i, : available[i]]) for i in range(len(block)))
    return out


def check_known(bundle: Bundle, user_ids: list[str], item_ids: list[str]) -> None:
    """Raises UnknownIds naming every id the served model does not know."""
    unknown_users = _unknown(user_ids, bundle.user_index)
    unknown_items = _unknown(item_ids, bundle.item_index)
    if unknown_users or unknown_items:
        raise UnknownIds(unknown_users, unknown_items)


def _unknown(ids: list[str], index: dict[str, int]) -> list[str]:
    return list(dict.fromkeys(i for i in ids if i not in index))
