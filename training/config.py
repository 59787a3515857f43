"""The training configuration: plain data, importable without TensorFlow (the CLI builds its
options from it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run. Defaults tuned on ml-100k's validation split
    (bench/tune_mf_bias.py; figures in bench/README.md)."""

    model: str = "mf_bias"
    factors: int = 64
    l2: float = 0.1
    bias_l2: float = 0.0
    regularization: str = "example"
    init_std: float = 0.01
    optimizer: str = "adam"
    learning_rate: float = 0.001
    batch_size: int = 256
    epochs: int = 60
    patience: int = 3
    seed: int = 42
    validation: float = 0.1
    test: float = 0.1

    def model_params(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "l2": self.l2,
            "bias_l2": self.bias_l2,
            "regularization": self.regularization,
            "init_std": self.init_std,
        }
