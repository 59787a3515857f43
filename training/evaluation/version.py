"""One exported version measured the way it is served: ratings from its SavedModel, top-N
from the vectors /recommend ranks with (through the service's kernel), on the split its manifest
describes (same seed and fractions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from artifact.files import read_array, read_ids
from artifact.layout import ITEM_IDS, USER_IDS
from artifact.manifest import read_manifest
from training.data.ratings import RatingsData
from training.data.split import IdIndex, make_split
from training.evaluation.ranking import both_rankings, factor_scores, popularity_scores
from training.evaluation.rating import liked_confusion, rating_metrics


def evaluate_version(version_dir: Path, data: RatingsData, k: int = 10) -> dict[str, Any]:
    """The compare report's metrics for one exported version, read back the way it is served:
    ratings from its SavedModel, top-N both by that predicted rating and by the vectors
    /recommend uses, on the split its manifest describes (same seed and fractions).

    A version exported on every rating (the default) learned its test split: the figures say
    so (`version_learned_test`) and are then no measure of generalisation; the manifest's test
    metrics are, from the model fitted on train+validation before the export.

    Args:
        version_dir: models/<name>/<version>.
        data: the ratings the version was trained on (RatingsData).
        k: the cut-off of the top-N metrics.
    """
    import tensorflow as tf

    manifest = read_manifest(version_dir)
    setup = manifest.training
    split = make_split(
        data.ratings,
        setup["validation"],
        setup["test"],
        setup["seed"],
        setup.get("split_by", "rating"),
    )
    counts = {part: len(getattr(split, part)) for part in ("train", "validation", "test")}
    expected = {part: manifest.counts[part] for part in counts}
    users = IdIndex(read_ids(version_dir / USER_IDS))
    items = IdIndex(read_ids(version_dir / ITEM_IDS))
    signature = tf.saved_model.load(str(version_dir)).signatures[manifest.model.signature]

    def predict(user_ids, item_ids) -> np.ndarray:
        out = signature(
            user_id=tf.constant(list(user_ids), tf.string),
            item_id=tf.constant(list(item_ids), tf.string),
        )
        return out["rating"].numpy()

    def predicted_rating_scores(rows: np.ndarray) -> np.ndarray:
        user_ids = np.repeat(np.asarray(users.to_list(), dtype=object)[rows], len(items))
        item_ids = np.tile(np.asarray(items.to_list(), dtype=object), len(rows))
        return predict(user_ids, item_ids).reshape(len(rows), len(items))

    refitted = setup.get("refitted_on_train_and_validation", False)
    fitted_on = split.fitted_on(refitted)
    test = split.test
    test_predictions = predict(test["user_id"], test["item_id"])
    spec = manifest.recommend
    vectors = factor_scores(
        read_array(version_dir / spec.user_factors, (len(users), None)),
        read_array(version_dir / spec.item_factors, (len(items), None)),
        read_array(version_dir / spec.item_bias, (len(items),)) if spec.item_bias else None,
    )
    return {
        "split_matches_manifest": counts == expected,
        # Exported on every rating (the default): it learned test, so these test figures flatter
        # it; the manifest's come from the model fitted without test.
        "version_learned_test": setup.get("exported_model_fitted_on") == "train+validation+test",
        "counts": counts,
        "test": rating_metrics(test["rating"].to_numpy(), test_predictions),
        # "ranking": relevant = test ratings >= 4; "ranking_all": every held-out rating
        "by_rating": both_rankings(predicted_rating_scores, users, items, fitted_on, test, k),
        "by_recommend_vectors": both_rankings(vectors, users, items, fitted_on, test, k),
        "recommend_source": spec.source,
        "popularity": both_rankings(
            popularity_scores(items, fitted_on), users, items, fitted_on, test, k
        ),
        "confusion": liked_confusion(
            test["rating"].to_numpy(), test_predictions, manifest.global_mean
        ),
        "k": k,
    }
