"""`recsys compare`: train a grid of models x optimizers on one seeded split and measure each run
the same way: rating metrics, top-N metrics beside a popularity baseline, and a liked/not-liked
confusion matrix. `training.evaluation.report` turns the results into report.md, plots and
results.json."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import numpy as np

from training.config import RetrievalConfig, TrainConfig
from training.data.ratings import RatingsData
from training.evaluation.ranking import (
    RELEVANT_FROM,
    both_rankings,
    model_scores,
    popularity_scores,
)
from training.evaluation.rating import liked_confusion, predict_frame
from training.fitting import TrainingDiverged
from training.rating import TrainedModel, train_rating


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
        **both_rankings(
            model_scores(trained.model, len(trained.items)),
            trained.users,
            trained.items,
            trained.split.fitted_on(trained.refitted),
            test,
            k,
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
    split_by: str | None = None,
    retrieval: RetrievalConfig | None = None,
) -> dict[str, Any]:
    """Train every model with every optimizer (tuned defaults otherwise) and measure each run;
    with `retrieval`, also the top-N vectors the default version serves /recommend from."""
    runs, diverged, popularity = [], [], None
    grid = [(m, o) for m in models for o in optimizers]
    started = time.perf_counter()
    for number, (model, optimizer) in enumerate(grid, start=1):
        config = TrainConfig.for_model(
            model, optimizer=optimizer, epochs=epochs, seed=seed, split_by=split_by
        )
        log(f"[{number}/{len(grid)}] {model} + {optimizer} (lr {config.learning_rate:g})")
        try:
            trained = train_rating(data, config, log=lambda line: log("    " + line))
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
            popularity = both_rankings(
                popularity_scores(trained.items, fitted),
                trained.users,
                trained.items,
                fitted,
                trained.split.test,
                k,
            )
    if not runs:
        raise TrainingDiverged("every run diverged: " + "; ".join(diverged))
    top_n = None
    if retrieval is not None:
        top_n = measure_retrieval(trained, retrieval, k, log)
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
        "split_by": trained.config.split_by,
        "relevant_from": RELEVANT_FROM,
        "best_run": best,
        "popularity": popularity,
        "retrieval": top_n,
        "runs": runs,
        "diverged": diverged,
        "seconds": round(time.perf_counter() - started, 1),
    }


def measure_retrieval(
    trained: TrainedModel, config: RetrievalConfig, k: int, log=print
) -> dict[str, Any]:
    """Train the retrieval vectors on the runs' split (early stopping on validation NDCG@10,
    refit like the rating models) and rank the test split with them."""
    from training.retrieval import train_retrieval, vector_scores

    log(f"[retrieval] softmax over the catalogue, K {config.factors}")
    result = train_retrieval(
        trained.split,
        config,
        refit=trained.refitted,
        log=lambda line: log("    " + line),
    )
    rankings = both_rankings(
        vector_scores(result.model),
        result.users,
        result.items,
        trained.split.fitted_on(trained.refitted),
        trained.split.test,
        k,
    )
    log(
        f"    -> validation NDCG@{k} {result.metrics.get('validation', {}).get('ndcg', 0):.4f}, "
        f"test NDCG@{k} "
        f"{rankings['ranking']['ndcg']:.4f}, {result.seconds:.0f}s"
    )
    return {**rankings, **result.summary(), "history": result.history}


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
