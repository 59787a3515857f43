"""Top-N on the served version and the live state: one user, or many at once, through the shared
kernel (`artifact.topn`); and the id checks that turn unknown ids into 404s.

A user the version knows is ranked with their vectors, blended with their rating row times the
version's item-item weights where it has them (`app.ranking.blend`), never shown an item they
rated, in training or since (live events). A user with live ratings is ranked with the vectors
folded in from them (`app.ranking.foldin`, solved when the ratings arrived; blended too if the
version trained on them): `source="fold_in"`. A user with neither (new, or forgotten since the
version was trained) gets the most-rated items, training counts plus live ratings, minus what
they rated: `source="popular"`, or a 404 when the caller asks for no fallback.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.errors import UnknownIds, UnknownUser
from app.events.live import LiveState, NewItems
from app.ranking.approximate import approximate
from app.ranking.blend import Blend, blended
from app.ranking.diversity import candidates, mmr, unit_rows
from app.ranking.filters import ItemFilter
from app.ranking.foldin import Folded
from app.serving.loader import LoadedVersion, RankingVectors
from artifact.topn import score, top_n, top_n_block

BLOCK_USERS = 256  # users scored per matrix-matrix product: bounds the (users, items) block


@dataclass(frozen=True)
class Recommendation:
    rows: np.ndarray  # item rows, best first
    scores: np.ndarray
    source: str  # "model", "fold_in" or "popular" (see app.schemas.Source)
    # The folded-in new items the rows may point past the catalogue into (row n_items + j).
    new_items: NewItems | None = None
    scored: UserScores | None = None  # how the user's scores were made (for explanations)

    def item_ids(self, loaded: LoadedVersion) -> list[str]:
        ids, n, new = loaded.item_ids, loaded.n_items, self.new_items
        return [ids[r] if r < n or new is None else new.ids[r - n] for r in self.rows.tolist()]


@dataclass(frozen=True)
class UserScores:
    """One user's scores over every row a ranking may return: the catalogue's, then the
    folded-in new items' (`new`)."""

    scores: np.ndarray  # fresh: the kernel may write into it
    offset: float  # added to every score shown (a rating model's global mean + user bias)
    source: str
    rated: np.ndarray | None  # the rows they rated (None: not asked to leave them out)
    new: NewItems | None
    # What the scores came from (for explanations): the user's vector, which item vectors
    # (the rating model's when by_rating), and the weight of log-popularity added to them.
    query: np.ndarray | None = None
    by_rating: bool = False
    popularity: float = 0.0
    blend: Blend | None = None  # the item-item blend, where the version has one


def user_scores(
    loaded: LoadedVersion,
    live: LiveState,
    user_id: str,
    exclude_seen: bool = True,
    by_rating: bool = False,
    fallback: bool = True,
) -> UserScores:
    """Every item's score for `user_id`: one matvec over the catalogue (and the new items).

    Raises:
        UnknownUser: the version does not know `user_id` and `fallback` is off.
    """
    row = live.base_row(user_id)
    folded = live.folded_of(user_id)
    new = live.new_items
    if folded is not None:
        return _folded(loaded, live, user_id, row, folded, exclude_seen, by_rating, new)
    if row is None:
        if not fallback:
            raise UnknownUser(user_id)
        rated = live.rated_rows(user_id, new) if exclude_seen else None
        return UserScores(popularity(live, new), 0.0, "popular", rated, new)
    vectors = _vectors(loaded, by_rating)
    scores = score(vectors.user_factors[row], vectors.item_factors, vectors.item_bias)
    scores = _with_new_items(scores, vectors.user_factors[row], new, by_rating)
    rated = exclusions(loaded, live, user_id, row, new) if exclude_seen else None
    offset = 0.0 if vectors.user_offset is None else float(vectors.user_offset[row])
    query = vectors.user_factors[row]
    mixed = None
    if not by_rating and loaded.item_item is not None:
        scores, mixed = blended(loaded, live, user_id, scores)
    return UserScores(scores, offset, "model", rated, new, query, by_rating, 0.0, mixed)


