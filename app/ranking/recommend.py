"""Top-N for one user as a served version sees them (`app.events.user.UserView`), or for many at
once, through the shared kernel (`artifact.topn`); and the id checks that turn unknown ids into
404s.

A user the version knows is ranked with their vectors, blended with their rating row times the
version's item-item weights where it has them (`app.ranking.blend`), never shown an item they
rated, in training or since (live events). A user with live ratings is ranked with the vectors
folded in from them (`app.events.foldin`, solved when the ratings arrived; blended too if the
version trained on them): `source="fold_in"`. A user with neither (new, or forgotten since the
version was trained) gets the most-rated items, training counts plus live ratings, minus what
they rated: `source="popular"`, or a 404 when the caller asks for no fallback.
"""

from __future__ import annotations

import numpy as np

from app.errors import UnknownIds, UnknownUser
from app.events.foldin import NewItems
from app.events.user import UserView
from app.events.view import VersionView
from app.ranking.approximate import approximate
from app.ranking.blend import blended
from app.ranking.diversity import candidates, mmr, unit_rows
from app.ranking.filters import ItemFilter, allowed_by
from app.ranking.second_stage import ranked_blend
from app.ranking.types import Recommendation, UserScores
from app.serving.loader import LoadedVersion, RankingVectors
from artifact.topn import score, top_n, top_n_block

BLOCK_USERS = 256  # users scored per matrix-matrix product: bounds the (users, items) block


def user_scores(
    user: UserView,
    exclude_seen: bool = True,
    by_rating: bool = False,
    fallback: bool = True,
) -> UserScores:
    """Every item's score for `user`: one matvec over the catalogue (and the new items).

    Raises:
        UnknownUser: the version cannot answer for them personally and `fallback` is off.
    """
    loaded, new, row = user.loaded, user.new, user.row
    if user.folded is not None:
        return _folded(user, exclude_seen, by_rating)
    if row is None:
        if not fallback and not user.known:
            raise UnknownUser(user.user_id)
        rated = user.rated_rows() if exclude_seen else None
        return UserScores(popularity(user.view, new), 0.0, "popular", rated, new)
    vectors = _vectors(loaded, by_rating)
    query = vectors.user_factors[row]
    scores = _with_new_items(
        score(query, vectors.item_factors, vectors.item_bias), query, new, by_rating
    )
    rated = user.exclusions() if exclude_seen else None
    offset = 0.0 if vectors.user_offset is None else float(vectors.user_offset[row])
    mixed = None
    if not by_rating and loaded.item_item is not None:
        scores, mixed = ranked_blend(user, scores, rated)
    return UserScores(scores, offset, "model", rated, new, query, by_rating, 0.0, mixed)


def recommend(
    user: UserView,
    n: int,
    exclude_seen: bool = True,
    by_rating: bool = False,
    fallback: bool = True,
    where: ItemFilter | None = None,
    diversity: float = 0.0,
) -> Recommendation:
    """The `n` best item rows for `user` and their scores, best first.

    One matvec over the catalogue and the kernel's partial sort, inside which `where` (a
    filter) masks what may not be returned. Fewer than `n` come back when fewer pass (or the
    user has rated nearly everything). `diversity` (0..1) re-ranks the best candidates by
    maximal marginal relevance (`app.ranking.diversity`); the scores stay the items' own.
    `by_rating` ranks with the rating model's factors instead of the version's default ranking
    (the retrieval vectors and the item-item blend, when it has them); the score is then the
    predicted rating before clipping. A user without history gets the most-rated items.

    Raises:
        UnknownUser: the version cannot answer for them personally and `fallback` is off.
    """
    wide = n if diversity <= 0 else candidates(n)
    ranked = None
    if user.loaded.ann is not None and not by_rating:  # a large catalogue: its index first
        ranked = approximate(user, wide, exclude_seen, where)
    if ranked is None:
        mine = user_scores(user, exclude_seen, by_rating, fallback)
        ranked = _ranked(mine, wide, allowed_by(user.view, where, mine.new), user.pending)
    return ranked if diversity <= 0 else _diversified(user.loaded, ranked, n, diversity)


