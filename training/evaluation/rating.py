"""Rating metrics on held-out ratings, computed on the predictions the service would serve."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

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
    user_rows, item_rows = users.lookup(frame["user_id"]), items.lookup(frame["item_id"])
    # Plain calls in chunks, not `predict`: under a multi-worker strategy `predict` would shard
    # the rows across the workers.
    raw = [
        np.asarray(model({"user": user_rows[s : s + 65536], "item": item_rows[s : s + 65536]}))
        for s in range(0, len(frame), 65536)
    ]
    predictions = np.concatenate(raw).reshape(-1) if raw else np.zeros(0)
    return np.clip(predictions.astype(np.float32), *rating_range)


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
