"""Layers shared by the architectures."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="recsys")
class IdEmbedding(keras.layers.Layer):
    """An embedding of `n` known ids plus an out-of-vocabulary row, index `n`, that reads as zero.

    Ids unseen in training (validation/test rows, or a caller of the SavedModel) are looked up as
    index `n`; masking that row instead of trusting it to stay at zero means an unknown id falls
    back to "no personal signal" (for biased MF: global mean + the other side's bias) whatever
    the optimizer or regulariser did to the table.
    """

    def __init__(self, n: int, dim: int, initializer="zeros", regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.n, self.dim = n, dim
        self.table = keras.layers.Embedding(
            n + 1,
            dim,
            embeddings_initializer=initializer,
            embeddings_regularizer=regularizer,
            name="table",
        )

    def build(self, input_shape):
        self.table.build(input_shape)

    def call(self, ids):
        known = ops.cast(ops.less(ids, self.n), self.compute_dtype)
        return self.rows(ids) * ops.expand_dims(known, -1)

    def rows(self, ids):
        """The rows of `ids` without the mask: for ids known to be rows 0..n-1 (a training
        batch encoded with the index the table was built for), a step's forward and backward
        pass then carry no (batch x dim) multiplication by ones.

        A gather from the variable itself (ResourceGather), not from a read of the whole table
        as `Embedding.call` does via `ops.take`: that read made each step of the row-wise
        update ~10% slower at ml-20m's table sizes (bench/README.md, "Scale").
        """
        return tf.gather(self.table.embeddings.value, ops.cast(ids, "int32"))

    @property
    def known_rows(self):
        """The trained rows, 0..n-1, as a numpy array (the OOV row left out)."""
        return ops.convert_to_numpy(self.table.embeddings)[: self.n]

    def get_config(self):
        return {**super().get_config(), "n": self.n, "dim": self.dim}
