"""Why an item is recommended: the score split into parts, up to three of the user's rated items
that contribute most named as `because`.

The served vectors are trained free, not built from the user's ratings, so no split over rated
items is the model's own; this one is an approximation and says so. The user's vector p is
projected onto the vectors of the items they rated (least squares, p ~ sum_j a_j q_j), and a
rated item j's part in the score of item i is a_j (q_j . q_i). The parts add up exactly:

    score_i = sum_j a_j q_j . q_i      (rated items)
            + q_i . (p - sum_j a_j q_j) (unattributed: what the projection misses)
            + b_i [+ w log(1 + raters_i)] (the item's own term: its bias, a new user's
                                           popularity blend)
            + offset                    (a rating model's global mean + user bias)

A user with at least as many rated items as the vectors have dimensions is usually spanned
whole (nothing unattributed), though the split is then one of many that add up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.events.foldin import NewItems
from app.events.user import UserView
from app.ranking.types import Blend, UserScores
from app.serving.loader import LoadedVersion

BECAUSE = 3  # rated items named per recommended item
METHOD = (
    "approximate: the user's vector projected onto the vectors of the items they rated (least "
    "squares); a rated item's part is its weight times its vector's dot product with the "
    "item's. The rated items' parts, what the projection misses (unattributed), the item's own "
    "term and the user's offset add up to the score."
)
BLEND_METHOD = (
    "partly approximate: the score blends the item-item weights' score, whose split over the "
    "user's rated items is exact (rating times weight), with the vectors' score, split by "
    "projecting the user's vector onto their rated items' vectors (least squares). Rated "
    "items' parts (both kinds summed), what the projection misses (unattributed), the item's "
    "own term and the two standardisations' shift (user) add up to the score."
)
POPULAR_METHOD = "the user has no history: items are ranked by their number of raters"
RANKED_METHOD = (
    " A learned second stage then ordered the blend's best candidates: each item's score is "
    "the ranker's, and its parts split first_stage_score, the blend's score that made it a "
    "candidate."
)


@dataclass(frozen=True)
class Reason:
    row: int  # a rated item's row
    rating: float | None  # the user's rating of it (None where the version kept no ratings)
    contribution: float  # its part of the score


@dataclass(frozen=True)
class Explained:
    because: list[Reason]  # the largest parts, largest first (positive ones only)
    rated_items: float  # every rated item's part, summed
    unattributed: float
    item: float
    user: float
    first_stage: float | None = None  # the score the parts add up to, where a ranker reordered


def explain(
    user: UserView,
    mine: UserScores,
    rows: np.ndarray,
    shown: np.ndarray,
) -> list[Explained]:
    """The parts of each of `rows`' scores (`shown`) for this user (`mine`: how they were
    scored)."""
    shown_offset = mine.offset
    if mine.query is None:  # popularity: the item's raters are its whole score
        return [Explained([], 0.0, 0.0, float(s), 0.0) for s in shown.tolist()]
    new = mine.new
    loaded = user.loaded
    rated, ratings = user.rating_row()
    p = np.asarray(mine.query, np.float64)
    targets = _item_vectors(loaded, new, rows, mine.by_rating)
    own = _item_terms(user, new, rows, mine)
    parts = np.zeros((len(rated), len(rows)))  # (rated, rows)
    unattributed = targets @ p
    if len(rated):
        sources = _item_vectors(loaded, new, rated, mine.by_rating)
        gram = sources.T @ sources
        ridge = 1e-9 * max(float(np.trace(gram)) / len(gram), 1e-12)
        weights = sources @ np.linalg.solve(gram + ridge * np.eye(len(gram)), p)
        parts = weights[:, None] * (sources @ targets.T)
        unattributed = targets @ (p - sources.T @ weights)
    offset = np.full(len(rows), shown_offset)
    if mine.blend is not None:
        parts, unattributed, own, offset = _blended(
            loaded, mine.blend, rated, rows, parts, unattributed, own
        )
    # The three largest parts of every row at once (stable: equal parts by rated order), then
    # plain Python numbers for the few that are named.
    best = np.argsort(-parts, axis=0, kind="stable")[:BECAUSE].T.tolist()  # (rows, <= 3)
    values = parts.T.tolist()
    rated_rows = rated.tolist()
    given = [None if r != r else r for r in ratings.tolist()]  # r != r: NaN, no rating kept
    totals = parts.sum(axis=0).tolist()
    first = None
    if mine.blend is not None and mine.blend.first is not None:
        first = (mine.blend.first[rows] + shown_offset).astype(float).tolist()
    out = []
    for c, (top, column) in enumerate(zip(best, values, strict=True)):
        because = [Reason(rated_rows[j], given[j], column[j]) for j in top if column[j] > 0]
        out.append(
            Explained(
                because,
                totals[c],
                float(unattributed[c]),
                float(own[c]),
                float(offset[c]),
                first[c] if first is not None else None,
            )
        )
    return out


def _blended(
    loaded: LoadedVersion,
    blend: Blend,
    rated: np.ndarray,
    rows: np.ndarray,
    parts: np.ndarray,
    unattributed: np.ndarray,
    own: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The vectors' parts scaled as the blend scales them, plus each rated item's exact part
    of the item-item score (its rating times its weight toward the item), and the two
    standardisations' shifts as the user's term."""
    weights = loaded.item_item
    assert weights is not None
    w = blend.weight
    vectors_scale = (1 - w) / blend.dot_sd
    item_scale = w / blend.item_sd
    parts = parts * vectors_scale
    inside = rows < loaded.n_items
    position = {int(r): k for k, r in enumerate(rated.tolist())}
    at = np.array([position[int(r)] for r in blend.rated.tolist()], np.int64)
    if len(at):
        block = np.zeros((len(at), len(rows)))
        block[:, inside] = np.asarray(weights[blend.rated][:, rows[inside]], np.float64)
        parts[at] += item_scale * blend.ratings[:, None].astype(np.float64) * block
    shift = -w * blend.item_mean / blend.item_sd - (1 - w) * blend.dot_mean / blend.dot_sd
    return parts, unattributed * vectors_scale, own * vectors_scale, np.full(len(rows), shift)


