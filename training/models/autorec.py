"""I-AutoRec (Sedhain, Menon, Sanner and Xie, "AutoRec: Autoencoders Meet Collaborative
Filtering", WWW 2015), item-based: each item's column of ratings over the users, r_i, is
encoded into `factors` sigmoid units and decoded back into every user's rating of it:

    r_ui = mu + c_u + b_i + W_u . sigmoid(V' r_i + e)

with only the observed ratings in the loss and in r_i (zeros elsewhere), and L2 on V and W.
Read as a factor model, the item's factors are its code h_i = sigmoid(V' r_i + e) and the
user's are the decoder's row W_u, so the exported arrays reproduce the rating exactly
(`score = "rating"`): /recommend?by=rating, fold-in of new users and items and /predict's
intervals work on them like on mf_bias's. The training ratings are held as one dense
items x users matrix inside the model (the SavedModel computes codes from it), so the kind
refuses data where that matrix would pass MAX_CELLS. Fitted by `training.autorec` with
full-batch steps, not by the mini-batch loop.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

MAX_CELLS = 50_000_000  # items x users: 200 MB of float32 for the matrix, as much per step


class ItemAutoRec(keras.Model):
    kind = "autorec"
    score = "rating"
    use_bias = True

    def __init__(
        self,
        n_users: int,
        n_items: int,
        factors: int = 500,
        l2: float = 200.0,
        global_mean: float = 0.0,
        init_std: float = 0.0,  # unused: the layers start from Glorot's uniform draw
        bias_l2: float = 0.0,  # unused
        regularization: str = "sum",  # the only one: L2 added once to the summed error
        **kwargs,
    ):
        super().__init__(**kwargs)
        if regularization != "sum":
            raise ValueError(
                f"autorec's L2 is added once to the summed error (regularization 'sum'), not "
                f"{regularization!r}"
            )
        cells = (n_items + 1) * (n_users + 1)
        if cells > MAX_CELLS:
            raise ValueError(
                f"autorec holds the ratings as a dense items x users matrix: {n_items:,} x "
                f"{n_users:,} is {cells:,} cells, over {MAX_CELLS:,}; use mf_bias"
            )
        self.n_users, self.n_items, self.factors, self.l2 = n_users, n_items, factors, l2
        self.global_mean = float(global_mean)
        glorot = keras.initializers.GlorotUniform(seed=7)
        # Rows n_users and n_items are the out-of-vocabulary ones (IdIndex.oov).
        self.encoder = self.add_weight(shape=(n_users + 1, factors), initializer=glorot,
                                       name="encoder")  # fmt: skip
        self.encoder_bias = self.add_weight(shape=(factors,), initializer="zeros",
                                            name="encoder_bias")  # fmt: skip
        self.decoder = self.add_weight(shape=(n_users + 1, factors), initializer=glorot,
                                       name="decoder")  # fmt: skip
        # The out-of-vocabulary user's row never meets a rating: zero, an unknown user is
        # predicted mu + b_i (as mf_bias predicts them), not a random draw's dot product.
        self.decoder[-1].assign(ops.zeros((factors,)))
        self.user_bias = self.add_weight(shape=(n_users + 1,), initializer="zeros",
                                         name="user_bias")  # fmt: skip
        self.item_bias = self.add_weight(shape=(n_items + 1,), initializer="zeros",
                                         name="item_bias")  # fmt: skip
        self.ratings = self.add_weight(shape=(n_items + 1, n_users + 1), initializer="zeros",
                                       trainable=False, name="ratings")  # fmt: skip

    def set_ratings(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray) -> None:
        """Hold these (user row, item row, rating) triples as the matrix the codes read."""
        matrix = np.zeros((self.n_items + 1, self.n_users + 1), np.float32)
        matrix[items, users] = ratings
        self.ratings.assign(matrix)

    def codes(self, rows=None):
        """h_i for item `rows` (every row, the out-of-vocabulary one last, when None)."""
        block = self.ratings if rows is None else ops.take(self.ratings, rows, axis=0)
        return ops.sigmoid(ops.matmul(block, self.encoder) + self.encoder_bias)

    def call(self, inputs, training=False):
        users, items = inputs["user"], inputs["item"]
        # Each distinct item is encoded once per call (a batch repeats items): its code costs a
        # users x factors product.
        distinct, position = tf.unique(ops.reshape(items, (-1,)))
        h = ops.take(self.codes(distinct), position, axis=0)
        w = ops.take(self.decoder, users, axis=0)
        bias = ops.take(self.user_bias, users) + ops.take(self.item_bias, items)
        return self.global_mean + bias + ops.sum(h * w, axis=-1)

    def factors_for_export(self) -> dict:
        """The decoder's rows as user factors, the items' codes as item factors, and both
        biases: global_mean + user_bias + item_bias + p_u . q_i is the rating, exactly."""
        return {
            "user_factors": ops.convert_to_numpy(self.decoder)[:-1],
            "item_factors": ops.convert_to_numpy(self.codes())[:-1],
            "user_bias": ops.convert_to_numpy(self.user_bias)[:-1],
            "item_bias": ops.convert_to_numpy(self.item_bias)[:-1],
        }
