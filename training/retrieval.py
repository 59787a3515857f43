"""Train the top-N vectors: explicit ratings become positives, early stopping watches the
validation NDCG@10 itself, then a refit on train+validation (like the rating models)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from training.config import RetrievalConfig
from training.data.split import IdIndex, Split
from training.evaluation.ranking import factor_scores, popularity_scores, ranking_metrics
from training.fitting import Fit, Log, Metrics, Trained, fit_and_refit

if TYPE_CHECKING:
    from training.itemitem import ItemItemResult
    from training.ranker import RankerResult


@dataclass
class RetrievalResult(Trained):
    """The fitted vectors (final model), the ids their rows stand for, how they were chosen and
    how they rank."""

    config: RetrievalConfig
    # The item-item weights blended with these vectors (training.itemitem), when fitted.
    item_item: ItemItemResult | None = None
    # The learned second stage over the blend (training.ranker), when fitted.
    ranker: RankerResult | None = None

    def summary(self) -> dict[str, Any]:
        return {
            **asdict(self.config),
            "best_epoch": self.best_epoch,
            **self.provenance(),
            "train_seconds": round(self.seconds, 2),
            "item_item": self.item_item.summary() if self.item_item is not None else None,
            "ranker": self.ranker.summary() if self.ranker is not None else None,
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


@dataclass(frozen=True)
class Positives:
    """The positives grouped by user (CSR): user u's items and weights are
    `items[indptr[u]:indptr[u + 1]]`; `active` the users with at least one."""

    indptr: np.ndarray
    items: np.ndarray
    weights: np.ndarray
    active: np.ndarray

    @classmethod
    def group(cls, users, items, weights, n_users: int) -> Positives:
        order = np.argsort(users, kind="stable")
        counts = np.bincount(users, minlength=n_users)
        return cls(
            np.concatenate([[0], np.cumsum(counts)]).astype(np.int32),
            items[order].astype(np.int32),
            weights[order].astype(np.float32),
            np.flatnonzero(counts).astype(np.int32),
        )

    def item_share(self, n_items: int) -> np.ndarray:
        """Each item's share of the positives (what a batch's positives draw items by)."""
        return (np.bincount(self.items, minlength=n_items) / len(self.items)).astype(np.float32)


def vector_scores(model):
    """What the service scores a user's items with: their vector times the item matrix plus
    the item bias (training.evaluation.ranking.factor_scores over the model's tables)."""
    vectors = model.factors_for_export()
    return factor_scores(vectors["user_factors"], vectors["item_factors"], vectors["item_bias"])


def fit_retrieval_model(model, positives: Positives, config, settings, evaluate, log, prefix):
    """Train `model` on `positives` in batches of `settings.batch_size` users (training.loop's
    epochs, early stopping on validation NDCG@10). Returns what `train_epochs` returns."""
    import tensorflow as tf

    from training.loop import optimizer_step, train_epochs, worker_slice

    strategy = tf.distribute.get_strategy()
    indptr, items = tf.constant(positives.indptr), tf.constant(positives.items)
    weights, active = tf.constant(positives.weights), tf.constant(positives.active)
    negatives = config.negatives if config.sampled(model.n_items) else 0
    share = tf.constant(positives.item_share(model.n_items)) if negatives else None
    batch = settings.batch_size
    steps = -(-len(positives.active) // batch)
    offset, size = worker_slice(strategy, batch)
    replicas = strategy.num_replicas_in_sync

    def loss_of(users, rows, taken_items, taken_weights):
        total = None
        if replicas > 1:  # the batch's weight, all workers' positives (see training_loss)
            context = tf.distribute.get_replica_context()
            total = context.all_reduce("sum", tf.reduce_sum(taken_weights)) / replicas
        return model.training_loss(users, rows, taken_items, taken_weights, negatives, share, total)

    step = optimizer_step(model, loss_of, strategy)

    @tf.function
    def run_epoch(order):
        total = tf.constant(0.0)
        for s in tf.range(steps):
            users = tf.gather(active, order[s * batch + offset : s * batch + offset + size])
            ranges = tf.ragged.range(tf.gather(indptr, users), tf.gather(indptr, users + 1))
            taken = ranges.flat_values
            args = (users, tf.cast(ranges.value_rowids(), tf.int32), tf.gather(items, taken))
            loss = strategy.run(step, args=(*args, tf.gather(weights, taken)))
            total += strategy.reduce(tf.distribute.ReduceOp.MEAN, loss, axis=None)
        return {"loss": total / tf.cast(steps, tf.float32)}

    return train_epochs(
        model, run_epoch, len(positives.active), settings, evaluate, "val_ndcg", log, prefix
    )


class RetrievalLearner:
    """The softmax retrieval vectors; early stopping watches validation NDCG@10 itself."""

    label = "retrieval "

    def __init__(self, config: RetrievalConfig):
        self.config, self.seed = config, config.seed

    def build(self, users: IdIndex, items: IdIndex, frame: pd.DataFrame) -> Any:
        from training.models.retrieval import SoftmaxRetrieval
        from training.optimizers import RowAdam

        config = self.config
        model = SoftmaxRetrieval(len(users), len(items), config.factors, config.l2, config.init_std)
        model.compile(optimizer=RowAdam(config.learning_rate))
        model.optimizer.build(model.trainable_variables)
        return model

    def fit(self, model, users, items, frame, epochs, validation, log, prefix):
        from training.loop import LoopSettings

        # "auto" settles here for callers that pass it unresolved (bench/retrieval.py), and
        # describe() and remedy() then name the solver that ran.
        self.config = config = self.config.resolved(len(items))
        chosen, weights = positives(frame, config)
        x, y = users.lookup(chosen["user_id"]), items.lookup(chosen["item_id"])
        keep = (x < users.oov) & (y < items.oov)
        grouped = Positives.group(x[keep], y[keep], weights[keep], len(users))
        evaluate = None
        if validation is not None and len(validation):

            def evaluate() -> dict[str, float]:
                ndcg = ranking_metrics(
                    vector_scores(model), users, items, frame, validation, k=10,
                    max_users=config.eval_users, seed=config.seed,
                )["ndcg"]  # fmt: skip
                return {"val_ndcg": ndcg}

        settings = LoopSettings(config.batch_users, epochs, config.patience, config.seed)
        if config.solver == "als":
            from training.als_implicit import fit_implicit_als

            return fit_implicit_als(model, grouped, config, settings, evaluate, log, prefix)
        if config.sampled(len(items)):
            log(
                f"{prefix}{len(items):,} items > {config.sampled_above:,}: sampled softmax "
                f"(the batch's items and {config.negatives:,} uniform negatives, logQ-corrected)"
            )
        return fit_retrieval_model(model, grouped, config, settings, evaluate, log, prefix)

    def measure(self, fit: Fit, fitted_on: pd.DataFrame, held_out: pd.DataFrame) -> Metrics:
        scores = vector_scores(fit.model)
        return ranking_metrics(scores, fit.users, fit.items, fitted_on, held_out, k=10)

    def describe(self) -> str:
        if self.config.solver == "als":
            return f"retrieval ALS at l2 {self.config.als_l2:g}"
        return f"retrieval at learning rate {self.config.learning_rate:g}"

    def remedy(self) -> str:
        if self.config.solver == "als":
            return "try a larger --retrieval-als-l2"
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
    config = (config or RetrievalConfig()).resolved(split.train["item_id"].nunique())
    log(
        "retrieval: positives = "
        + ("every rating" if config.positive_from is None else f"ratings >= {config.positive_from}")
        + f" (weights: {config.weighting}), K {config.factors}, fitted by {config.solver}"
    )
    fitted = fit_and_refit(RetrievalLearner(config), split, config.epochs, refit, log)
    if len(split.test):  # the floor the rankings are read against, on the same test split
        final, fitted_on = fitted.final, split.fitted_on(fitted.refitted)
        popular = popularity_scores(final.items, fitted_on)
        fitted.metrics["popularity_test"] = ranking_metrics(
            popular, final.users, final.items, fitted_on, split.test, k=10
        )
    return RetrievalResult(fitted, config)
