"""One module per family of architectures; `build_model` picks one by its `--model` name."""

from __future__ import annotations

from typing import Any

import keras

from training.config import MODEL_KINDS, OPTIMIZERS


def build_model(kind: str, n_users: int, n_items: int, global_mean: float, **params: Any):
    """Build an untrained model of `kind` for `n_users` x `n_items` ids."""
    from training.models.mf import MF, BiasedMF
    from training.models.mlp import MLPRating, ResidualHybrid

    common = {"global_mean": global_mean, **params}
    head = {"dropout": common.pop("dropout", 0.0), "dense_l2": common.pop("dense_l2", 0.0)}
    if kind == "mf":
        return MF(n_users, n_items, **common)
    if kind == "mf_bias":
        return BiasedMF(n_users, n_items, **common)
    if kind == "dnn":
        return MLPRating(n_users, n_items, kind="dnn", hidden=(128, 128), **head, **common)
    if kind == "wide":
        return MLPRating(n_users, n_items, kind="wide", hidden=(1024,), **head, **common)
    if kind == "residual":
        return ResidualHybrid(n_users, n_items, **head, **common)
    raise ValueError(f"unknown model {kind!r}; choose one of {', '.join(MODEL_KINDS)}")


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """Adam, RMSprop, or SGD with the tutorials' momentum of 0.9."""
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
