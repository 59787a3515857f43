"""One module per architecture; `build_model` picks one by its `--model` name."""

from __future__ import annotations

from typing import Any

import keras

MODEL_KINDS = ("mf_bias",)


def build_model(kind: str, n_users: int, n_items: int, global_mean: float, **params: Any):
    """Build an untrained model of `kind` for `n_users` x `n_items` ids."""
    if kind == "mf_bias":
        from training.models.mf_bias import BiasedMF

        return BiasedMF(n_users, n_items, global_mean=global_mean, **params)
    raise ValueError(f"unknown model {kind!r}; choose one of {', '.join(MODEL_KINDS)}")


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """Adam, RMSprop, or SGD with the tutorials' momentum of 0.9."""
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9)
    raise ValueError(f"unknown optimizer {name!r}; choose adam, rmsprop or sgd")
