"""A model trained for top-N, not for ratings: the vectors /recommend ranks with."""

from __future__ import annotations

import keras
from keras import ops


class SoftmaxRetrieval(keras.Model):
    """score(u, i) = <p_u, q_i> + b_i, trained so that each positive (u, i) outranks the whole
    catalogue: softmax cross-entropy over every item, summed over the user's positives (a full
    softmax; the TensorFlow Recommenders recipe samples it in-batch when the catalogue is too
    large to score per step).

    A batch is a set of users and their positives as a dense (users, items) weight matrix `y`.
    For one user with positives P and weights w, sum_{i in P} w_i * (logsumexp(s_u) - s_ui)
    equals the per-positive loss, but the scores are computed once per user instead of once per
    positive. The batch loss is divided by the batch's total weight (a mean over positives).

    L2 on both tables, `l2 * (|P|^2 + |Q|^2)`, is added to every batch's loss. Scoring for
    /recommend is exactly `call`: one matrix-vector product plus the item bias.
    """

    kind = "retrieval"
    score = "dot"
    # Measured on ml-100k, 2 cores: without XLA an epoch takes ~0.5 s instead of ~0.7 s and the
    # first step compiles in 1 s instead of 2.5 s (the MF models gain from XLA; this one loses).
    xla = False

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

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        y = ops.cast(y, y_pred.dtype)
        weight = ops.sum(y, axis=1)
        per_user = weight * ops.logsumexp(y_pred, axis=1) - ops.sum(y * y_pred, axis=1)
        loss = ops.sum(per_user) / ops.maximum(ops.sum(weight), 1e-9)
        if training and self.l2:
            norms = ops.sum(ops.square(self.user_factors)) + ops.sum(ops.square(self.item_factors))
            loss = loss + self.l2 * norms
        return loss

    def factors_for_export(self) -> dict:
        return {
            "user_factors": ops.convert_to_numpy(self.user_factors),
            "item_factors": ops.convert_to_numpy(self.item_factors),
            "item_bias": ops.convert_to_numpy(self.item_bias),
        }