def recommend(
    loaded: LoadedVersion,
    live: LiveState,
    user_id: str,
    n: int,
    exclude_seen: bool = True,
    by_rating: bool = False,
    fallback: bool = True,
    where: ItemFilter | None = None,
    diversity: float = 0.0,
) -> Recommendation:
    """The `n` best item rows for `user_id` and their scores, best first.

    One matvec over the catalogue and the kernel's partial sort, inside which `where` (a
    filter) masks what may not be returned. Fewer than `n` come back when fewer pass (or the
    user has rated nearly everything). `diversity` (0..1) re-ranks the best candidates by
    maximal marginal relevance (`app.ranking.diversity`); the scores stay the items' own.
    `by_rating` ranks with the rating model's factors instead of the version's default ranking
    (the retrieval vectors and the item-item blend, when it has them); the score is then the
    predicted rating before clipping. A user without history gets the most-rated items.

    Raises:
        UnknownUser: the version does not know `user_id` and `fallback` is off.
    """
    wide = n if diversity <= 0 else candidates(n)
    ranked = None
    if loaded.ann is not None and not by_rating:  # a large catalogue: its index first
        ranked = approximate(loaded, live, user_id, wide, exclude_seen, where)
    if ranked is None:
        mine = user_scores(loaded, live, user_id, exclude_seen, by_rating, fallback)
        ranked = _ranked(mine, wide, allowed_by(loaded, live, where, mine.new))
    return ranked if diversity <= 0 else _diversified(loaded, ranked, n, diversity)


def recommend_many(
    loaded: LoadedVersion,
    live: LiveState,
    user_ids: list[str],
    n: int,
    exclude_seen: bool = True,
    by_rating: bool = False,
    fallback: bool = True,
    where: ItemFilter | None = None,
    diversity: float = 0.0,
) -> list[Recommendation]:
    """`recommend` for many users at once, one matrix-matrix product per block of known users.
    Same answers as `recommend` per user (up to float rounding of near-ties).

    Raises:
        UnknownIds: with `fallback` off, any user the version does not know (nothing is
            computed then).
    """
    rows = [live.base_row(u) for u in user_ids]
    folded = [live.folded_of(u) for u in user_ids]
    unknown = list(
        dict.fromkeys(
            u for u, r, f in zip(user_ids, rows, folded, strict=True) if r is None and f is None
        )
    )
    if unknown and not fallback:
        raise UnknownIds(unknown, [])
    out: dict[int, Recommendation] = {}
    wanted, n = n, n if diversity <= 0 else candidates(n)
    vectors, new = _vectors(loaded, by_rating), live.new_items
    allowed = allowed_by(loaded, live, where, new)
    for i, f in enumerate(folded):
        if f is not None:
            mine = _folded(loaded, live, user_ids[i], rows[i], f, exclude_seen, by_rating, new)
            out[i] = _ranked(mine, n, allowed)
    known = [(i, r) for i, r in enumerate(rows) if r is not None and i not in out]
    for start in range(0, len(known), BLOCK_USERS):
        block = known[start : start + BLOCK_USERS]
        block_rows = np.fromiter((r for _, r in block), np.int64, len(block))
        queries = vectors.user_factors[block_rows]
        scores = score(queries, vectors.item_factors, vectors.item_bias)
        scores = _with_new_items(scores, queries, new, by_rating)
        if not by_rating and loaded.item_item is not None:
            for k, (i, _) in enumerate(block):
                scores[k] = blended(loaded, live, user_ids[i], scores[k])[0]
        exclude = (
            [exclusions(loaded, live, user_ids[i], r, new) for i, r in block]
            if exclude_seen
            else None
        )
        ranked = top_n_block(scores, n, exclude, allowed)
        offsets = vectors.user_offset
        for (i, r), (item_rows, top) in zip(block, ranked, strict=True):
            if offsets is not None:
                top = top + offsets[r]
            out[i] = Recommendation(item_rows, top, "model", new)
    for i, user in enumerate(user_ids):
        if i not in out:
            rated = live.rated_rows(user, new) if exclude_seen else None
            out[i] = _ranked(
                UserScores(popularity(live, new), 0.0, "popular", rated, new), n, allowed
            )
    if diversity > 0:
        return [_diversified(loaded, out[i], wanted, diversity) for i in range(len(user_ids))]
    return [out[i] for i in range(len(user_ids))]


def check_known(
    loaded: LoadedVersion, live: LiveState, user_ids: list[str], item_ids: list[str]
) -> None:
    """Raises UnknownIds naming every id the served model cannot predict for: users neither
    trained nor folded in, items neither in its catalogue nor folded in."""
    unknown_users = list(
        dict.fromkeys(u for u in user_ids if live.base_row(u) is None and live.folded_of(u) is None)
    )
    new = live.new_items
    unknown_items = list(
        dict.fromkeys(
            i
            for i in item_ids
            if i not in loaded.item_index and (new is None or i not in new.index)
        )
    )
    if unknown_users or unknown_items:
        raise UnknownIds(unknown_users, unknown_items)


