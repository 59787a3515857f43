"""Tune each model's defaults on ml-100k's validation split (test is never looked at here).

Stage "structure": a coordinate sweep per model. Starting from START[model] (a first guess), vary
one hyperparameter at a time with Adam and keep the value with the lowest validation RMSE.
Stage "optimizers": with the chosen structure, sweep the learning rate of Adam, RMSprop and SGD
(momentum 0.9). The winners are what the kinds table (training/models/kinds.py) holds;
a model whose best run used another optimizer than Adam gets that optimizer as its default.
Tuning never refits (refit only changes the model that is exported, not validation).

    PYTHONPATH=. .venv/bin/python bench/tune_models.py [--data-dir data] [--models mf,dnn]
        [--stage structure|optimizers|all]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from training.config import TrainConfig  # noqa: E402
from training.data.loaders import load_dataset  # noqa: E402
from training.fitting import TrainingDiverged  # noqa: E402
from training.models.kinds import MODEL_KINDS  # noqa: E402
from training.rating import train_rating as train  # noqa: E402

MF_FIRST_GUESS = {
    "factors": 64,
    "l2": 0.05,
    "bias_l2": 0.001,
    "init_std": 0.05,
    "dropout": 0.0,
    "dense_l2": 0.0,
    "learning_rate": 0.002,
    "batch_size": 512,
}
MF_TUNED = {
    "factors": 64,
    "l2": 0.1,
    "bias_l2": 0.0,
    "init_std": 0.01,
    "dropout": 0.0,
    "dense_l2": 0.0,
    "learning_rate": 0.001,
    "batch_size": 256,
}
MLP_FIRST_GUESS = {
    "factors": 32,
    "l2": 0.0,
    "init_std": 0.05,
    "dropout": 0.3,
    "dense_l2": 0.0,
    "learning_rate": 0.001,
    "batch_size": 256,
}
START = {
    "mf_bias": MF_FIRST_GUESS,
    "mf": MF_TUNED,
    "dnn": MLP_FIRST_GUESS,
    "wide": MLP_FIRST_GUESS,
    "residual": MF_TUNED,
}
MLP_SWEEPS = [
    ("dropout", [{"dropout": v} for v in (0.0, 0.3, 0.5)]),
    ("l2", [{"l2": v} for v in (0.0, 0.1, 0.5, 1.0, 2.0)]),
    ("dense_l2", [{"dense_l2": v} for v in (0.0, 0.001, 0.01, 0.1)]),
    ("factors", [{"factors": v} for v in (16, 32, 64)]),
    ("learning_rate", [{"learning_rate": v} for v in (0.0001, 0.0003, 0.001)]),
    ("batch_size", [{"batch_size": v} for v in (256, 1024)]),
]
SWEEPS = {
    "mf_bias": [
        (
            "regularisation",
            [
                *({"regularization": "example", "l2": v} for v in (0.03, 0.05, 0.08, 0.1, 0.15)),
                *(
                    {"regularization": "table", "l2": v, "bias_l2": v}
                    for v in (3e-5, 1e-4, 3e-4, 1e-3)
                ),
            ],
        ),
        ("bias_l2", [{"bias_l2": v} for v in (0.0, 1e-3, 1e-2, 0.05)]),
        ("factors", [{"factors": v} for v in (16, 32, 64, 128)]),
        ("learning_rate", [{"learning_rate": v} for v in (0.001, 0.002, 0.005)]),
        ("batch_size", [{"batch_size": v} for v in (256, 512, 2048)]),
        ("l2 again", [{"l2": v} for v in (0.08, 0.1, 0.12)]),
        ("init_std", [{"init_std": v} for v in (0.01, 0.05, 0.1)]),
    ],
    "mf": [
        ("l2", [{"l2": v} for v in (0.05, 0.1, 0.2)]),
        ("factors", [{"factors": v} for v in (32, 64, 128)]),
        ("init_std", [{"init_std": v} for v in (0.003, 0.01, 0.05)]),
    ],
    "dnn": MLP_SWEEPS,
    "wide": MLP_SWEEPS,
    "residual": [
        ("dense_l2", [{"dense_l2": v} for v in (0.0, 0.01, 0.1, 1.0, 3.0)]),
        ("l2", [{"l2": v} for v in (0.05, 0.1, 0.2)]),
        ("dropout", [{"dropout": v} for v in (0.0, 0.3)]),
        ("learning_rate", [{"learning_rate": v} for v in (0.0003, 0.001)]),
    ],
}
# Adam's rate comes from the structure stage; each adaptive optimizer is tried at a third, the
# same and three times it. SGD (momentum 0.9) needs rates of another order: an absolute grid.
RELATIVE_RATES = (1 / 3, 1.0, 3.0)
SGD_RATES = (0.03, 0.1, 0.3, 1.0)


class Runner:
    def __init__(self, data):
        self.data, self.seen = data, {}

    def __call__(self, config: TrainConfig) -> float:
        if config not in self.seen:
            started = time.perf_counter()
            try:
                trained = train(self.data, config, log=lambda *_: None)
            except TrainingDiverged:
                self.seen[config] = (float("inf"), 0, time.perf_counter() - started)
                return float("inf")
            self.seen[config] = (
                trained.metrics["validation"]["rmse"],
                trained.best_epoch,
                time.perf_counter() - started,
            )
        return self.seen[config][0]

    def row(self, model: str, sweep: str, change: dict, config: TrainConfig) -> None:
        rmse, epoch, seconds = self.seen[config]
        print(
            f"| {model} | {sweep} | {change} | {rmse:.4f} | {epoch} | {seconds:.0f} |", flush=True
        )


def tune_structure(run: Runner, model: str) -> TrainConfig:
    best = TrainConfig.for_model(model, **START[model], refit=False)
    best_rmse = run(best)
    run.row(model, "start", {}, best)
    for sweep, changes in SWEEPS[model]:
        if sweep == "bias_l2" and best.regularization == "table":
            continue  # the table form ties bias_l2 to l2 in the first sweep
        winner = best
        for change in changes:
            config = dataclasses.replace(best, **change)
            rmse = run(config)
            run.row(model, sweep, change, config)
            if rmse < best_rmse:
                best_rmse, winner = rmse, config
        best = winner
    print(f"\n{model} structure (validation RMSE {best_rmse:.4f}): {best}\n", flush=True)
    return best


def tune_optimizers(run: Runner, model: str) -> None:
    base = TrainConfig.for_model(model, optimizer="adam", refit=False)
    grid = {
        "adam": [base.learning_rate * f for f in RELATIVE_RATES],
        "rmsprop": [base.learning_rate * f for f in RELATIVE_RATES],
        "sgd": list(SGD_RATES),
    }
    for optimizer, rates in grid.items():
        results = []
        for rate in rates:
            config = dataclasses.replace(
                base, optimizer=optimizer, learning_rate=float(f"{rate:.2g}")
            )
            results.append((run(config), config.learning_rate))
            run.row(model, optimizer, {"learning_rate": config.learning_rate}, config)
        rmse, rate = min(results)
        print(f"{model} {optimizer}: best lr {rate:g} (validation RMSE {rmse:.4f})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--models", default=",".join(MODEL_KINDS))
    parser.add_argument("--stage", choices=("structure", "optimizers", "all"), default="all")
    args = parser.parse_args()
    run = Runner(load_dataset("ml-100k", args.data_dir))
    print("| model | sweep | change | val RMSE | best epoch | seconds |\n|---|---|---|---|---|---|")
    for model in args.models.split(","):
        if args.stage in ("structure", "all"):
            tune_structure(run, model)
        if args.stage in ("optimizers", "all"):
            tune_optimizers(run, model)


if __name__ == "__main__":
    main()
