"""Train a rating model on a seeded split, with early stopping on validation."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import keras
import numpy as np

from training.config import TrainConfig
from training.data.loaders import RatingsData
from training.data.split import IdIndex, Split, split_ratings
from training.evaluate import evaluate_frame
from training.models import build_model, make_optimizer


STEPS_PER_EXECUTION = 32


@dataclass
class TrainedModel:
    """A trained model with everything export and evaluation need."""

    model: Any
    config: TrainConfig
    users: IdIndex
    items: IdIndex
    split: Split
    global_mean: float
    rating_range: tuple[float, float]
    history: dict[str, list[float]]
    best_epoch: int
    train_seconds: float
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    data_source: str = ""

    def summary(self) -> dict[str, Any]:
        return {
            **asdict(self.config),
            "best_epoch": self.best_epoch,
            "epochs_run": len(self.history.get("loss", [])),
            "train_seconds": round(self.train_seconds, 2),
            "data_source": self.data_source,
        }


class EpochLog(keras.callbacks.Callback):
    """One line per epoch: losses, validation RMSE and time."""

    def __init__(self, epochs: int, log):
        super().__init__()
        self.epochs, self.log, self.started = epochs, log, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        parts = [
            f"epoch {epoch + 1:>3}/{self.epochs}",
            f"loss {logs.get('loss', float('nan')):.4f}",
        ]
        if "val_rmse" in logs:
            parts.append(f"val_rmse {logs['val_rmse']:.4f}")
        parts.append(f"{time.perf_counter() - self.started:.1f}s")
        self.log("  ".join(parts))


def train(data: RatingsData, config: TrainConfig | None = None, log=print) -> TrainedModel:
    """Split `data`, train `config.model` on train with early stopping on validation, and report
    validation and test metrics (test is measured, never used to choose anything)."""
    config = config or TrainConfig()
    split = split_ratings(data.ratings, config.validation, config.test, config.seed)
    users = IdIndex.from_column(split.train["user_id"])
    items = IdIndex.from_column(split.train["item_id"])
    global_mean = float(split.train["rating"].mean())
    rating_range = (float(data.ratings["rating"].min()), float(data.ratings["rating"].max()))
    log(
        f"{len(data.ratings):,} ratings from {data.source or 'input'}: "
        f"{len(split.train):,} train / {len(split.validation):,} validation / "
        f"{len(split.test):,} test; {len(users):,} users x {len(items):,} items in train"
    )

    keras.utils.set_random_seed(config.seed)
    model = build_model(config.model, len(users), len(items), global_mean, **config.model_params())
    # 32 steps per tf.function call and XLA: Python and dispatch overhead dominated the small
    # MF steps (ml-100k, batch 256: 1.17 s/epoch plain, 0.30 s/epoch with both; bench/README.md).
    model.compile(
        optimizer=make_optimizer(config.optimizer, config.learning_rate),
        metrics=[keras.metrics.RootMeanSquaredError(name="rmse")],
        steps_per_execution=STEPS_PER_EXECUTION,
        jit_compile=True,
    )

    def encode(frame):
        x = {"user": users.lookup(frame["user_id"]), "item": items.lookup(frame["item_id"])}
        return x, frame["rating"].to_numpy(np.float32)

    x_train, y_train = encode(split.train)
    callbacks: list[keras.callbacks.Callback] = [EpochLog(config.epochs, log)]
    validation_data = None
    if len(split.validation):
        validation_data = encode(split.validation)
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.patience, restore_best_weights=True
            )
        )
    started = time.perf_counter()
    fit = model.fit(
        x_train,
        y_train,
        batch_size=config.batch_size,
        epochs=config.epochs,
        validation_data=validation_data,
        callbacks=callbacks,
        shuffle=True,
        verbose=0,
    )
    seconds = time.perf_counter() - started
    history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
    val_losses = history.get("val_loss") or history["loss"]
    trained = TrainedModel(
        model=model,
        config=config,
        users=users,
        items=items,
        split=split,
        global_mean=global_mean,
        rating_range=rating_range,
        history=history,
        best_epoch=int(np.argmin(val_losses)) + 1,
        train_seconds=seconds,
        data_source=data.source,
    )
    for part in ("validation", "test"):
        frame = getattr(split, part)
        if len(frame):
            trained.metrics[part] = evaluate_frame(model, users, items, frame, rating_range)
    return trained
