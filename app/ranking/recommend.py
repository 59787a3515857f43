"""Top-N on a loaded version: one user, or many at once, through the shared kernel
(`artifact.topn`), and the id checks that turn unknown ids into 404s."""

from __future__ import annotations

import numpy as np

from app.errors import UnknownIds, UnknownUser
from app.serving.loader import LoadedVersion, RankingVectors
from artifact.topn import Ranked, score, top_n, top_n_block

BLOCK_USERS = 256  # users scored per matrix-matrix product: bounds the (users, items) block


def recommend(
    loaded: LoadedVersion,
    user_id: str,
    n: int,
    exclude_seen: bool = True,
    by_rating: bool = False,
) -> Ranked:
    """The `n` best item rows for `user_id` and their scores, best first.

    One matvec over the catalogue and the kernel's partial sort. Fewer than `n` come back when
    the user has rated nearly everything. `by_rating` ranks with the rating model's factors
    instead of the version's default vectors (the retrieval vectors, when it has them); their
    score is then the predicted rating before clipping.

    Raises:
        UnknownUser: `user_id` is not in the served model.
    """
    row = loaded.user_index.get(user_id)
    if row is None:
        raise UnknownUser(user_id)
    vectors = _vectors(loaded, by_rating)
    scores = score(vectors.user_factors[row], vectors.item_factors, vectors.item_bias)
    rows, top = top_n(scores, n, loaded.seen.of(row) if exclude_seen else None)
    if vectors.user_offset is not None:
        top = top + vectors.user_offset[row]
    return rows, top


def recommend_many(
    loaded: LoadedVersion,
    user_ids: list[str],
    n: int,
    exclude_seen: bool = True,
    by_rating: bool = False,
) -> list[Ranked]:
    """`recommend` for many users at once, one matrix-matrix product per block of users. Same
    answers as `recommend` per user (up to float rounding of near-ties).

    Raises:
        UnknownIds: any user is not in the served model (nothing is computed then).
    """
    unknown = _unknown(user_ids, loaded.user_index)
    if unknown:
        raise UnknownIds(unknown, [])
    rows = np.fromiter((loaded.user_index[u] for u in user_ids), np.int64, len(user_ids))
    vectors = _vectors(loaded, by_rating)
    out: list[Ranked] = []
    for start in range(0, len(rows), BLOCK_USERS):
        block = rows[start : start + BLOCK_USERS]
        scores = score(vectors.user_factors[block], vectors.item_factors, vectors.item_bias)
        exclude = loaded.seen.of_rows(block) if exclude_seen else None
        ranked = top_n_block(scores, n, exclude)
        if vectors.user_offset is not None:
            offsets = vectors.user_offset[block].tolist()
            ranked = [(r, s + offset) for (r, s), offset in zip(ranked, offsets, strict=True)]
        out.extend(ranked)
    return out


def check_known(loaded: LoadedVersion, user_ids: list[str], item_ids: list[str]) -> None:
    """Raises UnknownIds naming every id the served model does not know."""
    unknown_users = _unknown(user_ids, loaded.user_index)
    unknown_items = _unknown(item_ids, loaded.item_index)
    if unknown_users or unknown_items:
        raise UnknownIds(unknown_users, unknown_items)


def _vectors(loaded: LoadedVersion, by_rating: bool) -> RankingVectors:
    return loaded.rating_vectors if by_rating else loaded.vectors


def _unknown(ids: list[str], index: dict[str, int]) -> list[str]:
    return list(dict.fromkeys(i for i in ids if i not in index))
