"""Predicted ratings with the live state: the SavedModel's answer, replaced for users with
folded-in rating factors by mu + b_u + b_i + p_u . q_i (clipped to the scale), the same formula
the factors reproduce for trained users. Each prediction says where it came from."""

from __future__ import annotations

import numpy as np

from app.events.live import LiveState
from app.serving.loader import LoadedVersion


def with_fold_in(
    loaded: LoadedVersion,
    live: LiveState,
    user_ids: list[str],
    item_ids: list[str],
    predicted: np.ndarray,
) -> tuple[np.ndarray, list[str]]:
    """`predicted` (the SavedModel's ratings for the pairs) with folded-in users' pairs
    recomputed from their factors, and each pair's source: "fold_in", "model" (a trained user
    without live ratings, or a version whose rating cannot be folded in, the MLPs), or
    "popular" (the model's answer for a user it does not know: no personal signal)."""
    out = np.array(predicted, np.float64)
    sources = ["model" if live.base_row(u) is not None else "popular" for u in user_ids]
    vectors = loaded.rating_vectors
    low, high = loaded.manifest.rating_range
    for i, (user, item) in enumerate(zip(user_ids, item_ids, strict=True)):
        folded = live.folded_of(user)
        if folded is None or folded.rating is None:
            continue
        p, bias = folded.rating
        col = loaded.item_index[item]
        value = loaded.manifest.global_mean + bias + float(vectors.item_factors[col] @ p)
        if vectors.item_bias is not None:
            value += float(vectors.item_bias[col])
        out[i] = min(max(value, low), high)
        sources[i] = "fold_in"
    return out, sources
