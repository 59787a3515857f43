"""Optimizers whose cost per step grows with the batch, not with the embedding tables.

Keras 3's Adam turns an embedding's sparse gradient (a `tf.IndexedSlices`: the looked-up rows
and their gradients) dense, because `gradient - m` mixes it with the dense moment: every step
then rewrites m, v and the weights of every row of every table (10.7 M rows x 3 at ml-20m's
size, whatever the batch). `RowAdam` updates only the rows a batch touched ("lazy" Adam, as in
TensorFlow Addons' LazyAdam and PyTorch's SparseAdam): duplicate indices are summed first, then
m, v and the weights of those rows are gathered, updated and scattered back. Dense variables
(the MLPs' kernels) take the stock Adam path.

A row's moments decay only when it is in a batch, which is the known difference from dense
Adam (tensorflow#23668 reports an accuracy shortfall without a correction); bench/README.md
("Scale") records what it does to RMSE here.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="recsys")
class RowAdam(keras.optimizers.Adam):
    """Adam that applies a sparse gradient to the rows it names only (see the module)."""

    def update_step(self, gradient, variable, learning_rate):
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        rows, position = tf.unique(gradient.indices)
        summed = tf.math.unsorted_segment_sum(
            tf.cast(gradient.values, dtype), position, tf.shape(rows)[0]
        )
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        alpha = (
            tf.cast(learning_rate, dtype)
            * tf.sqrt(1 - tf.pow(beta_2, step))
            / (1 - tf.pow(beta_1, step))
        )
        index = self._get_variable_index(variable)
        m, v = self._momentums[index].value, self._velocities[index].value
        m_rows = tf.gather(m, rows) * beta_1 + summed * (1 - beta_1)
        v_rows = tf.gather(v, rows) * beta_2 + tf.square(summed) * (1 - beta_2)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        target = variable.value if isinstance(variable, keras.Variable) else variable
        # gather, subtract, scatter_update: scatter_sub took 2x as long (3.4 vs 1.6 ms for
        # 29k rows x 64 on this machine), the rows being unique here.
        new_rows = tf.gather(target, rows) - alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon)
        target.scatter_update(tf.IndexedSlices(new_rows, rows))
