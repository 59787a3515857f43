"""Alternating least squares for the factor rating models (mf, mf_bias), in TensorFlow.

With the item factors fixed, each user's factors (and bias) have a closed form: the solution of
a small ridge problem over the items the user rated. ALS alternates the two sides: every user
at once, then every item at once. It minimises the same objective as the gradient loop with
"example" regularisation (summed over ratings: the squared errors plus `l2 * n_u * |p_u|^2`
for each user and `l2 * n_i * |q_i|^2` for each item, the weighted-lambda penalty of Zhou et
al. 2008), but exactly per half-pass, so it needs a handful of passes where Adam needs dozens
of epochs, and no learning rate.

How a half-pass runs: the ratings are grouped by row (a user, or an item) once per fit, and
rows with about the same number of ratings are padded to one length and cut into chunks of at
most `CHUNK_ENTRIES` ratings. Per chunk, one compiled function gathers the other side's rows
into a [rows, length, d] tensor (the padding gathers a row of zeros), builds the normal
equations as one batched matmul, and solves them as one batched Cholesky. Padding costs at
most ~20% more entries, and it keeps every chunk a dense tensor.

With `cg_steps` (`recsys train --als-cg-steps`), the passes after the first solve the short rows
by a few conjugate-gradient steps from their previous solution instead (the approach of
implicit's CG solver, here for explicit ratings: no Gram matrix is formed, each step multiplies
the gathered rows by a vector twice). A short row's exact solve is mostly its Cholesky, which
costs the same at 20 ratings as at 200; the long rows keep the exact solve, where the Gram
matmul is cheaper than the steps' repeated reads of the gathered rows.

The model's tables are written back after every pass (the out-of-vocabulary row stays zero),
so validation, export and serving read the same Keras model as after the gradient loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from training.als_steps import conjugate_gradient, steps_are_cheaper
from training.fitting import Log
from training.models.kinds import model_kind
from training.spectral import spectral_tables

CHUNK_ENTRIES = 1 << 19  # ratings (padding included) per solve: [chunk, d] float32 ~ 136 MB
# Rows per solve: each row's Gram matrix is [d + 1, d + 1], so 32k rows at K 64 hold ~570 MB.
# Without it a chunk of rows with one rating each (a million-item catalogue) asked for
# [503263, 66, 66] floats (8.8 GB) and ran out of memory.
CHUNK_ROWS = 1 << 15
GROWTH = 1.2  # padded lengths grow by this factor: at most ~20% of a chunk is padding


def padded_lengths(most: int) -> np.ndarray:
    """The lengths rows are padded to: 1, 2, ..., then growing by GROWTH, up to `most`."""
    lengths = [1]
    while lengths[-1] < most:
        lengths.append(max(lengths[-1] + 1, int(np.ceil(lengths[-1] * GROWTH))))
    return np.array(lengths, np.int64)


@dataclass(frozen=True)
class Chunk:
    rows: np.ndarray  # [B] the rows solved (users or items)
    cols: tf.Tensor  # [B, L] int32: the other side's rows rated; `n_cols` pads
    ratings: tf.Tensor  # [B, L] float32; 0 pads
    counts: np.ndarray  # [B] float32: ratings per row


@dataclass(frozen=True)
class Side:
    """One side's ratings, grouped by row in chunks of equal padded length."""

    n_rows: int
    n_cols: int
    counts: np.ndarray  # [n_rows] ratings per row
    chunks: list[Chunk]

    @classmethod
    def of(cls, rows: np.ndarray, cols: np.ndarray, ratings: np.ndarray, n_rows: int,
           n_cols: int, chunk_entries: int = CHUNK_ENTRIES,
           chunk_rows: int = CHUNK_ROWS) -> Side:  # fmt: skip
        """Group the ratings (`rows[k]` rated `cols[k]` as `ratings[k]`) by row."""
        order = np.argsort(rows, kind="stable")
        cols_sorted, ratings_sorted = cols[order].astype(np.int32), ratings[order]
        counts = np.bincount(rows, minlength=n_rows)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rated = np.flatnonzero(counts)
        if not len(rated):
            return cls(n_rows, n_cols, counts, [])
        lengths = padded_lengths(int(counts.max()))
        width = lengths[np.searchsorted(lengths, counts[rated])]
        chunks = []
        # Padding sentinels: one past the last rating reads the appended pad entry.
        cols_padded = np.append(cols_sorted, np.int32(n_cols))
        ratings_padded = np.append(ratings_sorted, np.float32(0))
        end = len(cols_sorted)
        for length in np.unique(width):
            members = rated[width == length]
            per_chunk = max(1, min(chunk_entries // int(length), chunk_rows))
            for first in range(0, len(members), per_chunk):
                part = members[first : first + per_chunk]
                offset = np.arange(length)[None, :]
                take = starts[part][:, None] + offset
                take = np.where(offset < counts[part][:, None], take, end)
                chunks.append(
                    Chunk(
                        part,
                        tf.constant(cols_padded[take]),
                        tf.constant(ratings_padded[take]),
                        counts[part].astype(np.float32),
                    )
                )
        return cls(n_rows, n_cols, counts, chunks)


@tf.function(
    input_signature=[
        tf.TensorSpec([None, None], tf.float32),  # features of the other side, padding row last
        tf.TensorSpec([None], tf.float32),  # what each of the other side's rows predicts alone
        tf.TensorSpec([None, None], tf.int32),
        tf.TensorSpec([None, None], tf.float32),
        tf.TensorSpec([None, None], tf.float32),  # [B, d] the penalty's diagonal
    ]
)
def solve_chunk(features, offsets, cols, ratings, penalty):
    """Each row's ridge solution over its ratings, and the chunk's summed objective (squared
    errors plus penalty at the solution).

    The targets ride along as a last column: the Cholesky factor of [[A, b], [b', t't]] holds
    L^-1 b in its last row (the forward substitution, done by the factorisation) and the
    minimum t't - b'A^-1 b as its last diagonal entry squared, so one back substitution is
    left and no second pass over the gathered rows computes the error (10-16% of a pass at
    20M ratings against cholesky_solve and a residual).
    """
    g = tf.gather(features, cols)  # [B, L, d]
    t = ratings - tf.gather(offsets, cols)  # the padding: 0 - 0
    augmented = tf.concat([g, t[:, :, None]], -1)  # [B, L, d + 1]
    m = tf.linalg.matmul(augmented, augmented, transpose_a=True)
    jitter = 1e-4 * m[:, -1, -1] + 1e-6  # keeps the last pivot positive in float32
    factor = tf.linalg.cholesky(m + tf.linalg.diag(tf.concat([penalty, jitter[:, None]], -1)))
    d = tf.shape(g)[-1]
    x = tf.linalg.triangular_solve(
        factor[:, :d, :d], factor[:, d, :d, None], lower=True, adjoint=True
    )[:, :, 0]
    return x, tf.reduce_sum(tf.square(factor[:, d, d]) - jitter)


Exchange = Callable[[np.ndarray, float], tuple[np.ndarray, float]]


def half_pass(
    side: Side,
    features: np.ndarray,
    offsets: np.ndarray,
    penalty: np.ndarray,
    weights: Callable[[np.ndarray], np.ndarray],
    place: tuple[int, int] = (0, 1),
    exchange: Exchange | None = None,
    start: np.ndarray | None = None,
    steps: int = 0,
) -> tuple[np.ndarray, float]:
    """Solve every row of `side` given the other side's `features` ([n_cols, d]) and
    `offsets` ([n_cols]: the global mean plus that side's bias, or the mean alone).

    `penalty` ([d]) is the L2 weight of each unknown, multiplied per row by `weights(counts)`.
    Rows with no rating keep zeros. Returns the solutions ([n_rows, d]) and the objective at
    them: the squared errors of the ratings plus this side's penalty.

    On a cluster, `place` (this worker's index, the number of workers) picks every workers-th
    chunk, and `exchange` sums the workers' tables (each holds zeros where the others solved)
    and objectives: one exchange per half-pass.

    With `start` (this side's previous table) and `steps` > 0, the rows where they are cheaper
    (`steps_are_cheaper`) take that many conjugate-gradient steps from their previous solution
    instead of the exact solve.
    """
    d = features.shape[1]
    padded_features = tf.constant(np.vstack([features, np.zeros((1, d), np.float32)]))
    padded_offsets = tf.constant(np.append(offsets, np.float32(0)).astype(np.float32))
    solved = np.zeros((side.n_rows, d), np.float32)
    objective = 0.0
    index, workers = place
    for chunk in side.chunks[index::workers]:
        weighted = tf.constant(weights(chunk.counts)[:, None] * penalty[None, :])
        if steps and start is not None and steps_are_cheaper(chunk.cols.shape[1], d, steps):
            x, part = conjugate_gradient(steps)(
                padded_features, padded_offsets, chunk.cols, chunk.ratings, weighted,
                tf.constant(start[chunk.rows]),
            )  # fmt: skip
        else:
            x, part = solve_chunk(
                padded_features, padded_offsets, chunk.cols, chunk.ratings, weighted
            )
        solved[chunk.rows] = x.numpy()
        objective += float(part)
    if exchange is not None:
        solved, objective = exchange(solved, objective)
    return solved, objective


def summed_across_workers(strategy: tf.distribute.Strategy) -> Exchange:
    """An exchange for `half_pass`: one all-reduce (a sum) of a table and a figure across the
    strategy's workers."""

    @tf.function
    def all_reduce(table, figure):
        # Each worker's own values as per-replica ones, then summed as the loop sums losses.
        mine = strategy.run(lambda t, f: (tf.identity(t), tf.identity(f)), args=(table, figure))
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for value in mine]

    def exchange(table: np.ndarray, figure: float) -> tuple[np.ndarray, float]:
        summed, total = all_reduce(tf.constant(table), tf.constant(figure, tf.float64))
        return summed.numpy(), float(total)

    return exchange


class ALS:
    """The alternating solver of one RatingModel (mf or mf_bias) over encoded ratings."""

    def __init__(
        self,
        model: Any,
        users: np.ndarray,
        items: np.ndarray,
        ratings: np.ndarray,
        place: tuple[int, int] = (0, 1),
        exchange: Exchange | None = None,
        cg_steps: int = 0,
    ):
        """`cg_steps` > 0: every pass after the first solves each row where they cost less than
        the exact solve (`steps_are_cheaper`) by that many conjugate-gradient steps from its
        previous solution (`conjugate_gradient`); 0: every pass solves exactly."""
        if cg_steps < 0:
            raise ValueError(f"conjugate-gradient steps must be 0 (exact) or more, not {cg_steps}")
        if not model_kind(model.kind).als:
            raise ValueError(f"--solver als trains mf and mf_bias, not {model.kind}")
        self.model, self.n = model, len(ratings)
        self.place, self.exchange = place, exchange
        self.cg_steps, self.passes = cg_steps, 0
        n_users, n_items = model.n_users, model.n_items
        started = time.perf_counter()
        self.by_user = Side.of(users, items, ratings, n_users, n_items)
        self.by_item = Side.of(items, users, ratings, n_items, n_users)
        self.layout_seconds = time.perf_counter() - started
        self.table_penalty = model.regularization == "table"
        k = model.factors
        self.penalty = np.full(k + model.use_bias, model.l2, np.float32)
        if model.use_bias:
            self.penalty[k] = model.bias_l2

    def weights(self, counts: np.ndarray) -> np.ndarray:
        """Each row's multiple of the L2 weights, given its ratings. "example": a row's penalty
        grows with its ratings; "table": every row's is the same (the whole table's norm added
        to each example's loss, so N times per pass)."""
        return np.full_like(counts, self.n) if self.table_penalty else counts

    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        """[p_u, b_u] and [q_i, b_i] from the model (the biases as a last column, for mf_bias)."""
        arrays = self.model.factors_for_export()
        users, items = arrays["user_factors"], arrays["item_factors"]
        if self.model.use_bias:
            users = np.hstack([users, arrays["user_bias"][:, None]])
            items = np.hstack([items, arrays["item_bias"][:, None]])
        return users.astype(np.float32), items.astype(np.float32)

    def solve(self, side: Side, other: np.ndarray, start: np.ndarray | None = None,
              steps: int = 0) -> tuple[np.ndarray, float]:  # fmt: skip
        """One side's half-pass given the other side's table (factors, then the bias); from
        `start`, this side's table, by `steps` conjugate-gradient steps when both are given."""
        mean = np.float32(self.model.global_mean)
        if self.model.use_bias:
            k = self.model.factors
            features = np.hstack([other[:, :k], np.ones((len(other), 1), np.float32)])
            offsets = mean + other[:, k]
        else:
            features, offsets = other, np.full(len(other), mean, np.float32)
        return half_pass(
            side, features, offsets, self.penalty, self.weights, self.place, self.exchange,
            start, steps,
        )  # fmt: skip

    def run_pass(self) -> dict[str, float]:
        """Users given items, then items given users; the tables are written to the model.
        Returns the pass's mean loss (squared error plus the penalty, per rating, as the
        gradient loop reports it) and the training RMSE."""
        users, items = self.tables()
        steps = self.cg_steps if self.passes else 0
        users, _ = self.solve(self.by_user, items, users, steps)
        items, objective = self.solve(self.by_item, users, items, steps)
        self.write(users, items)
        self.passes += 1
        penalties = [self.penalty_of(self.by_user, users), self.penalty_of(self.by_item, items)]
        squares = max(objective - penalties[1], 0.0)
        return {
            "loss": (objective + penalties[0]) / self.n,
            "rmse": float(np.sqrt(squares / self.n)),
        }

    def penalty_of(self, side: Side, table: np.ndarray) -> float:
        """The L2 term of one side's table, summed as the objective sums it."""
        return float(np.sum(self.weights(side.counts) * (np.square(table) @ self.penalty)))

    def write(self, users: np.ndarray, items: np.ndarray) -> None:
        m, k = self.model, self.model.factors
        for layer, rows in (
            (m.user_factors, users[:, :k]),
            (m.item_factors, items[:, :k]),
            *(((m.user_bias, users[:, k:]), (m.item_bias, items[:, k:])) if m.use_bias else ()),
        ):
            layer.table.embeddings.assign(np.vstack([rows, np.zeros((1, rows.shape[1]))]))


def fit_als(model: Any, train: Any, validation: Any, settings: Any, log: Log, prefix: str = "",
            start: str = "spectral", cg_steps: int = 0):  # fmt: skip
    """`training.loop.fit_rating_model`'s contract with ALS passes for epochs: early stopping
    on the validation MSE, the best pass's tables restored. `start` "spectral": the item
    factors start from the residuals' leading singular vectors (training.spectral); "random":
    from the model's own initial tables. `cg_steps`: see `ALS`.

    Under a multi-worker strategy every worker solves its share of each half-pass's chunks and
    the tables are summed across workers once per half-pass (every worker then holds the same
    tables, as the gradient loop's workers hold the same weights).

    Raises:
        ValueError: the model is not mf or mf_bias.
    """
    from training.loop import train_epochs, validation_figures, worker_place

    if start not in ("spectral", "random"):  # before the ratings are grouped
        raise ValueError(f"unknown ALS start {start!r}; choose spectral or random")
    strategy = tf.distribute.get_strategy()
    place = worker_place(strategy)
    exchange = summed_across_workers(strategy) if place[1] > 1 else None
    solver = ALS(model, train.users, train.items, train.ratings, place, exchange, cg_steps)
    log(f"{prefix}als: {len(train):,} ratings grouped by user and by item in "
        f"{solver.layout_seconds:.1f} s" + (f"; worker {place[0]} of {place[1]} solves its "
        "share of the chunks, the tables summed across workers once per half-pass"
        if place[1] > 1 else ""))  # fmt: skip
    if start == "spectral":
        started = time.perf_counter()
        solver.write(*spectral_tables(
            train.users, train.items, train.ratings, model.n_users, model.n_items,
            model.factors, float(model.global_mean), model.use_bias, settings.seed,
        ))  # fmt: skip
        log(f"{prefix}als: spectral start in {time.perf_counter() - started:.1f} s")
    evaluate = validation_figures(model, validation)
    return train_epochs(
        model, lambda _: solver.run_pass(), None, settings, evaluate, "val_loss", log, prefix
    )