def _folded(
    loaded: LoadedVersion,
    live: LiveState,
    user_id: str,
    row: int | None,
    folded: Folded,
    exclude_seen: bool,
    by_rating: bool,
    new: NewItems | None,
) -> UserScores:
    """Scores from the user's folded-in vectors: the default ranking vector plus the popularity
    blend (new users), or with `by_rating` the rating factors, scored as a rating."""
    rated = exclusions(loaded, live, user_id, row, new) if exclude_seen else None
    if by_rating and folded.rating is not None:
        vectors = loaded.rating_vectors
        p, bias = folded.rating
        scores = _with_new_items(score(p, vectors.item_factors, vectors.item_bias), p, new, True)
        offset = loaded.manifest.global_mean + bias
        return UserScores(scores, offset, "fold_in", rated, new, p, True)
    vectors = loaded.vectors
    scores = score(folded.vector, vectors.item_factors, vectors.item_bias)
    if folded.popularity:
        scores += folded.popularity * live.log_popularity
    if new is not None:
        extra = new.vectors @ folded.vector + new.bias
        if folded.popularity:
            extra += folded.popularity * new.log_popularity
        scores = np.concatenate([scores, extra.astype(scores.dtype)])
    offset = 0.0
    if vectors.user_offset is not None and folded.rating is not None:
        offset = loaded.manifest.global_mean + folded.rating[1]  # a rating model's score
    mixed = None
    if loaded.item_item is not None and row is not None:
        # Only for users the version trained on: for new users (a handful of ratings) the
        # blend fell below popularity (bench/coldstart.py: NDCG@10 0.270 at k = 1 against
        # 0.352 without it), so they keep the vectors and the popularity blend chosen for them.
        scores, mixed = blended(loaded, live, user_id, scores)
    return UserScores(
        scores, offset, "fold_in", rated, new, folded.vector, False, folded.popularity, mixed
    )


def _ranked(mine: UserScores, n: int, allowed: np.ndarray | None) -> Recommendation:
    rows, top = top_n(mine.scores, n, mine.rated, allowed)
    top = top + mine.offset if mine.offset else top
    return Recommendation(rows, top, mine.source, mine.new, mine)


def _diversified(
    loaded: LoadedVersion, wide: Recommendation, n: int, diversity: float
) -> Recommendation:
    unit = unit_rows(loaded, wide.new_items, wide.rows)
    rows, top = mmr(wide.rows, wide.scores, unit, n, diversity)
    return Recommendation(rows, top, wide.source, wide.new_items, wide.scored)


def popularity(live: LiveState, new: NewItems | None) -> np.ndarray:
    """Raters per row (training counts plus live ratings), new items' after the catalogue's;
    a fresh array."""
    if new is None:
        return live.popularity.copy()
    return np.concatenate([live.popularity, np.expm1(new.log_popularity)])


def allowed_by(
    loaded: LoadedVersion, live: LiveState, where: ItemFilter | None, new: NewItems | None
) -> np.ndarray | None:
    if not where or live.attributes is None:
        return None
    return where.allowed(live.attributes, loaded.item_index, new, live.items)


def _with_new_items(
    scores: np.ndarray, queries: np.ndarray, new: NewItems | None, by_rating: bool
) -> np.ndarray:
    """`scores` (one query's, or a block's) with the folded-in new items' scores after the
    catalogue's, in their rows. By rating without rating factors for them, they score -inf."""
    if new is None:
        return scores
    if not by_rating:
        extra = queries @ new.vectors.T + new.bias
    elif new.rating_factors is not None and new.rating_bias is not None:
        extra = queries @ new.rating_factors.T + new.rating_bias
    else:
        extra = np.full((*queries.shape[:-1], len(new.ids)), -np.inf, scores.dtype)
    return np.concatenate([scores, extra.astype(scores.dtype)], axis=-1)


def exclusions(
    loaded: LoadedVersion,
    live: LiveState,
    user_id: str,
    row: int | None,
    new: NewItems | None = None,
) -> np.ndarray:
    """What the user rated: in the data the version learned from, and since."""
    if row is None:
        return live.rated_rows(user_id, new)
    seen = loaded.seen.of(row)
    if user_id not in live.ratings:
        return seen
    return np.concatenate([seen, live.rated_rows(user_id, new)])


def _vectors(loaded: LoadedVersion, by_rating: bool) -> RankingVectors:
    return loaded.rating_vectors if by_rating else loaded.vectors
