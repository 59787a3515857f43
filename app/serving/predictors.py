"""The two ways /predict's trained pairs get their rating (RECSYS_PREDICT_FROM).

`savedmodel` calls the exported SavedModel's signature, the model TensorFlow Serving would
run. `factors` computes mu + b_u + b_i + p_u . q_i, clipped to the scale, in numpy
from the exported factor files, for the rating models whose factors reproduce their rating
(mf, mf_bias: the manifest's `recommend_by_rating.score == "rating"`; the export checks the two
agree). The worker then never imports TensorFlow: at a million items that was 1.2 GB of its
memory and 5.6 s of its start (bench/README.md, "A million items in one worker"). Numbers agree
with the SavedModel's to float32 rounding (the dot product's summation order). `auto`, the
default, takes the factors from `app.serving.loader.FACTORS_FROM_ITEMS` items on (100,000, where
the approximate index starts) and the SavedModel below, where its memory does not matter and
its load-time check against the factors still runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from artifact.errors import ArtifactError
from artifact.layout import SAVED_MODEL
from artifact.manifest import Manifest

PredictFn = Callable[[list[str], list[str]], np.ndarray]  # user ids, item ids -> ratings


def saved_model_predictor(path: Path, manifest: Manifest) -> tuple[Any, PredictFn]:
    """Load the version's SavedModel and check its signature; returns the loaded object (its
    signature needs it alive) and the function that calls it.

    Raises:
        ArtifactError: the SavedModel does not load, or lacks user_id, item_id -> rating.
    """
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as err:  # TF raises many types for a broken SavedModel
        raise ArtifactError(f"{path / SAVED_MODEL}: SavedModel does not load ({err})") from None
    signature = loaded.signatures.get(manifest.model.signature)
    if signature is None:
        raise ArtifactError(
            f"{path / SAVED_MODEL}: no signature {manifest.model.signature!r} "
            f"(has {sorted(loaded.signatures)})"
        )
    inputs = set(signature.structured_input_signature[1])
    if inputs != {"user_id", "item_id"} or "rating" not in signature.structured_outputs:
        raise ArtifactError(
            f"{path / SAVED_MODEL}: signature takes {sorted(inputs)} and returns "
            f"{sorted(signature.structured_outputs)}; expected user_id, item_id -> rating"
        )

    def predict(user_ids: list[str], item_ids: list[str]) -> np.ndarray:
        out = signature(
            user_id=tf.constant(user_ids, tf.string), item_id=tf.constant(item_ids, tf.string)
        )
        ratings: np.ndarray = out["rating"].numpy()
        return ratings

    return loaded, predict


def factor_predictor(
    user_index: Mapping[str, int],
    item_index: Mapping[str, int],
    user_factors: np.ndarray,
    user_offset: np.ndarray,
    item_factors: np.ndarray,
    item_bias: np.ndarray | None,
    rating_range: tuple[float, float],
    global_mean: float,
) -> PredictFn:
    """The rating the SavedModel of a factor model computes, from its factor files.

    `user_offset` is global_mean + b_u per user row. An id the version does not know counts as
    the SavedModel's out-of-vocabulary row does: zero factors and zero bias (the global mean plus
    the other side's bias).
    """
    low, high = np.float32(rating_range[0]), np.float32(rating_range[1])
    mean = np.float32(global_mean)

    def predict(user_ids: list[str], item_ids: list[str]) -> np.ndarray:
        n = len(user_ids)
        users = np.fromiter((user_index.get(u, -1) for u in user_ids), np.int64, n)
        items = np.fromiter((item_index.get(i, -1) for i in item_ids), np.int64, n)
        known_user, known_item = users >= 0, items >= 0
        u, i = np.where(known_user, users, 0), np.where(known_item, items, 0)
        dots = np.einsum("ij,ij->i", user_factors[u], item_factors[i])
        rating = np.where(known_user, user_offset[u], mean)
        if item_bias is not None:
            rating = rating + np.where(known_item, item_bias[i], np.float32(0))
        rating = rating + np.where(known_user & known_item, dots, np.float32(0))
        out: np.ndarray = np.clip(rating, low, high).astype(np.float32)
        return out

    return predict
