"""Top-N through the version's approximate index (`artifact.ann`), for large catalogues.

The index proposes candidates; everything after that is the exact path's own work on fewer
rows: the candidates are re-scored with the version's vectors (the same numbers the exact path
shows), the user's seen items and the request's filters are applied to them, and the shared
kernel picks the winners. It over-fetches (`artifact.ann.fetch_size`: every seen item plus a
margin). When the lists it visited ran dry before that many candidates and too few survived,
it visits four times the lists and asks again (the version's `nprobe` is chosen on recall
without seen items: on a 1M-item version with ~300 ratings a user, one list held 24 items, all
of them seen, and every request fell to the exact path, 35 requests/s). When the lists did hold
enough and fewer than `n` survive (filters), it gives up, returning None so the exact path
answers. Folded-in new items are few and not in the index: they are scored exactly and compete
with the candidates.

Only the path the index was built for takes it: a trained user ranked by the version's default
vectors. Users with live ratings (folded in: their vector and the popularity blend), `by=rating`
and versions with item-item weights (small catalogues only) stay exact.
"""

from __future__ import annotations

import numpy as np

from app.events.user import UserView
from app.ranking.filters import ItemFilter, allowed_by
from app.ranking.types import Recommendation, UserScores
from artifact import ann
from artifact.topn import top_n


def approximate(
    user: UserView, n: int, exclude_seen: bool, where: ItemFilter | None
) -> Recommendation | None:
    """The user's `n` best rows through the index, or None where the exact path must answer
    (see the module docstring); seen items and `where` as `recommend` applies them."""
    loaded, row, new = user.loaded, user.row, user.new
    if row is None or user.folded is not None or loaded.item_item is not None:
        return None
    vectors = loaded.vectors
    exclude = user.exclusions() if exclude_seen else None
    allowed = allowed_by(user.view, where, new)
    query = vectors.user_factors[row]
    k = min(ann.fetch_size(n, 0 if exclude is None else len(exclude)), loaded.n_items)
    nprobe, lists = ann.probes(loaded.ann)
    while True:
        candidates = ann.search(loaded.ann, query, k, nprobe)
        found = _ranked(user, query, candidates, n, exclude, allowed)
        if found is not None or nprobe >= lists or len(candidates) >= k:
            return found  # answered; or every list seen; or the lists held enough (filters)
        nprobe = min(4 * nprobe, lists)  # the visited lists ran dry: visit more


def _ranked(
    user: UserView,
    query: np.ndarray,
    rows: np.ndarray,
    n: int,
    exclude: np.ndarray | None,
    allowed: np.ndarray | None,
) -> Recommendation | None:
    """The best `n` of the candidate `rows` (and the new items) after an exact re-score, or
    None when fewer than `n` survive and the catalogue holds more."""
    loaded, row, new, vectors = user.loaded, user.row, user.new, user.loaded.vectors
    assert row is not None
    scores = vectors.item_factors[rows] @ query
    if vectors.item_bias is not None:
        scores += vectors.item_bias[rows]
    if new is not None:
        rows = np.concatenate([rows, loaded.n_items + np.arange(len(new.ids))])
        extra = (new.vectors @ query + new.bias).astype(scores.dtype)
        scores = np.concatenate([scores, extra])
    order = np.argsort(rows)  # positions in row order: the kernel's ties go to the lower row
    rows, scores = rows[order], scores[order]
    drop = np.isin(rows, exclude) if exclude is not None and len(exclude) else None
    keep = allowed[rows] if allowed is not None else None
    if drop is not None:
        keep = ~drop if keep is None else keep & ~drop
    at, top = top_n(scores.copy(), n, None, keep)
    if len(at) < n and len(rows) < loaded.n_items:
        return None  # too few candidates passed: the exact path answers
    offset = 0.0 if vectors.user_offset is None else float(vectors.user_offset[row])
    # `scores` here are the candidates' only; explanations read the query and the vectors.
    mine = UserScores(scores, offset, "model", exclude, new, query)
    return Recommendation(
        rows[at], top + offset if offset else top, "model", new, mine, user.pending
    )
