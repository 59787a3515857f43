"""`recsys compare`: train a grid of models x optimizers on one seeded split and measure each run
the same way: rating metrics, top-N metrics beside a popularity baseline, and a liked/not-liked
confusion matrix. `training.report` turns the results into report.md, plots and results.json."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import numpy as np

from training.config import TrainConfig
from training.data.loaders import RatingsData
from training.evaluate import liked_confusion, predict_frame
from training.ranking import model_scores, popularity_scores, ranking_metrics
from training.train import TrainedModel, TrainingDiverged, train


def measure_run(trained: TrainedModel, k: int = 10) -> dict[str, Any]:
    """Every figure the report shows for one trained model, on its test split."""
    test = trained.split.test
    predicted = predict_frame(
        trained.model, trained.users, trained.items, test, trained.rating_range
    )
    summary = trained.summary()
    return {
        "model": trained.config.model,
        "optimizer": trained.config.optimizer,
        "config": asdict(trained.config),
        "metrics": trained.metrics,
        "ranking": ranking_metrics(
            model_scores(trained.model, len(trained.items)),
            trained.users,
            trained.items,
            trained.split.fitted_on(trained.refitted),
            test,
            k=k,
        ),
        "confusion": liked_confusion(test["rating"].to_numpy(), predicted, trained.global_mean),
        **{
            key: summary[key]
            for key in (
                "best_epoch",
                "epochs_run",
                "train_seconds",
                "seconds_to_best",
                "ratings_per_second",
                "parameters",
            )
        },
        "history": trained.history,
    }


def compare(
    data: RatingsData,
    models: list[str],
    optimizers: list[str],
    epochs: int | None = None,
    seed: int | None = None,
    k: int = 10,
    log=print,
) -> dict[str, Any]:
    """Train every model with every optimizer (tuned defaults otherwise) and measure each run."""
    runs, diverged, popularity = [], [], None
    grid = [(m, o) for m in models for o in optimizers]
    started = time.perf_counter()
    for number, (model, optimizer) in enumerate(grid, start=1):
        config = TrainConfig.for_model(model, optimizer=optimizer, epochs=epochs, seed=seed)
        log(f"[{number}/{len(grid)}] {model} + {optimizer} (lr {config.learning_rate:g})")
        try:
            trained = train(data, config, log=lambda line: log("    " + line))
        except TrainingDiverged as err:
            log(f"    -> {err}")
            diverged.append(str(err))
            continue
        run = measure_run(trained, k)
        runs.append(run)
        test = run["metrics"]["test"]
        log(
            f"    -> validation RMSE {run['metrics']['validation']['rmse']:.4f}, test RMSE "
            f"{test['rmse']:.4f}, NDCG@{k} {run['ranking']['ndcg']:.4f}, "
            f"{run['train_seconds']:.0f}s"
        )
        if popularity is None:
            fitted = trained.split.fitted_on(trained.refitted)
            popularity = ranking_metrics(
                popularity_scores(trained.items, fitted), trained.users, trained.items, fitted,
                trained.split.test, k=k,
            )  # fmt: skip
    if not runs:
        raise TrainingDiverged("every run diverged: " + "; ".join(diverged))
    best = min(range(len(runs)), key=lambda i: runs[i]["metrics"]["validation"]["rmse"])
    split = trained.split
    return {
        "data_source": data.source,
        "split": {
            "seed": split.seed,
            "train": len(split.train),
            "validation": len(split.validation),
            "test": len(split.test),
        },
        "k": k,
        "relevant_from": 4.0,
        "best_run": best,
        "popularity": popularity,
        "runs": runs,
        "diverged": diverged,
        "seconds": round(time.perf_counter() - started, 1),
    }


def summary_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per run, for tables."""
    rows = []
    for i, run in enumerate(results["runs"]):
        val, test = run["metrics"]["validation"], run["metrics"]["test"]
        rows.append(
            {
                "best": i == results["best_run"],
                "model": run["model"],
                "optimizer": run["optimizer"],
                "lr": run["config"]["learning_rate"],
                "val_rmse": val["rmse"],
                "val_mae": val["mae"],
                "val_mse": val["mse"],
                "test_rmse": test["rmse"],
                "test_mae": test["mae"],
                "test_mse": test["mse"],
                "best_epoch": run["best_epoch"],
                "seconds": run["train_seconds"],
                "seconds_to_best": run["seconds_to_best"],
                "parameters": run["parameters"],
                "train_gap": _train_gap(run),
                **{
                    f"{m}@k": run["ranking"][m]
                    for m in ("precision", "recall", "ndcg", "hit_rate", "map")
                },
                "f1": run["confusion"]["f1"],
            }
        )
    return rows


def _train_gap(run: dict[str, Any]) -> float:
    """Validation RMSE minus training RMSE at the best epoch: how much the run overfits."""
    history, best = run["history"], run["best_epoch"] - 1
    if "val_rmse" not in history:
        return float("nan")
    return float(history["val_rmse"][best] - history["rmse"][best])


def mean_by(rows: list[dict[str, Any]], key: str, value: str) -> dict[str, float]:
    """Mean of `value` over the rows sharing each `key` (e.g. per optimizer)."""
    groups: dict[str, list[float]] = {}
    for row in rows:
        groups.setdefault(row[key], []).append(row[value])
    return {k: float(np.mean(v)) for k, v in groups.items()}