def recommend_many(
    view: VersionView,
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
        UnknownIds: with `fallback` off, any user the version cannot answer for personally
            (nothing is computed then).
    """
    users = [view.user(u) for u in user_ids]
    unknown = list(dict.fromkeys(u.user_id for u in users if not u.known))
    if unknown and not fallback:
        raise UnknownIds(unknown, [])
    loaded = view.loaded
    out: dict[int, Recommendation] = {}
    wanted, n = n, n if diversity <= 0 else candidates(n)
    vectors, new = _vectors(loaded, by_rating), view.new_items
    allowed = allowed_by(view, where, new)
    for i, user in enumerate(users):
        if user.folded is not None:
            out[i] = _ranked(_folded(user, exclude_seen, by_rating), n, allowed)
    known = [(i, u) for i, u in enumerate(users) if u.row is not None and i not in out]
    for start in range(0, len(known), BLOCK_USERS):
        block = known[start : start + BLOCK_USERS]
        block_rows = np.fromiter((u.row for _, u in block), np.int64, len(block))
        queries = vectors.user_factors[block_rows]
        scores = score(queries, vectors.item_factors, vectors.item_bias)
        scores = _with_new_items(scores, queries, new, by_rating)
        exclude = [u.exclusions() for _, u in block] if exclude_seen else None
        if not by_rating and loaded.item_item is not None:
            for k, (_, user) in enumerate(block):
                rated = exclude[k] if exclude is not None else None
                scores[k] = ranked_blend(user, scores[k], rated)[0]
        ranked = top_n_block(scores, n, exclude, allowed)
        offsets = vectors.user_offset
        for (i, user), (item_rows, top) in zip(block, ranked, strict=True):
            if offsets is not None:
                top = top + offsets[user.row]
            out[i] = Recommendation(item_rows, top, "model", new, pending=user.pending)
    for i, user in enumerate(users):
        if i not in out:
            rated = user.rated_rows() if exclude_seen else None
            mine = UserScores(popularity(view, new), 0.0, "popular", rated, new)
            out[i] = _ranked(mine, n, allowed, user.pending)
    if diversity > 0:
        return [_diversified(loaded, out[i], wanted, diversity) for i in range(len(users))]
    return [out[i] for i in range(len(users))]


def check_known(view: VersionView, user_ids: list[str], item_ids: list[str]) -> None:
    """Raises UnknownIds naming every id the served model cannot predict for: users it can
    answer for neither from training nor from live ratings, items neither in its catalogue nor
    folded in."""
    unknown_users = [u for u in dict.fromkeys(user_ids) if not view.user(u).known]
    new = view.new_items
    unknown_items = list(dict.fromkeys(i for i in item_ids if view.item_row(i, new) is None))
    if unknown_users or unknown_items:
        raise UnknownIds(unknown_users, unknown_items)


def _folded(user: UserView, exclude_seen: bool, by_rating: bool) -> UserScores:
    """Scores from the user's folded-in vectors: the default ranking vector plus the popularity
    weight and the item-item blend at a new user's own weights, or with `by_rating` the rating
    factors, scored as a rating."""
    loaded, new, folded = user.loaded, user.new, user.folded
    assert folded is not None
    rated = user.exclusions() if exclude_seen else None
    if by_rating and folded.rating is not None:
        vectors = loaded.rating_vectors
        p, bias = folded.rating
        scores = _with_new_items(score(p, vectors.item_factors, vectors.item_bias), p, new, True)
        offset = loaded.manifest.global_mean + bias
        return UserScores(scores, offset, "fold_in", rated, new, p, True)
    vectors = loaded.vectors
    scores = score(folded.vector, vectors.item_factors, vectors.item_bias)
    if folded.popularity:
        scores += folded.popularity * user.view.log_popularity
    if new is not None:
        extra = new.vectors @ folded.vector + new.bias
        if folded.popularity:
            extra += folded.popularity * new.log_popularity
        scores = np.concatenate([scores, extra.astype(scores.dtype)])
    offset = 0.0
    if vectors.user_offset is not None and folded.rating is not None:
        offset = loaded.manifest.global_mean + folded.rating[1]  # a rating model's score
    mixed = None
    if loaded.item_item is not None and user.row is not None:
        scores, mixed = ranked_blend(user, scores, rated)
    elif loaded.item_item is not None and folded.blend:
        # A new user's own weight (`Trust.blend_weight`): the version's ranked them below
        # popularity for their first ratings (bench/coldstart.py).
        scores, mixed = blended(user, scores, folded.blend, folded.shift)
    return UserScores(
        scores, offset, "fold_in", rated, new, folded.vector, False, folded.popularity, mixed
    )


def _ranked(
    mine: UserScores, n: int, allowed: np.ndarray | None, pending: bool = False
) -> Recommendation:
    rows, top = top_n(mine.scores, n, mine.rated, allowed)
    top = top + mine.offset if mine.offset else top
    return Recommendation(rows, top, mine.source, mine.new, mine, pending)


def _diversified(
    loaded: LoadedVersion, wide: Recommendation, n: int, diversity: float
) -> Recommendation:
    unit = unit_rows(loaded, wide.new_items, wide.rows)
    rows, top = mmr(wide.rows, wide.scores, unit, n, diversity)
    return Recommendation(rows, top, wide.source, wide.new_items, wide.scored, wide.pending)


def popularity(view: VersionView, new: NewItems | None) -> np.ndarray:
    """Raters per row (training counts plus live ratings), new items' after the catalogue's;
    a fresh array."""
    if new is None:
        return view.popularity.copy()
    return np.concatenate([view.popularity, np.expm1(new.log_popularity)])


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


def _vectors(loaded: LoadedVersion, by_rating: bool) -> RankingVectors:
    return loaded.rating_vectors if by_rating else loaded.vectors
