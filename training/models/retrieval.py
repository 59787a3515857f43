"""A model trained for top-N, not for ratings: the vectors /recommend ranks with."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


class SoftmaxRetrieval(keras.Model):
    """score(u, i) = <p_u, q_i> + b_i, trained so that each positive (u, i) outranks the
    catalogue: softmax cross-entropy, summed over the user's positives.

    A batch is a set of users and their positives (`rows` into the batch, `items`, `weights`).
    For one user with positives P and weights w, sum_{i in P} w_i * (logsumexp(s_u) - s_ui)
    equals the per-positive loss, but the scores are computed once per user instead of once per
    positive. The batch loss is divided by the batch's total weight (a mean over positives).

    `training_loss` takes the logsumexp over the whole catalogue (`negatives=0`) or over a
    sample (`negatives=S`): the distinct items of the batch's positives plus S items drawn
    uniformly, each score corrected by the log of its probability of being in the sample
    (the logQ correction of TensorFlow Recommenders, here with the inclusion probability
    1 - (1 - f_i)^M (1 - 1/N)^S for an item with a share f_i of the M positives drawn). The sum of
    exp(score - log q) over the sample estimates the sum over the catalogue, so the loss
    estimates the full one at a cost that grows with the batch, not with the catalogue.

    L2: `l2 * (|P|^2 + |Q|^2)` per step. The full loss adds the whole tables' norms (dense
    gradients: every row moves every step); the sampled loss adds them in expectation, from
    the rows it touched (the batch's user rows count `n_users / batch users` times, its item
    rows `n_items / sampled` times), so its step stays row-wise.

    Scoring for /recommend is exactly `call`: one matrix-vector product plus the item bias.
    """

    kind = "retrieval"
    score = "dot"

    def __init__(
        self,
        n_users: int,
        n_items: int,
        factors: int = 64,
        l2: float = 1e-4,
        init_std: float = 0.05,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.n_users, self.n_items, self.factors, self.l2 = n_users, n_items, factors, l2
        init = keras.initializers.RandomNormal(stddev=init_std)
        self.user_factors = self.add_weight(
            shape=(n_users, factors), initializer=init, name="user_factors"
        )
        self.item_factors = self.add_weight(
            shape=(n_items, factors), initializer=init, name="item_factors"
        )
        self.item_bias = self.add_weight(shape=(n_items,), initializer="zeros", name="item_bias")

    def call(self, users):
        vectors = ops.take(self.user_factors, users, axis=0)
        return ops.matmul(vectors, ops.transpose(self.item_factors)) + self.item_bias

    def training_loss(
        self, users, rows, items, weights, negatives=0, item_share=None, total_weight=None
    ):
        """The batch's loss (see the class): `users` the batch's user rows, and per positive
        its row in the batch, its item and its weight; with `negatives`, `item_share` holds
        each item's share of all positives (for the inclusion probabilities). The loss is
        divided by `total_weight` (default: these positives' own; a worker of a cluster
        passes the whole batch's, so the workers' losses add up to the batch mean)."""
        p = tf.gather(self.user_factors.value, users)  # a sparse gradient: the batch's rows
        count = tf.shape(users)[0]
        if negatives:
            drawn = tf.random.uniform((negatives,), 0, self.n_items, tf.int32)
            candidates, position = tf.unique(tf.concat([items, drawn], 0))
            q = tf.gather(self.item_factors.value, candidates)
            scores = tf.matmul(p, q, transpose_b=True) + tf.gather(self.item_bias.value, candidates)
            drawn_positives = tf.cast(tf.shape(items)[0], tf.float32)
            missed = tf.pow(1.0 - tf.gather(item_share, candidates), drawn_positives)
            inclusion = 1.0 - missed * (1.0 - 1.0 / self.n_items) ** negatives
            normaliser = tf.reduce_logsumexp(scores - tf.math.log(inclusion), axis=1)
            columns = position[: tf.shape(items)[0]]
            # In expectation, the L2 of both whole tables (rows seen in this step, scaled).
            user_scale = self.n_users / tf.cast(count, tf.float32)
            norms = user_scale * tf.reduce_sum(tf.square(p)) + tf.reduce_sum(tf.square(q)) * (
                self.n_items / tf.cast(tf.shape(candidates)[0], tf.float32)
            )
        else:
            scores = tf.matmul(p, self.item_factors.value, transpose_b=True) + self.item_bias
            normaliser = tf.reduce_logsumexp(scores, axis=1)
            columns = items
            # The whole tables' L2, every step: with Adam it shrinks every row every step, which
            # ml-100k's validation NDCG@10 preferred to a row-wise L2 (0.2538 vs 0.2489 at the
            # best l2 found for that form); dense, so for small tables only.
            norms = tf.reduce_sum(tf.square(self.user_factors.value)) + tf.reduce_sum(
                tf.square(self.item_factors.value)
            )
        positive = tf.gather_nd(scores, tf.stack([rows, columns], axis=1))
        per_user = tf.math.unsorted_segment_sum(weights, rows, count)
        total = tf.reduce_sum(weights) if total_weight is None else total_weight
        total = tf.maximum(total, 1e-9)
        loss = (tf.reduce_sum(per_user * normaliser) - tf.reduce_sum(weights * positive)) / total
        return loss + self.l2 * norms

    def factors_for_export(self) -> dict:
        return {
            "user_factors": ops.convert_to_numpy(self.user_factors),
            "item_factors": ops.convert_to_numpy(self.item_factors),
            "item_bias": ops.convert_to_numpy(self.item_bias),
        }
