"""The one fitting loop every model goes through: fit on train with early stopping on validation,
refit on train+validation for the epochs validation chose, score validation with the first fit
and test with the final model. Test never chooses anything.

A `Learner` says how to build, fit and measure one kind of model (the rating models in
`training.rating`, the retrieval vectors in `training.retrieval`); this module owns the order of
the steps, the seeding, the divergence check and the timing, so a distribution strategy has one
place to go (`fit_once`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from training.data.split import IdIndex, Split

Log = Callable[[str], object]
Metrics = dict[str, float]


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite: no model is returned (or exported) from such a run."""


@dataclass
class Fit:
    """One model fitted on one frame, with the id indices its rows stand for."""

    model: Any
    users: IdIndex
    items: IdIndex
    history: dict[str, list[float]]  # per epoch; "loss" at least
    best_epoch: int  # the epoch validation chose (the last one without validation)
    seconds: float


@dataclass
class Fitted:
    """The first fit (on train, validation watching), the final model (refitted on
    train+validation, or the first fit again) with validation and test metrics, and the model
    fitted on every rating (`whole`, after a refit when there is a test split): the one a
    version exports, so that every user and item given is known to it."""

    first: Fit
    final: Fit
    refitted: bool
    metrics: dict[str, Metrics]
    whole: Fit | None = None

    @property
    def exported(self) -> Fit:
        return self.whole or self.final

    @property
    def best_epoch(self) -> int:
        return self.first.best_epoch

    @property
    def seconds(self) -> float:
        refit = self.final.seconds if self.refitted else 0.0
        return self.first.seconds + refit + (self.whole.seconds if self.whole else 0.0)

    @property
    def exported_on(self) -> str:
        """Which parts the exported model learned from."""
        if self.whole is not None:
            return "train+validation+test"
        return "train+validation" if self.refitted else "train"


@dataclass
class Trained:
    """What a training run returns, read as its final model: the model, the ids its rows stand
    for, and how it was chosen (the first fit's history and best epoch) and scored."""

    fitted: Fitted

    @property
    def model(self) -> Any:
        """The model the test metrics belong to (it never saw test)."""
        return self.fitted.final.model

    @property
    def exported(self) -> Fit:
        """The model a version exports: fitted on every rating when there was a refit and a
        test split (test was scored before, by `model`), else `model` itself."""
        return self.fitted.exported

    def provenance(self) -> dict[str, Any]:
        """What the manifest says of where its figures and its model come from, and the first
        fit's curves (per epoch: the losses and validation metrics, not the epochs' times)."""
        scored_by = "train+validation" if self.refitted else "train"
        curves = {
            name: [round(float(v), 6) for v in values]
            for name, values in self.history.items()
            if name != "epoch_seconds"
        }
        return {
            "exported_model_fitted_on": self.fitted.exported_on,
            "test_metrics_from_model_fitted_on": scored_by,
            "history": curves,
        }

    @property
    def users(self) -> IdIndex:
        return self.fitted.final.users

    @property
    def items(self) -> IdIndex:
        return self.fitted.final.items

    @property
    def history(self) -> dict[str, list[float]]:
        return self.fitted.first.history

    @property
    def best_epoch(self) -> int:
        return self.fitted.best_epoch

    @property
    def metrics(self) -> dict[str, Metrics]:
        return self.fitted.metrics

    @property
    def refitted(self) -> bool:
        return self.fitted.refitted

    @property
    def seconds(self) -> float:
        """Training time of every fit the run made."""
        return self.fitted.seconds


class Learner(Protocol):
    """How to build, fit and measure one kind of model."""

    label: str  # prefixed to its log lines ("" or "retrieval ")
    seed: int

    def build(self, users: IdIndex, items: IdIndex, frame: pd.DataFrame) -> Any:
        """An untrained, compiled model for these ids."""
        ...

    def fit(
        self,
        model: Any,
        users: IdIndex,
        items: IdIndex,
        frame: pd.DataFrame,
        epochs: int,
        validation: pd.DataFrame | None,
        log: Log,
        prefix: str,
    ) -> tuple[dict[str, list[float]], int]:
        """Fit `model` in place; early-stop on `validation` when given (best weights restored).
        Returns the per-epoch history and the epoch to keep."""
        ...

    def measure(self, fit: Fit, fitted_on: pd.DataFrame, held_out: pd.DataFrame) -> Metrics:
        """How `fit` scores on `held_out` (it learned from `fitted_on`)."""
        ...

    def describe(self) -> str:
        """Names the run in a divergence message ("mf_bias with adam at learning rate 0.001")."""
        ...

    def remedy(self) -> str:
        """What to try when it diverges ("try a lower --lr")."""
        ...


def fit_once(
    learner: Learner,
    frame: pd.DataFrame,
    epochs: int,
    validation: pd.DataFrame | None,
    log: Log,
    prefix: str = "",
) -> Fit:
    """Build a model on the ids of `frame`, seeded, and fit it.

    Raises:
        TrainingDiverged: a training or validation loss was NaN or infinite.
    """
    import keras

    users = IdIndex.from_column(frame["user_id"])
    items = IdIndex.from_column(frame["item_id"])
    keras.utils.set_random_seed(learner.seed)
    model = learner.build(users, items, frame)
    started = time.perf_counter()
    history, best_epoch = learner.fit(
        model, users, items, frame, epochs, validation, log, learner.label + prefix
    )
    seconds = time.perf_counter() - started
    losses = history["loss"] + history.get("val_loss", [])
    if not np.all(np.isfinite(losses)):
        raise TrainingDiverged(
            f"{learner.describe()} diverged (loss {history['loss'][-1]} in epoch "
            f"{len(history['loss'])}); {learner.remedy()}"
        )
    return Fit(model, users, items, history, best_epoch, seconds)


def fit_and_refit(
    learner: Learner, split: Split, epochs: int, refit: bool = True, log: Log = print
) -> Fitted:
    """Fit on train with early stopping on validation; then, with `refit` and a validation
    split, fit again on train+validation for the epochs validation chose, and (with a test
    split) once more on every rating, the model to export. Validation metrics come from the
    first fit, test metrics from the train+validation model, which never saw test."""
    first = fit_once(learner, split.train, epochs, split.validation, log)
    metrics: dict[str, Metrics] = {}
    if len(split.validation):
        metrics["validation"] = learner.measure(first, split.train, split.validation)
    refitted = refit and len(split.validation) > 0
    final = first
    if refitted:
        fitted_on = split.fitted_on(True)
        log(
            f"{learner.label}refit on train+validation ({len(fitted_on):,} ratings) for the "
            f"{first.best_epoch} epochs validation chose"
        )
        final = fit_once(learner, fitted_on, first.best_epoch, None, log, prefix="refit ")
    whole = None
    if len(split.test):
        metrics["test"] = learner.measure(final, split.fitted_on(refitted), split.test)
        if refitted:
            everything = split.everything()
            log(
                f"{learner.label}fit on every rating ({len(everything):,}) for the "
                f"{first.best_epoch} epochs validation chose: the model exported"
            )
            whole = fit_once(learner, everything, first.best_epoch, None, log, prefix="final ")
    return Fitted(first, final, refitted, metrics, whole)
