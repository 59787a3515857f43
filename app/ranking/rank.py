"""Re-ranking a list the caller already has (search results, a shelf): the given items ordered
by the user's score, the same score /recommend ranks with."""

from __future__ import annotations

import numpy as np

from app.errors import UnknownIds, UnknownUser
from app.events.user import UserView
from app.ranking.recommend import user_scores
from app.ranking.types import Recommendation


def rank(
    user: UserView,
    item_ids: list[str],
    by_rating: bool = False,
    fallback: bool = True,
) -> Recommendation:
    """`item_ids` (each once, repeats dropped) best first by the user's score; equal scores keep
    the request's order. Items the user rated are ranked too: the list is the caller's.

    Raises:
        UnknownIds: items neither in the catalogue nor folded in (every one named; nothing is
            ranked), or with `fallback` off, a user without history (named).
    """
    try:
        mine = user_scores(user, False, by_rating, fallback)
    except UnknownUser:
        raise UnknownIds([user.user_id], []) from None
    wanted = list(dict.fromkeys(item_ids))
    rows = [user.view.item_row(item, mine.new) for item in wanted]
    unknown = [item for item, row in zip(wanted, rows, strict=True) if row is None]
    if unknown:
        raise UnknownIds([], unknown)
    picked = np.array(rows, np.int64)
    scores = mine.scores[picked]
    order = np.lexsort((np.arange(len(picked)), -scores))
    top = scores[order] + mine.offset if mine.offset else scores[order]
    return Recommendation(picked[order], top, mine.source, mine.new, mine, user.pending)
