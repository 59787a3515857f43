"""Rating metrics on held-out ratings, computed on the predictions the service would serve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from artifact.files import read_array, read_ids
from artifact.layout import ITEM_IDS, USER_IDS
from artifact.manifest import read_manifest
from training.data.split import IdIndex


def rating_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and MSE of `y_pred` against `y_true`."""
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true ratings but {len(y_pred)} predictions")
    if len(y_true) == 0:
        return {"rmse": float("nan"), "mae": float("nan"), "mse": float("nan"), "count": 0}
    err = np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)
    mse = float(np.mean(err**2))
    return {"rmse": mse**0.5, "mae": float(np.mean(np.abs(err))), "mse": mse, "count": len(err)}


def predict_frame(
    model, users: IdIndex, items: IdIndex, frame: pd.DataFrame, rating_range: tuple[float, float]
) -> np.ndarray:
    """Clipped predictions for the rows of `frame`; unknown ids use the OOV row."""
    x = {"user": users.lookup(frame["user_id"]), "item": items.lookup(frame["item_id"])}
    raw = model.predict(x, batch_size=16384, verbose=0)
    return np.clip(np.asarray(raw, np.float32).reshape(-1), *rating_range)


def evaluate_frame(model, users, items, frame, rating_range) -> dict[str, float]:
    """Rating metrics of `model` on the rows of `frame`."""
    predictions = predict_frame(model, users, items, frame, rating_range)
    return rating_metrics(frame["rating"].to_numpy(), predictions)


def liked_confusion(y_true: np.ndarray, y_pred: np.ndarray, threshold: float) -> dict[str, Any]:
    """Liked / not liked at `threshold` (the training mean): counts, precision, recall, F1.

    An actual rating above the threshold is "liked"; so is a predicted one.
    """
    actual = np.asarray(y_true) > threshold
    predicted = np.asarray(y_pred) > threshold
    tp = int(np.sum(actual & predicted))
    fp = int(np.sum(~actual & predicted))
    fn = int(np.sum(actual & ~predicted))
    tn = int(np.sum(~actual & ~predicted))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "threshold": float(threshold),
        "matrix": {
            "liked": {"liked": tp, "not_liked": fn},
            "not_liked": {"liked": fp, "not_liked": tn},
        },
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": (tp + tn) / max(len(actual), 1),
    }


def evaluate_version(version_dir: Path, data, k: int = 10) -> dict[str, Any]:
    """The compare report's metrics for one exported version, read back the way it is served:
    ratings from its SavedModel, top-N both by that predicted rating and by the vectors
    /recommend uses, on the split its manifest describes (same seed and fractions).

    Args:
        version_dir: models/<name>/<version>.
        data: the ratings the version was trained on (RatingsData).
        k: the cut-off of the top-N metrics.
    """
    import tensorflow as tf

    from training.data.split import make_split
    from training.ranking import both_rankings, factor_scores, popularity_scores

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
