"""Train a rating model (any kind in `training.models.kinds`) on a seeded split, through the one
fitting loop: early stopping on the validation loss, a refit on train+validation for the epochs
validation chose, and a test score of the model exported."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from artifact.manifest import UncertaintySpec
from training.config import TrainConfig
from training.data.ratings import RatingsData
from training.data.split import IdIndex, Split, make_split
from training.evaluation.calibration import calibrate
from training.evaluation.rating import evaluate_frame
from training.fitting import Fit, Log, Metrics, Trained, fit_and_refit
from training.models.kinds import build_model, make_optimizer


@dataclass
class TrainedModel(Trained):
    """The rating model to export, with everything export and evaluation need.

    `metrics["validation"]` comes from the model fitted on train alone (validation was held out
    from it); with `config.refit`, the final `model` was then refitted on train+validation for
    `best_epoch` epochs and `metrics["test"]` is that model's. `history` is the first fit's.
    """

    config: TrainConfig
    split: Split
    rating_range: tuple[float, float]
    data_source: str = ""
    uncertainty: UncertaintySpec | None = None  # calibrated on validation (factor models)

    @property
    def global_mean(self) -> float:
        return float(self.model.global_mean)

    @property
    def seconds_to_best(self) -> float:
        """Training time until the epoch with the best validation loss ended."""
        return float(sum(self.history["epoch_seconds"][: self.best_epoch]))

    def summary(self) -> dict[str, Any]:
        epoch_seconds = self.history["epoch_seconds"]
        return {
            **asdict(self.config),
            "best_epoch": self.best_epoch,
            "epochs_run": len(epoch_seconds),
            "refitted_on_train_and_validation": self.refitted,
            **self.provenance(),
            "train_seconds": round(self.seconds, 2),
            "seconds_to_best": round(self.seconds_to_best, 2),
            "ratings_per_second": round(len(self.split.train) / float(np.median(epoch_seconds))),
            "parameters": int(self.exported.model.count_params()),
            "data_source": self.data_source,
        }


class RatingLearner:
    """A rating model of `config.model`, trained on MSE (training.loop); early stopping watches
    the validation loss and restores the best weights."""

    label = ""

    def __init__(self, config: TrainConfig, rating_range: tuple[float, float]):
        self.config, self.rating_range, self.seed = config, rating_range, config.seed

    def build(self, users: IdIndex, items: IdIndex, frame: pd.DataFrame) -> Any:
        config = self.config
        global_mean = float(frame["rating"].mean())
        model = build_model(
            config.model, len(users), len(items), global_mean, **config.model_params()
        )
        model({"user": np.zeros(1, np.int32), "item": np.zeros(1, np.int32)})  # create weights
        # compile only holds the optimizer (and lets `predict` run); the loop trains.
        model.compile(optimizer=make_optimizer(config.optimizer, config.learning_rate))
        model.optimizer.build(model.trainable_variables)
        return model

    def fit(self, model, users, items, frame, epochs, validation, log, prefix):
        from training.als import fit_als
        from training.autorec import fit_autorec
        from training.loop import Arrays, LoopSettings, fit_rating_model

        def encode(part: pd.DataFrame) -> Arrays:
            return Arrays(
                users.lookup(part["user_id"]),
                items.lookup(part["item_id"]),
                part["rating"].to_numpy(np.float32),
            )

        c = self.config
        fit = (
            partial(fit_als, start=c.als_start, cg_steps=c.als_cg_steps)
            if c.solver == "als"
            else fit_rating_model
        )
        if c.model == "autorec":
            fit = fit_autorec
        return fit(
            model,
            encode(frame),
            encode(validation) if validation is not None and len(validation) else None,
            LoopSettings(c.batch_size, epochs, c.patience, c.seed, c.min_gain),
            log,
            prefix,
        )

    def measure(self, fit: Fit, fitted_on: pd.DataFrame, held_out: pd.DataFrame) -> Metrics:
        return evaluate_frame(fit.model, fit.users, fit.items, held_out, self.rating_range)

    def describe(self) -> str:
        c = self.config
        if c.solver == "als":
            return f"{c.model} with alternating least squares at l2 {c.l2:g}"
        return f"{c.model} with {c.optimizer} at learning rate {c.learning_rate:g}"

    def remedy(self) -> str:
        return "try a larger --l2" if self.config.solver == "als" else "try a lower --lr"


def train_rating(
    data: RatingsData, config: TrainConfig | None = None, log: Log = print
) -> TrainedModel:
    """Split `data`; fit on train with early stopping on validation; refit on train+validation
    for the chosen number of epochs (unless `config.refit` is off); report validation metrics of
    the first fit and test metrics of the final model. Test never chooses anything.

    Raises:
        TrainingDiverged: the loss became NaN or infinite (try a lower learning rate).
    """
    config = config or TrainConfig()
    split = make_split(data.ratings, config.validation, config.test, config.seed, config.split_by)
    rating_range = (float(data.ratings["rating"].min()), float(data.ratings["rating"].max()))
    origin = data.source or "input"
    if data.store is not None:  # the merged data: say how much of it the store gave
        origin += f" and the event store {data.store.store} ({data.store.ratings:,} of them)"
    log(
        f"{len(data.ratings):,} ratings ({rating_range[0]:g} to {rating_range[1]:g}) from "
        f"{origin}: {len(split.train):,} train / "
        f"{len(split.validation):,} validation / {len(split.test):,} test; "
        f"model {config.model}, "
        + (
            f"alternating least squares (l2 {config.l2:g})"
            if config.solver == "als"
            else f"optimizer {config.optimizer} (lr {config.learning_rate:g})"
        )
    )
    fitted = fit_and_refit(
        RatingLearner(config, rating_range), split, config.epochs, config.refit, log
    )
    uncertainty = calibrate(config.model, fitted.first, split.train, split.validation, rating_range)
    return TrainedModel(fitted, config, split, rating_range, data.source, uncertainty)
