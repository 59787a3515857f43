"""What can be trained: one record per rating-model kind (its class, its architecture, its tuned
defaults and learning rates) and the optimizers. Importable without TensorFlow: the CLI builds
its options from this table; the classes are imported only when a model is built.

Defaults were tuned on ml-100k's validation split (bench/tune_models.py; bench/README.md).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

OPTIMIZERS = ("adam", "rmsprop", "sgd")  # SGD always with the tutorials' momentum of 0.9
LARGE_DATA = 1_000_000  # ratings from which a kind's `large` settings apply
# Batch and learning rate chosen on the ml-20m-shaped set's validation split (lr 0.01 over 0.03
# at batch 32768; bench/README.md, "Scale"). No refit and at most 20 epochs: each fit of
# 16M ratings takes ~18 s an epoch, and the refit and the final fit on every rating would
# triple that (--refit and --epochs bring them back).
LARGE_BATCH = {"batch_size": 32768, "learning_rate": 0.01, "refit": False, "epochs": 20}
# mf and mf_bias on LARGE_DATA ratings or more, unless a solver or an optimizer's settings are
# given: alternating least squares (training.als), its L2 chosen on ml-1m's validation split
# (0.08 of 0.05-0.12; bench/README.md, "Scale"). No refit: each fit is ~15 passes, and the
# refit and the final fit would triple it.
# A pass gains only when it lowers the validation MSE by 0.1%: on the planted 20M set the passes
# after the 12th gained ~0.0001 RMSE each until the 30-pass cap (bench/README.md).
# The passes after the first take 2 conjugate-gradient steps a row where they are cheaper than
# the exact solve: the same validation RMSE on the planted 20M set (0.6001) and ml-1m (0.8518
# against 0.8521), each pass 0.76x and 0.61x the exact one's seconds (3 steps: the same RMSE,
# 0.80x and 0.69x).
LARGE_ALS = {
    "solver": "als", "l2": 0.08, "refit": False, "epochs": 30, "min_gain": 0.001,
    "als_cg_steps": 2,
}  # fmt: skip


@dataclass(frozen=True)
class ModelKind:
    name: str  # the --model value, and the manifest's model.kind
    summary: str  # one line for --help and the README's table
    cls: str  # "module:Class", imported when built
    architecture: dict[str, Any] = field(default_factory=dict)  # fixed arguments of the class
    defaults: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields it overrides
    learning_rates: dict[str, float] = field(default_factory=dict)  # per optimizer
    dense: bool = False  # has dense layers: takes `dropout` and `dense_l2`
    # TrainConfig fields for training sets of LARGE_DATA ratings or more, with Adam (chosen on
    # the validation split of the ml-20m-shaped synthetic set; bench/README.md, "Scale").
    large: dict[str, Any] = field(default_factory=dict)
    als: bool = False  # a factor model `--solver als` can fit (training.als)


KINDS: dict[str, ModelKind] = {
    k.name: k
    for k in (
        ModelKind(
            "mf",
            "mu + p_u . q_i (the tutorials' dot product)",
            "training.models.mf:MF",
            defaults={"factors": 64, "l2": 0.05, "init_std": 0.01, "batch_size": 256},
            learning_rates={"adam": 0.001, "rmsprop": 0.001, "sgd": 0.1},
            large=LARGE_BATCH,
            als=True,
        ),
        ModelKind(
            "mf_bias",
            "mu + b_u + b_i + p_u . q_i",
            "training.models.mf:BiasedMF",
            defaults={
                "factors": 64, "l2": 0.1, "bias_l2": 0.0, "init_std": 0.01, "batch_size": 256
            },
            learning_rates={"adam": 0.001, "rmsprop": 0.001, "sgd": 0.1},
            large=LARGE_BATCH,
            als=True,
        ),
        ModelKind(
            "autorec",
            "mu + c_u + b_i + W_u . sigmoid(V' r_i + e) (I-AutoRec; at most 50M items x users)",
            "training.models.autorec:ItemAutoRec",
            # An epoch is 10 full-batch steps (training.autorec); l2 on the summed error.
            defaults={
                "factors": 500, "l2": 200.0, "epochs": 100, "patience": 3, "regularization": "sum"
            },
            learning_rates={"adam": 0.003, "rmsprop": 0.001, "sgd": 0.01},
        ),
        ModelKind(
            "dnn",
            "concat(p_u, q_i) -> Dense(128) -> Dense(128) -> Dense(1)",
            "training.models.mlp:MLPRating",
            architecture={"kind": "dnn", "hidden": (128, 128)},
            defaults={
                "factors": 32, "l2": 1.0, "dropout": 0.5, "init_std": 0.05, "batch_size": 1024,
                "optimizer": "rmsprop",
            },
            learning_rates={"adam": 0.001, "rmsprop": 0.00033, "sgd": 0.03},
            dense=True,
        ),
        ModelKind(
            "wide",
            "concat(p_u, q_i) -> Dense(1024) -> Dense(1)",
            "training.models.mlp:MLPRating",
            architecture={"kind": "wide", "hidden": (1024,)},
            defaults={
                "factors": 16, "l2": 0.1, "dropout": 0.0, "init_std": 0.05, "batch_size": 256,
                "optimizer": "rmsprop",
            },
            learning_rates={"adam": 0.0001, "rmsprop": 0.0003, "sgd": 0.03},
            dense=True,
        ),
        ModelKind(
            "residual",
            "mf_bias plus a side branch concat(p_u, q_i) -> Dense(400) -> elu -> Dense(1)",
            "training.models.mlp:ResidualHybrid",
            defaults={
                "factors": 64, "l2": 0.1, "dense_l2": 1.0, "init_std": 0.01, "batch_size": 256
            },
            learning_rates={"adam": 0.001, "rmsprop": 0.001, "sgd": 0.1},
            dense=True,
        ),
    )
}  # fmt: skip
MODEL_KINDS = tuple(KINDS)


def model_kind(name: str) -> ModelKind:
    """The record of `name`.

    Raises:
        ValueError: no such kind (the message lists them).
    """
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(KINDS)}") from None


def build_model(kind: str, n_users: int, n_items: int, global_mean: float, **params: Any) -> Any:
    """An untrained model of `kind` for `n_users` x `n_items` ids (imports TensorFlow)."""
    record = model_kind(kind)
    module, name = record.cls.split(":")
    cls = getattr(importlib.import_module(module), name)
    if not record.dense:
        params = {k: v for k, v in params.items() if k not in ("dropout", "dense_l2")}
    return cls(n_users, n_items, global_mean=global_mean, **record.architecture, **params)


def make_optimizer(name: str, learning_rate: float) -> Any:
    """Adam (row-wise on the embeddings: training.optimizers.RowAdam), RMSprop, or SGD with the
    tutorials' momentum of 0.9 (imports Keras)."""
    import keras

    if name == "adam":
        from training.optimizers import RowAdam

        return RowAdam(learning_rate)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
