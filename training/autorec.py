"""Fitting I-AutoRec (`training.models.autorec`): full-batch steps on the summed squared error
of the observed ratings plus `l2 / 2` times the squared norms of the encoder and the decoder,
as in the paper, with the configured optimizer. An "epoch" is STEPS full-batch steps; early
stopping watches the validation MSE like every rating model's (`training.loop.train_epochs`).

On ml-100k's validation split (80/10/10, seed 42), Adam: l2 1, 10, 30, 100, 300, 1000 at
learning rate 0.001 gave RMSE 0.9200, 0.9175, 0.9124, 0.9015, 0.8993 (at the 400-step cap),
0.9513; l2 120, 200, 300, 500 at 0.003 gave 0.8953, 0.8928, 0.8942, 0.9106. Hence 200 at
0.003, 500 units (bench/README.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from training.fitting import Log

STEPS = 10  # full-batch steps per epoch


def fit_autorec(model: Any, train: Any, validation: Any, settings: Any, log: Log, prefix: str = ""):
    """`training.loop.fit_rating_model`'s contract for I-AutoRec: the model holds `train` as its
    ratings matrix, then epochs of STEPS full-batch steps, early stopping on the validation MSE
    and the best epoch's weights restored."""
    from training.loop import train_epochs, validation_figures

    model.set_ratings(train.users, train.items, train.ratings)
    mask = np.zeros((model.n_items + 1, model.n_users + 1), np.float32)
    mask[train.items, train.users] = 1.0
    mask_t = tf.constant(mask)
    observed = float(mask.sum())
    variables = model.trainable_variables
    optimizer = model.optimizer
    log(f"{prefix}autorec: {len(train):,} ratings in a {mask.shape[0]:,} x {mask.shape[1]:,} "
        f"matrix, {STEPS} full-batch steps an epoch")  # fmt: skip

    @tf.function
    def run_epoch():
        sse = tf.constant(0.0)
        for _ in tf.range(STEPS):
            with tf.GradientTape() as tape:
                predicted = (
                    model.global_mean
                    + model.user_bias[None, :]
                    + model.item_bias[:, None]
                    + tf.matmul(model.codes(), model.decoder, transpose_b=True)
                )
                sse = tf.reduce_sum(mask_t * tf.square(predicted - model.ratings))
                penalty = tf.reduce_sum(tf.square(model.encoder)) + tf.reduce_sum(
                    tf.square(model.decoder)
                )
                loss = sse + model.l2 / 2 * penalty
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return {"loss": sse / observed}

    evaluate = validation_figures(model, validation)
    return train_epochs(model, lambda _: run_epoch(), None, settings, evaluate, "val_loss", log,
                        prefix)  # fmt: skip
