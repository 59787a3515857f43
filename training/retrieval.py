"""Train the top-N vectors: explicit ratings become positives, early stopping watches the
validation NDCG@10 itself, then a refit on train+validation (like the rating models)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import pandas as pd

from training.config import RetrievalConfig
from training.data.split import IdIndex, Split
from training.evaluation.ranking import factor_scores, popularity_scores, ranking_metrics
from training.fitting import Fit, Log, Metrics, Trained, fit_and_refit

if TYPE_CHECKING:
    from training.itemitem import ItemItemResult

STEPS_PER_EXECUTION = 16


@dataclass
class RetrievalResult(Trained):
    """The fitted vectors (final model), the ids their rows stand for, how they were chosen and
    how they rank."""

    config: RetrievalConfig
    # The item-item weights blended with these vectors (training.itemitem), when fitted.
    item_item: ItemItemResult | None = None

    def summary(self) -> dict[str, Any]:
        return {
            **asdict(self.config),
            "best_epoch": self.best_epoch,
            **self.provenance(),
            "train_seconds": round(self.seconds, 2),
            "item_item": self.item_item.summary() if self.item_item is not None else None,
        }


def positives(frame: pd.DataFrame, config: RetrievalConfig) -> tuple[pd.DataFrame, np.ndarray]:
    """The (user, item) pairs to learn from, and their weights."""
    chosen = (
        frame if config.positive_from is None else frame[frame["rating"] >= config.positive_from]
    )
    if chosen.empty:
        raise ValueError(f"no ratings >= {config.positive_from} to learn top-N from")
    if config.weighting == "rating":
        weights = (chosen["rating"] / chosen["rating"].mean()).to_numpy(np.float32)
    else:
        weights = np.ones(len(chosen), np.float32)
    return chosen, weights


class UserBatches(keras.utils.PyDataset):
    """Batches of `batch_users` users (those with a positive), reshuffled every epoch by a
    seeded generator: x = user rows, y = their positives' weights as a dense (users, items)
    matrix, built per batch from a CSR so memory stays O(positives)."""

    def __init__(self, users, items, weights, n_users, n_items, batch_users, seed):
        super().__init__()
        order = np.argsort(users, kind="stable")
        self.items, self.weights = items[order].astype(np.int64), weights[order]
        counts = np.bincount(users, minlength=n_users)
        self.indptr = np.concatenate([[0], np.cumsum(counts)])
        self.active = np.flatnonzero(counts).astype(np.int32)
        self.n_items, self.batch_users = n_items, batch_users
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(self.active)

    def __len__(self) -> int:
        return -(-len(self.active) // self.batch_users)

    def __getitem__(self, index: int):
        rows = self.order[index * self.batch_users : (index + 1) * self.batch_users]
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        counts = ends - starts
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        taken = np.repeat(starts, counts) + within
        y = np.zeros((len(rows), self.n_items), np.float32)
        np.add.at(
            y, (np.repeat(np.arange(len(rows)), counts), self.items[taken]), self.weights[taken]
        )
        return rows, y

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(self.active)


class ValidationRanking(keras.callbacks.Callback):
    """After each epoch: NDCG@10 on validation; keep the best weights; stop after `patience`
    epochs without a gain; one progress line per epoch."""

    def __init__(self, users, items, fitted_on, validation, config, epochs, log, prefix=""):
        super().__init__()
        self.args = (users, items, fitted_on, validation)
        self.config, self.epochs, self.log, self.prefix = config, epochs, log, prefix
        self.best, self.best_epoch, self.best_weights, self.scores = -1.0, 0, None, []
        self.started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        users, items, fitted_on, validation = self.args
        model = self.model
        vectors = model.factors_for_export()
        ndcg = ranking_metrics(
            factor_scores(vectors["user_factors"], vectors["item_factors"], vectors["item_bias"]),
            users,
            items,
            fitted_on,
            validation,
            k=10,
            max_users=self.config.eval_users,
            seed=self.config.seed,
        )["ndcg"]
        self.scores.append(ndcg)
        self.log(
            f"{self.prefix}epoch {epoch + 1:>3}/{self.epochs}  loss "
            f"{(logs or {}).get('loss', float('nan')):.4f}  val_ndcg@10 {ndcg:.4f}  "
            f"{time.perf_counter() - self.started:.1f}s"
        )
        if np.isnan(ndcg):
            # No validation user has a relevant held-out item (tiny data): nothing to judge by,
            # so no early stopping; the refit then runs every epoch instead of none.
            self.best_epoch, self.best_weights = epoch + 1, None
        elif ndcg > self.best:
            self.best, self.best_epoch, self.best_weights = ndcg, epoch + 1, model.get_weights()
        elif epoch + 1 - self.best_epoch >= self.config.patience:
            model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class RetrievalLearner:
    """The softmax retrieval vectors; early stopping watches validation NDCG@10 itself."""

    label = "retrieval "

    def __init__(self, config: RetrievalConfig):
        self.config, self.seed = config, config.seed

    def build(self, users: IdIndex, items: IdIndex, frame: pd.DataFrame) -> Any:
        from training.models.retrieval import SoftmaxRetrieval

        config = self.config
        model = SoftmaxRetrieval(len(users), len(items), config.factors, config.l2, config.init_std)
        model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate),
            steps_per_execution=STEPS_PER_EXECUTION,
            jit_compile=model.xla,
        )
        return model

    def fit(self, model, users, items, frame, epochs, validation, log, prefix):
        config = self.config
        chosen, weights = positives(frame, config)
        x, y = users.lookup(chosen["user_id"]), items.lookup(chosen["item_id"])
        keep = (x < users.oov) & (y < items.oov)
        callbacks: list[keras.callbacks.Callback] = [keras.callbacks.TerminateOnNaN()]
        watcher = None
        if validation is not None and len(validation):
            watcher = ValidationRanking(
                users, items, frame, validation, config, epochs, log, prefix
            )
            callbacks.append(watcher)
        batches = UserBatches(
            x[keep], y[keep], weights[keep], len(users), len(items), config.batch_users, config.seed
        )
        history = model.fit(batches, epochs=epochs, verbose=0, callbacks=callbacks)
        record: dict[str, list[float]] = {"loss": [float(v) for v in history.history["loss"]]}
        if watcher is None:
            return record, epochs
        record["val_ndcg"] = watcher.scores
        return record, watcher.best_epoch

    def measure(self, fit: Fit, fitted_on: pd.DataFrame, held_out: pd.DataFrame) -> Metrics:
        vectors = fit.model.factors_for_export()
        scores = factor_scores(
            vectors["user_factors"], vectors["item_factors"], vectors["item_bias"]
        )
        return ranking_metrics(scores, fit.users, fit.items, fitted_on, held_out, k=10)

    def describe(self) -> str:
        return f"retrieval at learning rate {self.config.learning_rate:g}"

    def remedy(self) -> str:
        return "try a lower --retrieval-learning-rate"


def train_retrieval(
    split: Split, config: RetrievalConfig | None = None, refit: bool = True, log: Log = print
) -> RetrievalResult:
    """Fit on train with early stopping on validation NDCG@10; refit on train+validation for the
    chosen epochs (the same ids as the rating model refitted on the same split, so their rows
    line up); report ranking metrics on validation (first fit) and test (final model).

    Raises:
        TrainingDiverged: the loss became NaN or infinite.
    """
    config = config or RetrievalConfig()
    log(
        "retrieval: positives = "
        + ("every rating" if config.positive_from is None else f"ratings >= {config.positive_from}")
        + f" (weights: {config.weighting}), K {config.factors}"
    )
    fitted = fit_and_refit(RetrievalLearner(config), split, config.epochs, refit, log)
    if len(split.test):  # the floor the rankings are read against, on the same test split
        final, fitted_on = fitted.final, split.fitted_on(fitted.refitted)
        popular = popularity_scores(final.items, fitted_on)
        fitted.metrics["popularity_test"] = ranking_metrics(
            popular, final.users, final.items, fitted_on, split.test, k=10
        )
    return RetrievalResult(fitted, config)
