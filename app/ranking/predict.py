"""Predicted ratings with the live state: the SavedModel's answer, replaced by
mu + b_u + b_i + p_u . q_i (clipped to the scale) from the factors, the formula they reproduce
for trained pairs, wherever a side was folded in: a user with live ratings, or a new item. Each
prediction says where it came from."""

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
    for i, (user, item) in enumerate(zip(user_ids, item_ids, strict=True)):
        folded, row = folds[user], rows[user]
        col = loaded.item_index.get(item)
        if folded is None and col is not None:
            continue  # a trained pair: the SavedModel's answer
        if folded is not None and folded.rating is not None:
            p, user_bias = folded.rating
        elif row is not None:
            p, user_bias = vectors.user_factors[row], float(vectors.user_offset[row]) - mean
        else:
            continue
        if col is not None:
            q = vectors.item_factors[col]
            item_bias = 0.0 if vectors.item_bias is None else float(vectors.item_bias[col])
        elif new is not None and item in new.index and new.rating_factors is not None:
            j = new.index[item] - loaded.n_items
            q = new.rating_factors[j]
            item_bias = 0.0 if new.rating_bias is None else float(new.rating_bias[j])
        else:
            continue
        value = mean + user_bias + item_bias + float(q @ p)
        out[i] = min(max(value, low), high)
        sources[i] = "fold_in"
    return out, sources, pending
