"""Train a rating model on a seeded split: early stopping on validation, then (by default) a refit
on train+validation for the epochs validation chose, and a test score of the model exported."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import keras
import numpy as np
import pandas as pd

from training.config import TrainConfig
from training.data.loaders import RatingsData
from training.data.split import IdIndex, Split, make_split
from training.evaluate import evaluate_frame
from training.models import build_model, make_optimizer

# Steps per tf.function call. Python and dispatch overhead dominated the small MF steps
# (ml-100k, batch 256: 1.17 s/epoch at 1, 0.30 s at 32 with XLA; bench/README.md).
STEPS_PER_EXECUTION = 32


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite: no model is returned (or exported) from such a run."""


@dataclass
class Fit:
    """One model fitted on one frame, with the id indices it was built on."""

    model: Any
    users: IdIndex
    items: IdIndex
    global_mean: float
    history: dict[str, list[float]]
    seconds: float


@dataclass
class TrainedModel:
    """The model to export, with everything export and evaluation need.

    `metrics["validation"]` comes from the model fitted on train alone (validation was held out
    from it); with `config.refit`, `model` was then refitted on train+validation for `best_epoch`
    epochs and `metrics["test"]` is that model's. `history` is the first fit's, per epoch.
    """

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

    @property
    def seconds_to_best(self) -> float:
        """Training time until the epoch with the best validation loss ended."""
        return float(sum(self.history["epoch_seconds"][: self.best_epoch]))

    @property
    def refitted(self) -> bool:
        return self.config.refit and len(self.split.validation) > 0

    def summary(self) -> dict[str, Any]:
        epoch_seconds = self.history["epoch_seconds"]
        return {
            **asdict(self.config),
            "best_epoch": self.best_epoch,
            "epochs_run": len(epoch_seconds),
            "refitted_on_train_and_validation": self.refitted,
            "train_seconds": round(self.train_seconds, 2),
            "seconds_to_best": round(self.seconds_to_best, 2),
            "ratings_per_second": round(len(self.split.train) / float(np.median(epoch_seconds))),
            "parameters": int(self.model.count_params()),
            "data_source": self.data_source,
        }


class EpochLog(keras.callbacks.Callback):
    """One line per epoch (losses, validation RMSE, time), and each epoch's seconds recorded."""

    def __init__(self, epochs: int, log, prefix: str = ""):
        super().__init__()
        self.epochs, self.log, self.prefix = epochs, log, prefix
        self.started = 0.0
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)
        logs = logs or {}
        parts = [
            f"{self.prefix}epoch {epoch + 1:>3}/{self.epochs}",
            f"loss {logs.get('loss', float('nan')):.4f}",
        ]
        if "val_rmse" in logs:
            parts.append(f"val_rmse {logs['val_rmse']:.4f}")
        parts.append(f"{self.seconds[-1]:.1f}s")
        self.log("  ".join(parts))


def fit(
    config: TrainConfig,
    train_frame: pd.DataFrame,
    validation_frame: pd.DataFrame | None,
    epochs: int,
    log=print,
    prefix: str = "",
) -> Fit:
    """Build `config.model` on the ids of `train_frame` and fit it; with a validation frame,
    stop early on its loss and restore the best weights."""
    users = IdIndex.from_column(train_frame["user_id"])
    items = IdIndex.from_column(train_frame["item_id"])
    global_mean = float(train_frame["rating"].mean())
    keras.utils.set_random_seed(config.seed)
    model = build_model(config.model, len(users), len(items), global_mean, **config.model_params())
    model.compile(
        optimizer=make_optimizer(config.optimizer, config.learning_rate),
        metrics=[keras.metrics.RootMeanSquaredError(name="rmse")],
        steps_per_execution=STEPS_PER_EXECUTION,
        jit_compile=model.xla,
    )

    def encode(frame):
        x = {"user": users.lookup(frame["user_id"]), "item": items.lookup(frame["item_id"])}
        return x, frame["rating"].to_numpy(np.float32)

    epoch_log = EpochLog(epochs, log, prefix)
    callbacks: list[keras.callbacks.Callback] = [epoch_log, keras.callbacks.TerminateOnNaN()]
    validation_data = None
    if validation_frame is not None and len(validation_frame):
        validation_data = encode(validation_frame)
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.patience, restore_best_weights=True
            )
        )
    x, y = encode(train_frame)
    started = time.perf_counter()
    history = model.fit(
        x,
        y,
        batch_size=config.batch_size,
        epochs=epochs,
        validation_data=validation_data,
        callbacks=callbacks,
        shuffle=True,
        verbose=0,
    )
    seconds = time.perf_counter() - started
    record = {k: [float(v) for v in values] for k, values in history.history.items()}
    losses = record["loss"] + record.get("val_loss", [])
    if not np.all(np.isfinite(losses)):
        raise TrainingDiverged(
            f"{config.model} with {config.optimizer} at learning rate {config.learning_rate:g} "
            f"diverged (loss {record['loss'][-1]} in epoch {len(record['loss'])}); "
            "try a lower --lr"
        )
    record["epoch_seconds"] = epoch_log.seconds
    return Fit(model, users, items, global_mean, record, seconds)


def train(data: RatingsData, config: TrainConfig | None = None, log=print) -> TrainedModel:
    """Split `data`; fit on train with early stopping on validation; refit on train+validation
    for the chosen number of epochs (unless `config.refit` is off); report validation metrics of
    the first fit and test metrics of the final model. Test never chooses anything."""
    config = config or TrainConfig()
    split = make_split(data.ratings, config.validation, config.test, config.seed, config.split_by)
    rating_range = (float(data.ratings["rating"].min()), float(data.ratings["rating"].max()))
    log(
        f"{len(data.ratings):,} ratings ({rating_range[0]:g} to {rating_range[1]:g}) from "
        f"{data.source or 'input'}: {len(split.train):,} train / "
        f"{len(split.validation):,} validation / {len(split.test):,} test; "
        f"model {config.model}, optimizer {config.optimizer} (lr {config.learning_rate:g})"
    )
    first = fit(config, split.train, split.validation, config.epochs, log)
    val_losses = first.history.get("val_loss") or first.history["loss"]
    best_epoch = int(np.argmin(val_losses)) + 1
    metrics = {}
    if len(split.validation):
        metrics["validation"] = evaluate_frame(
            first.model, first.users, first.items, split.validation, rating_range
        )
    final, seconds = first, first.seconds
    if config.refit and len(split.validation):
        log(
            f"refit on train+validation ({len(split.train) + len(split.validation):,} ratings) "
            f"for the {best_epoch} epochs validation chose"
        )
        final = fit(config, split.fitted_on(True), None, best_epoch, log, prefix="refit ")
        seconds += final.seconds
    if len(split.test):
        metrics["test"] = evaluate_frame(
            final.model, final.users, final.items, split.test, rating_range
        )
    return TrainedModel(
        model=final.model,
        config=config,
        users=final.users,
        items=final.items,
        split=split,
        global_mean=final.global_mean,
        rating_range=rating_range,
        history=first.history,
        best_epoch=best_epoch,
        train_seconds=seconds,
        metrics=metrics,
        data_source=data.source,
    )
