"""The training loop of the rating models and the retrieval vectors: a whole epoch is one call
of one compiled graph.

Keras' `fit` was replaced here for three reasons measured on the ml-20m-shaped set
(bench/README.md, "Scale"): its numpy adapter and per-step dispatch cost more than the step
itself at large batches; its Adam rewrote every embedding row every step (`RowAdam` fixes that,
but only a loop that owns the step can keep the penalty's lookups shared with the prediction's);
and under `MultiWorkerMirroredStrategy` Keras 3's `fit` has open problems (keras#20585,
tensorflow#72388) that a loop calling `strategy.run` itself avoids.

The ratings live in memory as three tensors. Each epoch draws a seeded permutation in numpy
(every worker draws the same one), pads it to whole batches by wrapping around, and the graph
walks it in a `tf.range` loop: gather the batch, take the step, add up the loss. The graph is
traced once per fit, not per epoch. Under a multi-worker strategy, worker w takes the w-th
slice of every global batch and the gradients are summed across workers by the optimizer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from training.fitting import Log

EVAL_BATCH = 65536


@dataclass(frozen=True)
class Arrays:
    """Encoded ratings: user rows, item rows, ratings."""

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray

    def __len__(self) -> int:
        return len(self.ratings)

    def tensors(self) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        return (
            tf.constant(self.users, tf.int32),
            tf.constant(self.items, tf.int32),
            tf.constant(self.ratings, tf.float32),
        )


@dataclass
class LoopSettings:
    batch_size: int
    epochs: int
    patience: int
    seed: int
    # An epoch improves only when it beats the best by this share of it (0: any gain counts).
    min_gain: float = 0.0


def worker_place(strategy: tf.distribute.Strategy) -> tuple[int, int]:
    """(this worker's place, the number of workers): places 0..workers-1 are a "chief" task
    first, then the "worker" tasks by index; (0, 1) for one process."""
    resolver = getattr(strategy, "cluster_resolver", None)
    workers = strategy.num_replicas_in_sync
    if workers == 1 or resolver is None:
        return 0, 1
    chiefs = len(resolver.cluster_spec().as_dict().get("chief", []))
    return resolver.task_id + (chiefs if resolver.task_type == "worker" else 0), workers


def worker_slice(strategy: tf.distribute.Strategy, batch_size: int) -> tuple[int, int]:
    """(offset, length) of this worker's share of every global batch."""
    place, workers = worker_place(strategy)
    if workers == 1:
        return 0, batch_size
    if batch_size % workers:
        raise ValueError(
            f"batch size {batch_size} is not divisible by the {workers} workers of the cluster"
        )
    share = batch_size // workers
    return place * share, share


def padded_order(rng: np.random.Generator, n: int, batch: int) -> tf.Tensor:
    """A permutation of range(n), wrapped around to whole batches (every batch full, so every
    worker's share is the same size)."""
    order = np.arange(n, dtype=np.int32)
    rng.shuffle(order)  # in place in int32: 0.8 s for 16M, `permutation` + a cast took 1.2 s
    steps = -(-n // batch)
    return tf.constant(np.concatenate([order, order[: steps * batch - n]]))


def train_epochs(
    model: Any,
    run_epoch: Callable[[tf.Tensor | None], dict[str, Any]],
    rows: int | None,
    settings: LoopSettings,
    evaluate: Callable[[], dict[str, float]] | None,
    watch: str,
    log: Log,
    prefix: str = "",
) -> tuple[dict[str, list[float]], int]:
    """The epochs: a seeded permutation of `rows` per epoch through `run_epoch` (a compiled
    graph returning the epoch's mean "loss" and any other training figures), then `evaluate`'s
    validation figures; stop after `settings.patience` epochs in which `watch` (a key of those
    figures; "val_loss" falls, any other rises) did not improve by `settings.min_gain` of its
    best, and restore the best weights;
    stop at a non-finite loss. `rows` None: no permutation is drawn (`run_epoch(None)`; the
    ALS passes visit every rating in a fixed order).

    Returns:
        The per-epoch history ("loss", the validation figures, "epoch_seconds") and the epoch
        to keep (the best validation epoch, else the last run).
    """
    sign = 1.0 if watch == "val_loss" else -1.0
    rng = np.random.default_rng(settings.seed)
    history: dict[str, list[float]] = {"loss": [], "epoch_seconds": []}  # in this order
    best, best_epoch, best_weights = np.inf, 0, None
    for epoch in range(settings.epochs):
        started = time.perf_counter()
        # Drawn in between epochs: drawn in a thread while the last one trained, it slowed
        # the epoch more than it saved (18.4 s vs 17.1 s on 16M ratings; the 2 cores are busy).
        order = None if rows is None else padded_order(rng, rows, settings.batch_size)
        trained = run_epoch(order)
        loss = float(trained["loss"])
        line = [f"{prefix}epoch {epoch + 1:>3}/{settings.epochs}"]
        figures = evaluate() if evaluate is not None else {}
        for name, value in [*((k, float(v)) for k, v in trained.items()), *figures.items()]:
            history.setdefault(name, []).append(value)
            line.append(f"{name} {value:.4f}")
        history["epoch_seconds"].append(time.perf_counter() - started)
        log("  ".join([*line, f"{history['epoch_seconds'][-1]:.1f}s"]))
        if not np.isfinite(loss):
            break
        if not figures:
            continue
        score = sign * figures[watch]
        if np.isnan(score):
            # Nothing to judge by (no validation user with a relevant held-out item): no early
            # stopping, and the refit runs every epoch.
            best_epoch, best_weights = epoch + 1, None
        elif best == np.inf or score < best - settings.min_gain * abs(best):
            best, best_epoch, best_weights = score, epoch + 1, model.get_weights()
        elif epoch + 1 - best_epoch >= settings.patience:
            break
    if best_weights is not None:
        model.set_weights(best_weights)
    return history, best_epoch or len(history["loss"])


def optimizer_step(model: Any, loss_of: Callable[..., Any], strategy: tf.distribute.Strategy):
    """A function of a batch that takes one step of `model.optimizer` on `loss_of(*batch)` and
    returns what `loss_of` returned (the loss, or a tuple of it and other figures to report).
    The loss is divided by the number of workers: the optimizer sums their gradients."""
    replicas = strategy.num_replicas_in_sync

    def step(*batch):
        with tf.GradientTape() as tape:
            out = loss_of(*batch)
            loss = out[0] if isinstance(out, tuple) else out
            scaled = loss / replicas
        variables = model.trainable_variables
        gradients = tape.gradient(scaled, variables)
        model.optimizer.apply_gradients(list(zip(gradients, variables, strict=True)))
        return out

    return step


def fit_rating_model(
    model: Any,
    train: Arrays,
    validation: Arrays | None,
    settings: LoopSettings,
    log: Log,
    prefix: str = "",
) -> tuple[dict[str, list[float]], int]:
    """Train `model` (a `training.models.base.RatingModel`, built and compiled with its
    optimizer under the current strategy's scope) on `train`, early stopping on the validation
    MSE ("val_loss"; "val_rmse" is logged beside it; "rmse" is the training batches' RMSE,
    without the L2 terms). Returns what `train_epochs` returns."""
    strategy = tf.distribute.get_strategy()
    users, items, ratings = train.tensors()
    batch = settings.batch_size
    steps = -(-len(train) // batch)
    offset, share = worker_slice(strategy, batch)
    step = optimizer_step(model, lambda x, y: model.training_loss(x, y, with_mse=True), strategy)

    @tf.function
    def run_epoch(order):
        total, squares = tf.constant(0.0), tf.constant(0.0)
        for s in tf.range(steps):
            rows = order[s * batch + offset : s * batch + offset + share]
            x = {"user": tf.gather(users, rows), "item": tf.gather(items, rows)}
            loss, mse = strategy.run(step, args=(x, tf.gather(ratings, rows)))
            total += strategy.reduce(tf.distribute.ReduceOp.MEAN, loss, axis=None)
            squares += strategy.reduce(tf.distribute.ReduceOp.MEAN, mse, axis=None)
        count = tf.cast(steps, tf.float32)
        return {"loss": total / count, "rmse": tf.sqrt(squares / count)}

    evaluate = validation_figures(model, validation)
    return train_epochs(model, run_epoch, len(train), settings, evaluate, "val_loss", log, prefix)


def validation_figures(
    model: Any, validation: Arrays | None
) -> Callable[[], dict[str, float]] | None:
    """What a rating model's epochs are judged by: a function returning the validation MSE
    ("val_loss", watched by early stopping) and RMSE; None without validation."""
    if validation is None or not len(validation):
        return None
    mse = validation_mse(model, validation)

    def evaluate() -> dict[str, float]:
        value = mse()
        return {"val_loss": value, "val_rmse": float(np.sqrt(value))}

    return evaluate


def validation_mse(model: Any, validation: Arrays):
    """A function returning the model's MSE on `validation` (ids the model does not know are
    already encoded as its out-of-vocabulary rows)."""
    users, items, ratings = validation.tensors()
    size = len(validation)

    @tf.function
    def squared_error():
        total = tf.constant(0.0)
        for start in tf.range(0, size, EVAL_BATCH):
            end = tf.minimum(start + EVAL_BATCH, size)
            x = {"user": users[start:end], "item": items[start:end]}
            total += tf.reduce_sum(tf.square(ratings[start:end] - model(x, training=False)))
        return total / size

    return lambda: float(squared_error())