def _item_vectors(
    loaded: LoadedVersion, new: NewItems | None, rows: np.ndarray, by_rating: bool
) -> np.ndarray:
    vectors = loaded.rating_vectors if by_rating else loaded.vectors
    n = loaded.n_items
    inside = rows < n
    if inside.all():
        catalogue: np.ndarray = vectors.item_factors[rows].astype(np.float64)
        return catalogue
    out = np.zeros((len(rows), vectors.item_factors.shape[1]))
    out[inside] = vectors.item_factors[rows[inside]]
    if new is not None and not inside.all():
        extra = new.rating_factors if by_rating else new.vectors
        if extra is not None:
            out[~inside] = extra[rows[~inside] - n]
    return out


def _item_terms(
    user: UserView,
    new: NewItems | None,
    rows: np.ndarray,
    mine: UserScores,
) -> np.ndarray:
    """Each row's own term: its bias, plus a new user's popularity blend."""
    loaded = user.loaded
    vectors = loaded.rating_vectors if mine.by_rating else loaded.vectors
    n = loaded.n_items
    inside = rows < n
    out = np.zeros(len(rows))
    if vectors.item_bias is not None:
        out[inside] = vectors.item_bias[rows[inside]]
    if mine.popularity:
        out[inside] += mine.popularity * user.view.log_popularity[rows[inside]]
    if new is not None and not inside.all():
        at = rows[~inside] - n
        bias = new.rating_bias if mine.by_rating else new.bias
        if bias is not None:
            out[~inside] = bias[at]
        if mine.popularity:
            out[~inside] += mine.popularity * new.log_popularity[at]
    return out
