"""Tune mf_bias's defaults on ml-100k's validation split (test is never looked at here).

A coordinate sweep: starting from START (the first guess, before tuning), vary one hyperparameter
at a time and keep the value with the lowest validation RMSE, in this order: regularisation form
and weight, bias weight, K, learning rate, batch size, the factor weight again, the initial scale.
Prints one row per run and the chosen config, which TrainConfig's defaults copy.

    .venv/bin/python bench/tune_mf_bias.py [--data-dir data]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from training.data.loaders import load_dataset  # noqa: E402
from training.train import TrainConfig, train  # noqa: E402

START = TrainConfig(
    factors=64,
    l2=0.05,
    bias_l2=0.001,
    regularization="example",
    init_std=0.05,
    optimizer="adam",
    learning_rate=0.002,
    batch_size=512,
)
SWEEPS: list[tuple[str, list[dict]]] = [
    (
        "regularisation",
        [
            *({"regularization": "example", "l2": v} for v in (0.03, 0.05, 0.08, 0.1, 0.15)),
            *({"regularization": "table", "l2": v, "bias_l2": v} for v in (3e-5, 1e-4, 3e-4, 1e-3)),
        ],
    ),
    ("bias_l2", [{"bias_l2": v} for v in (0.0, 1e-3, 1e-2, 0.05)]),
    ("factors", [{"factors": v} for v in (16, 32, 64, 128)]),
    ("learning_rate", [{"learning_rate": v} for v in (0.001, 0.002, 0.005)]),
    ("batch_size", [{"batch_size": v} for v in (256, 512, 2048)]),
    ("l2 (again, at the new rate and batch)", [{"l2": v} for v in (0.08, 0.1, 0.12)]),
    ("init_std", [{"init_std": v} for v in (0.01, 0.05, 0.1)]),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="data")
    args = parser.parse_args()
    data = load_dataset("ml-100k", args.data_dir)
    best = START
    best_rmse, seen = float("inf"), {}
    print("| sweep | change | val RMSE | best epoch | seconds |\n|---|---|---|---|---|")
    for sweep, changes in SWEEPS:
        if sweep == "bias_l2" and best.regularization == "table":
            continue  # the table form ties bias_l2 to l2 in the first sweep
        winner = best
        for change in changes:
            config = dataclasses.replace(best, **change)
            if config not in seen:
                started = time.perf_counter()
                trained = train(data, config, log=lambda *_: None)
                seen[config] = (
                    trained.metrics["validation"]["rmse"],
                    trained.best_epoch,
                    time.perf_counter() - started,
                )
            rmse, epoch, seconds = seen[config]
            print(f"| {sweep} | {change} | {rmse:.4f} | {epoch} | {seconds:.0f} |", flush=True)
            if rmse < best_rmse:
                best_rmse, winner = rmse, config
        best = winner
    print(f"\nchosen (validation RMSE {best_rmse:.4f}): {best}")


if __name__ == "__main__":
    main()
