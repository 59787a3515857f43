"""Conjugate-gradient steps for ALS's rows (`training.als`, `--als-cg-steps`): the ridge problem
of a chunk of rows solved from each row's previous solution without forming a Gram matrix, and
the rule that says for which rows that costs less than the exact solve."""

from __future__ import annotations

import functools
from collections.abc import Callable

import tensorflow as tf

# What a row's exact solve costs in units of one matrix-vector pass over its gathered ratings
# (measured per chunk at 20M ratings and d = 65 unknowns, bench/README.md): the Gram matmul
# ~4.2 passes per rating, and a row's Cholesky as much as ~950 passes over one rating. The Gram
# grows as d^2 and the Cholesky as d^3 where a pass grows as d, hence the factors of d and d^2.
GRAM_PASSES = 4.2 / 65  # times d, per rating
CHOLESKY_PASSES = 950 / 65**2  # times d^2, per row


def steps_are_cheaper(length: int, d: int, steps: int) -> bool:
    """Whether `steps` conjugate-gradient steps (2 * steps + 2 passes over the gathered rows)
    cost less than the exact solve for rows of `length` ratings and `d` unknowns: at d = 65,
    rows shorter than ~530 ratings with 2 steps, ~250 with 3."""
    passes = 2 * steps + 2
    return length * (passes - GRAM_PASSES * d) < CHOLESKY_PASSES * d * d


@functools.cache
def conjugate_gradient(steps: int) -> Callable[..., tuple[tf.Tensor, tf.Tensor]]:
    """`training.als.solve_chunk`'s problem by `steps` conjugate-gradient steps from each
    row's previous solution `start` ([B, d]), never forming a Gram matrix: each step multiplies
    the gathered [B, L, d] rows by a vector twice, O(L d) a row where the exact solve's normal
    equations cost O(L d^2) and its Cholesky O(d^3). Returns the rows and the chunk's objective
    at them (squared errors plus penalty), as `solve_chunk` does; the predictions are carried
    along the steps, so the objective costs no extra product.
    """

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.float32),
            tf.TensorSpec([None], tf.float32),
            tf.TensorSpec([None, None], tf.int32),
            tf.TensorSpec([None, None], tf.float32),
            tf.TensorSpec([None, None], tf.float32),
            tf.TensorSpec([None, None], tf.float32),  # [B, d] where each row starts
        ]
    )
    def solve(features, offsets, cols, ratings, penalty, start):
        g = tf.gather(features, cols)  # [B, L, d]
        t = ratings - tf.gather(offsets, cols)
        x, predicted = start, tf.linalg.matvec(g, start)
        residual = tf.linalg.matvec(g, t - predicted, transpose_a=True) - penalty * x
        direction, norm = residual, tf.reduce_sum(tf.square(residual), -1)
        for _ in range(steps):
            moved = tf.linalg.matvec(g, direction)  # [B, L]
            product = tf.linalg.matvec(g, moved, transpose_a=True) + penalty * direction
            # A row already solved (a zero residual) takes no step: 0 / 0 is 0 here.
            alpha = tf.math.divide_no_nan(norm, tf.reduce_sum(direction * product, -1))[:, None]
            x, predicted = x + alpha * direction, predicted + alpha * moved
            residual = residual - alpha * product
            new_norm = tf.reduce_sum(tf.square(residual), -1)
            direction = residual + tf.math.divide_no_nan(new_norm, norm)[:, None] * direction
            norm = new_norm
        return x, tf.reduce_sum(tf.square(t - predicted)) + tf.reduce_sum(penalty * tf.square(x))

    return solve
