"""What every rating architecture shares: id embeddings, the loss, and what export reads."""

from __future__ import annotations

import keras
from keras import ops

from training.models.layers import IdEmbedding


class RatingModel(keras.Model):
    """Predicts a rating from `{"user": int, "item": int}` indices; trained on MSE.

    L2 regularisation on the embeddings comes in two forms. `"example"`, the classic one (Koren
    et al.; Funk SVD; scikit-surprise), penalises on each training example the rows it looks up:
    `l2 * (|p_u|^2 + |q_i|^2)` plus `bias_l2 * (b_u^2 + b_i^2)`, so ids are regularised in
    proportion to their data. `"table"` is Keras' `embeddings_regularizer`: the whole tables' L2
    norm added to every batch's loss. bench/README.md records which generalises better.

    Subclasses set `kind`, `score` and `use_bias`, and implement `predict_from`. Training goes
    through `training_loss` (training.loop), not `fit`.
    """

    kind = ""
    # How the exported factors score items for /recommend: "rating" when
    # global_mean + user_bias + item_bias + p_u . q_i reproduces `call` exactly, "dot" when they
    # are only the model's embeddings (the MLPs and the residual hybrid).
    score = "dot"
    use_bias = False

    def __init__(
        self,
        n_users: int,
        n_items: int,
        factors: int = 64,
        l2: float = 0.0,
        bias_l2: float = 0.0,
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
        factor_reg = keras.regularizers.L2(l2) if table and l2 else None
        bias_reg = keras.regularizers.L2(bias_l2) if table and bias_l2 else None
        self.user_factors = IdEmbedding(n_users, factors, init, factor_reg, name="user_factors")
        self.item_factors = IdEmbedding(n_items, factors, init, factor_reg, name="item_factors")
        if self.use_bias:
            self.user_bias = IdEmbedding(n_users, 1, "zeros", bias_reg, name="user_bias")
            self.item_bias = IdEmbedding(n_items, 1, "zeros", bias_reg, name="item_bias")

    def call(self, inputs, training=False):
        users, items = inputs["user"], inputs["item"]
        p, q = self.user_factors(users), self.item_factors(items)
        return self.predict_from(p, q, self.biases(users, items), training)

    def predict_from(self, p, q, biases, training=False):
        """The rating from the looked-up rows: factors `p`, `q` and `biases` (b_u, b_i) (None
        for models without biases). Subclasses implement it; `call` and `training_loss` both
        go through it, so a training step looks every row up once."""
        raise NotImplementedError

    def biases(self, users, items, known: bool = False):
        """(b_u, b_i) for the batch, or None for models without biases. `known`: every id is a
        trained row (a training batch), so the out-of-vocabulary mask is skipped."""
        if not self.use_bias:
            return None
        if known:
            return self.user_bias.rows(users)[:, 0], self.item_bias.rows(items)[:, 0]
        return self.user_bias(users)[:, 0], self.item_bias(items)[:, 0]

    def training_loss(self, inputs, y, with_mse: bool = False):
        """The loss a training step minimises on a batch of known ids: the batch's MSE plus the
        L2 terms (and, `with_mse`, the MSE alone beside it).

        With `"example"` regularisation the penalty is computed from the rows the prediction
        looked up (a second lookup would double the sparse gradients' size).
        """
        users, items = inputs["user"], inputs["item"]
        p, q = self.user_factors.rows(users), self.item_factors.rows(items)
        biases = self.biases(users, items, known=True)
        y_pred = self.predict_from(p, q, biases, training=True)
        mse = ops.mean(ops.square(ops.cast(y, y_pred.dtype) - y_pred))
        loss = mse + ops.sum(self.losses)
        if self.regularization == "example":
            norms = self.l2 * (ops.sum(ops.square(p), axis=-1) + ops.sum(ops.square(q), axis=-1))
            if biases is not None and self.bias_l2:
                norms = norms + self.bias_l2 * (ops.square(biases[0]) + ops.square(biases[1]))
            loss = loss + ops.mean(norms)
        return (loss, mse) if with_mse else loss

    def factors_for_export(self) -> dict:
        """The arrays /recommend ranks with (rows 0..n-1; the out-of-vocabulary row left out)."""
        arrays = {
            "user_factors": self.user_factors.known_rows,
            "item_factors": self.item_factors.known_rows,
        }
        if self.use_bias:
            arrays["user_bias"] = self.user_bias.known_rows[:, 0]
            arrays["item_bias"] = self.item_bias.known_rows[:, 0]
        return arrays
