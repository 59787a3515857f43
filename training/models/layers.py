"""Layers shared by the architectures."""

from __future__ import annotations

import keras
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

    def call(self, ids):
        known = ops.cast(ops.less(ids, self.n), self.compute_dtype)
        return self.table(ids) * ops.expand_dims(known, -1)

    @property
    def known_rows(self):
        """The trained rows, 0..n-1, as a numpy array (the OOV row left out)."""
        return ops.convert_to_numpy(self.table.embeddings)[: self.n]

    def get_config(self):
        return {**super().get_config(), "n": self.n, "dim": self.dim}
