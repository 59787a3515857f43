"""Biased matrix factorisation: r_ui = mu + b_u + b_i + <p_u, q_i>."""

from __future__ import annotations

import keras
from keras import ops

from training.models.layers import IdEmbedding


class BiasedMF(keras.Model):
    """Biased MF with L2 regularisation, trained on MSE.

    `regularization="example"` is the classic form (Koren et al.; Funk SVD; scikit-surprise): each
    training example penalises the rows it looks up, `l2 * (|p_u|^2 + |q_i|^2)` plus
    `bias_l2 * (b_u^2 + b_i^2)`, so frequently-rated ids are regularised in proportion to their
    data. `regularization="table"` is Keras' `embeddings_regularizer`: the whole table's L2 norm is
    added to every batch's loss. bench/README.md records which of the two generalises better.
    """

    kind = "mf_bias"

    def __init__(
        self,
        n_users: int,
        n_items: int,
        factors: int = 64,
        l2: float = 0.05,
        bias_l2: float = 0.001,
        global_mean: float = 0.0,
        regularization: str = "example",
        init_std: float = 0.05,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if regularization not in ("example", "table"):
            raise ValueError(f"regularization must be 'example' or 'table', not {regularization!r}")
        self.n_users, self.n_items, self.factors = n_users, n_items, factors
        self.l2, self.bias_l2, self.regularization = l2, bias_l2, regularization
        self.global_mean = float(global_mean)
        init = keras.initializers.RandomNormal(stddev=init_std)
        table = regularization == "table"
        factor_reg = keras.regularizers.L2(l2) if table else None
        bias_reg = keras.regularizers.L2(bias_l2) if table else None
        self.user_factors = IdEmbedding(n_users, factors, init, factor_reg, name="user_factors")
        self.item_factors = IdEmbedding(n_items, factors, init, factor_reg, name="item_factors")
        self.user_bias = IdEmbedding(n_users, 1, "zeros", bias_reg, name="user_bias")
        self.item_bias = IdEmbedding(n_items, 1, "zeros", bias_reg, name="item_bias")

    def call(self, inputs):
        users, items = inputs["user"], inputs["item"]
        dot = ops.sum(self.user_factors(users) * self.item_factors(items), axis=-1)
        biases = self.user_bias(users)[:, 0] + self.item_bias(items)[:, 0]
        return self.global_mean + biases + dot

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = ops.mean(ops.square(ops.cast(y, y_pred.dtype) - y_pred))
        if not training:
            return loss  # validation loss is the plain MSE that early stopping watches
        if self.regularization == "table":
            return loss + ops.sum(self.losses)
        users, items = x["user"], x["item"]
        factor_norms = ops.sum(ops.square(self.user_factors(users)), axis=-1) + ops.sum(
            ops.square(self.item_factors(items)), axis=-1
        )
        bias_norms = ops.square(self.user_bias(users)[:, 0]) + ops.square(
            self.item_bias(items)[:, 0]
        )
        return loss + ops.mean(self.l2 * factor_norms + self.bias_l2 * bias_norms)

    def factors_for_export(self) -> dict:
        """The arrays the service ranks with; their formula reproduces `call` exactly."""
        return {
            "user_factors": self.user_factors.known_rows,
            "item_factors": self.item_factors.known_rows,
            "user_bias": self.user_bias.known_rows[:, 0],
            "item_bias": self.item_bias.known_rows[:, 0],
        }
