"""Alternating least squares for the retrieval vectors: implicit feedback (Hu, Koren and Volinsky
2008), in TensorFlow, through the same padded chunks as the rating models' ALS (`training.als`).

Every (user, item) pair counts: a rated pair is a positive with confidence c_ui = 1 + alpha *
w_ui (w the positive's weight: its rating over the mean rating, or 1), every other pair a zero
with confidence 1. The vectors minimise

    sum_{u, i} c_ui (p_ui - x_u . y_i)^2 + l2 * (|X|^2 + |Y|^2),    p_ui = 1 if rated, else 0.

With the items fixed, a user's x_u solves one K x K system,

    (Y'Y + sum_{i rated} (c_ui - 1) y_i y_i' + l2 I) x_u = sum_{i rated} c_ui y_i,

where Y'Y is shared by every user (one product per half-pass) and the rest runs over the
user's own positives only: the chunks' gather, one batched matmul, one batched Cholesky. The
items' side is the same with the roles swapped. Scores are x_u . y_i (no bias: the exported
item bias is zero), so /recommend, its index and fold-in read these vectors like any others;
the service folds a user in with the same system (`app.events.implicit_fold`).

Why here: the sampled softmax (training.retrieval) learns popularity and little else on large
catalogues (1.04x popularity on the planted 20M set, where implicit's ALS reached 2.01x;
bench/README.md), and its epochs cost 40-60 s each at that size.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import tensorflow as tf

from training.als import Exchange, Side, summed_across_workers
from training.fitting import Log


@tf.function(
    input_signature=[
        tf.TensorSpec([None, None], tf.float32),  # the other side's vectors, a zero row last
        tf.TensorSpec([None, None], tf.float32),  # [d, d] their Gram matrix plus l2 I
        tf.TensorSpec([None, None], tf.int32),
        tf.TensorSpec([None, None], tf.float32),  # confidence per positive; padding gathers 0s
    ]
)
def solve_implicit_chunk(features, gram, cols, confidence):
    """Each row's solution of its implicit-feedback normal equations, and the chunk's part of
    the objective at them that the positives change: sum c (1 - s)^2 - s^2 (s = x . y)."""
    g = tf.gather(features, cols)  # [B, L, d]
    scaled = g * (confidence - 1.0)[:, :, None]
    a = tf.linalg.matmul(scaled, g, transpose_a=True) + gram  # [B, d, d]
    b = tf.linalg.matmul(g, confidence[:, :, None], transpose_a=True)  # [B, d, 1]
    x = tf.linalg.cholesky_solve(tf.linalg.cholesky(a), b)[:, :, 0]
    s = tf.einsum("bld,bd->bl", g, x)
    positive = tf.cast(confidence > 0, tf.float32)  # padding: no positive
    return x, tf.reduce_sum(positive * (confidence * tf.square(1.0 - s) - tf.square(s)))


def implicit_half_pass(
    side: Side,
    features: np.ndarray,
    l2: float,
    place: tuple[int, int] = (0, 1),
    exchange: Exchange | None = None,
) -> tuple[np.ndarray, float]:
    """Solve every row of `side` (its chunks' values are confidences) given the other side's
    `features` ([n_cols, d]). Rows with no positive solve (Y'Y + l2 I) x = 0: zeros. Returns
    the solutions and the positives' part of the objective (see `solve_implicit_chunk`).
    `place` and `exchange` split the chunks across workers as `training.als.half_pass` does."""
    d = features.shape[1]
    other = np.asarray(features, np.float32)
    gram = other.T.astype(np.float64) @ other + l2 * np.eye(d)
    padded = tf.constant(np.vstack([other, np.zeros((1, d), np.float32)]))
    gram_t = tf.constant(gram.astype(np.float32))
    solved = np.zeros((side.n_rows, d), np.float32)
    objective = 0.0
    index, workers = place
    for chunk in side.chunks[index::workers]:
        x, part = solve_implicit_chunk(padded, gram_t, chunk.cols, chunk.ratings)
        solved[chunk.rows] = x.numpy()
        objective += float(part)
    if exchange is not None:
        solved, objective = exchange(solved, objective)
    return solved, objective


class ImplicitALS:
    """The alternating solver of one retrieval model's tables (`SoftmaxRetrieval`'s user and
    item vectors; its item bias stays zero) over grouped positives."""

    def __init__(
        self,
        model: Any,
        users: np.ndarray,
        items: np.ndarray,
        weights: np.ndarray,
        alpha: float,
        l2: float,
        place: tuple[int, int] = (0, 1),
        exchange: Exchange | None = None,
    ):
        if alpha <= 0:
            raise ValueError(f"alpha must be positive, not {alpha:g}")
        self.model, self.n, self.l2 = model, len(weights), float(l2)
        self.place, self.exchange = place, exchange
        confidence = (1.0 + alpha * np.asarray(weights, np.float64)).astype(np.float32)
        started = time.perf_counter()
        self.by_user = Side.of(users, items, confidence, model.n_users, model.n_items)
        self.by_item = Side.of(items, users, confidence, model.n_items, model.n_users)
        self.layout_seconds = time.perf_counter() - started
        model.item_bias.assign(np.zeros(model.n_items, np.float32))  # scores are x . y alone

    def run_pass(self) -> dict[str, float]:
        """Users given items, then items given users; the tables are written to the model.
        Returns the objective per positive ("loss")."""
        items = np.asarray(self.model.item_factors.numpy(), np.float32)
        users, _ = implicit_half_pass(self.by_user, items, self.l2, self.place, self.exchange)
        items, positives = implicit_half_pass(
            self.by_item, users, self.l2, self.place, self.exchange
        )
        self.model.user_factors.assign(users)
        self.model.item_factors.assign(items)
        return {"loss": self.objective(users, items, positives) / self.n}

    def objective(self, users: np.ndarray, items: np.ndarray, positives: float) -> float:
        """The whole objective: every pair's squared score (trace(X'X Y'Y)), corrected on the
        positives, plus the penalty."""
        u, i = users.astype(np.float64), items.astype(np.float64)
        every_pair = float(np.sum((u.T @ u) * (i.T @ i)))
        return every_pair + positives + self.l2 * float(np.sum(u * u) + np.sum(i * i))


def fit_implicit_als(model: Any, positives: Any, config: Any, settings: Any, evaluate: Any,
                     log: Log, prefix: str = "") -> tuple[dict[str, list[float]], int]:  # fmt: skip
    """`training.retrieval.fit_retrieval_model`'s contract with implicit ALS passes for epochs:
    early stopping on validation NDCG@10, the best pass's vectors restored. `positives` is a
    `training.retrieval.Positives`; on a cluster every worker solves its share of each
    half-pass's chunks and the tables are summed once per half-pass."""
    from training.loop import train_epochs, worker_place

    strategy = tf.distribute.get_strategy()
    place = worker_place(strategy)
    exchange = summed_across_workers(strategy) if place[1] > 1 else None
    counts = np.diff(positives.indptr)
    users = np.repeat(np.arange(len(counts)), counts)
    alpha, l2 = config.alpha, config.als_l2
    solver = ImplicitALS(model, users, positives.items, positives.weights, alpha, l2, place,
                         exchange)  # fmt: skip
    log(f"{prefix}implicit als: {solver.n:,} positives grouped by user and by item in "
        f"{solver.layout_seconds:.1f} s (alpha {alpha:g}, l2 {l2:g})")  # fmt: skip
    return train_epochs(
        model, lambda _: solver.run_pass(), None, settings, evaluate, "val_ndcg", log, prefix
    )
