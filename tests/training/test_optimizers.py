"""RowAdam: the rows a sparse gradient names move as Adam moves them (duplicates summed); the
other rows and their moments stay as they were; dense gradients take Keras' own Adam."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from training.optimizers import RowAdam

LR, B1, B2, EPS = 0.1, 0.9, 0.999, 1e-7


def lazy_adam_reference(table, steps):
    """Adam in numpy, applied per row only where a step's gradient names the row."""
    table, m, v = table.copy(), np.zeros_like(table), np.zeros_like(table)
    for t, (rows, values) in enumerate(steps, start=1):
        summed = {}
        for r, g in zip(rows, values, strict=True):
            summed[r] = summed.get(r, 0) + g
        alpha = LR * np.sqrt(1 - B2**t) / (1 - B1**t)
        for r, g in summed.items():
            m[r] = B1 * m[r] + (1 - B1) * g
            v[r] = B2 * v[r] + (1 - B2) * g**2
            table[r] -= alpha * m[r] / (np.sqrt(v[r]) + EPS)
    return table


def test_sparse_gradients_update_only_their_rows_with_duplicates_summed():
    rng = np.random.default_rng(0)
    start = rng.normal(size=(6, 3)).astype(np.float32)
    steps = [
        (np.array([1, 4, 1]), rng.normal(size=(3, 3)).astype(np.float32)),  # row 1 twice
        (np.array([4, 5]), rng.normal(size=(2, 3)).astype(np.float32)),
        (np.array([0, 0, 0, 1]), rng.normal(size=(4, 3)).astype(np.float32)),
    ]
    variable = keras.Variable(start)
    optimizer = RowAdam(LR, epsilon=EPS)
    optimizer.build([variable])
    for rows, values in steps:
        gradient = tf.IndexedSlices(tf.constant(values), tf.constant(rows, tf.int32), (6, 3))
        optimizer.apply_gradients([(gradient, variable)])
    expected = lazy_adam_reference(start, steps)
    np.testing.assert_allclose(np.asarray(variable), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(variable)[2:4], start[2:4])  # never named


def test_dense_gradients_take_keras_adam():
    start = np.arange(6, dtype=np.float32).reshape(2, 3)
    gradients = [np.full((2, 3), g, np.float32) for g in (0.5, -1.0)]
    ours, theirs = keras.Variable(start), keras.Variable(start)
    row_adam, adam = RowAdam(LR), keras.optimizers.Adam(LR)
    for gradient in gradients:
        row_adam.apply_gradients([(tf.constant(gradient), ours)])
        adam.apply_gradients([(tf.constant(gradient), theirs)])
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-6)
    assert not np.allclose(np.asarray(ours), start)


@pytest.mark.parametrize("batch", [7, 32])
def test_an_embedding_step_gives_a_sparse_gradient_and_moves_the_batch_rows_only(batch):
    from training.models.mf import BiasedMF

    model = BiasedMF(50, 40, factors=4, l2=0.1, global_mean=3.0, init_std=0.1)
    model({"user": np.zeros(1, np.int32), "item": np.zeros(1, np.int32)})
    optimizer = RowAdam(0.01)
    optimizer.build(model.trainable_variables)
    before = model.factors_for_export()
    users = np.arange(batch, dtype=np.int32) % 10  # users 0..9 only
    x = {"user": tf.constant(users), "item": tf.constant(users)}
    with tf.GradientTape() as tape:
        loss = model.training_loss(x, tf.fill((batch,), 4.0))
    gradients = tape.gradient(loss, model.trainable_variables)
    assert all(isinstance(g, tf.IndexedSlices) for g in gradients)
    optimizer.apply_gradients(list(zip(gradients, model.trainable_variables, strict=True)))
    after = model.factors_for_export()
    assert not np.allclose(after["user_factors"][:10], before["user_factors"][:10])
    np.testing.assert_array_equal(after["user_factors"][10:], before["user_factors"][10:])
    np.testing.assert_array_equal(after["item_bias"][10:], before["item_bias"][10:])
