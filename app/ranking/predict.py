"""Predicted ratings with the live state: the SavedModel's answer, replaced by
mu + b_u + b_i + p_u . q_i (clipped to the scale) from the factors, the formula they reproduce
for trained pairs, wherever a side was folded in: a user with live ratings, or a new item. Each
prediction says where it came from. The formula runs once over the request's pairs (numpy),
each distinct user's side resolved once."""

from __future__ import annotations

import numpy as np

from app.events.view import VersionView


def with_fold_in(
    view: VersionView,
    user_ids: list[str],
    item_ids: list[str],
    predicted: np.ndarray,
) -> tuple[np.ndarray, list[str], list[str]]:
    """`predicted` (the SavedModel's ratings for the pairs) with every pair that has a folded-in
        side recomputed from the factors, and each pair's source: "fold_in", "model" (a trained
        pair, or a version whose rating cannot be folded in, the MLPs), or "popular" (the model's
        answer for a user it does not know: no personal signal); and the users whose live
    ratings are not yet folded in against this version (answered as if it had none)."""
    loaded = view.loaded
    out = np.array(predicted, np.float64)
    # Each distinct user resolved once (a request may hold the same user many times).
    users = {u: view.user(u) for u in dict.fromkeys(user_ids)}
    rows = {u: user.row for u, user in users.items()}
    folds = {u: user.folded for u, user in users.items()}
    sources = ["model" if rows[u] is not None else "popular" for u in user_ids]
    pending = [u for u, user in users.items() if user.pending]
    vectors, new = loaded.rating_vectors, view.new_items
    if vectors.user_offset is None:
        return out, sources, pending
    if new is None and all(f is None for f in folds.values()):
        return out, sources, pending  # trained pairs (check_known): the SavedModel's answers
    mean = loaded.manifest.global_mean
    low, high = loaded.manifest.rating_range
    # Each distinct user's side of the formula, one row per user: a folded-in user's solved
    # factors and bias, else a trained user's; `has` is off for a user with neither.
    order = list(users)
    k = vectors.user_factors.shape[1]
    p, user_bias = np.zeros((len(order), k), np.float32), np.zeros(len(order))
    has, folded_in = np.zeros(len(order), bool), np.zeros(len(order), bool)
    for j, u in enumerate(order):
        folded, row = folds[u], rows[u]
        folded_in[j] = folded is not None
        if folded is not None and folded.rating is not None:
            p[j], user_bias[j] = folded.rating[0], folded.rating[1]
        elif row is not None:
            p[j], user_bias[j] = vectors.user_factors[row], float(vectors.user_offset[row]) - mean
        else:
            continue
        has[j] = True
    slot = {u: j for j, u in enumerate(order)}
    pair = np.fromiter((slot[u] for u in user_ids), np.int64, len(user_ids))
    q, item_bias, item_known, trained = _item_side(view, item_ids)
    # A trained user with a trained item keeps the SavedModel's answer; every other pair whose
    # two sides are known is recomputed.
    redo = has[pair] & item_known & (folded_in[pair] | ~trained)
    value = mean + user_bias[pair] + item_bias + np.einsum("ij,ij->i", p[pair], q)
    out[redo] = np.clip(value[redo], low, high)
    for i in np.flatnonzero(redo):
        sources[i] = "fold_in"
    return out, sources, pending


def _item_side(
    view: VersionView, item_ids: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each pair's item side of the formula: the factors and bias of a trained item, else of an
    item folded in beyond the catalogue; whether it had either, and whether it was trained."""
    loaded, new = view.loaded, view.new_items
    vectors, n = loaded.rating_vectors, len(item_ids)
    col = np.fromiter((loaded.item_index.get(i, -1) for i in item_ids), np.int64, n)
    trained = col >= 0
    q = vectors.item_factors[np.where(trained, col, 0)]
    bias = (
        np.zeros(n) if vectors.item_bias is None else vectors.item_bias[np.where(trained, col, 0)]
    )
    bias = np.where(trained, bias, 0.0)
    known = trained.copy()
    if new is not None and new.rating_factors is not None:
        extra = np.fromiter(
            (new.index.get(i, loaded.n_items - 1) - loaded.n_items for i in item_ids), np.int64, n
        )
        mine = ~trained & (extra >= 0)
        q[mine] = new.rating_factors[extra[mine]]
        if new.rating_bias is not None:
            bias[mine] = new.rating_bias[extra[mine]]
        known |= mine
    return q, bias, known, trained
