"""Scale: mf_bias on an ml-20m-shaped synthetic data set; peak RSS and seconds per epoch.

ml-20m has 138,493 users, 26,744 movies and 20,000,263 ratings. Make a data set of that shape
(skewed item popularity, planted rank-8 structure plus noise, half-star ratings), then train
`--epochs` epochs of mf_bias with its defaults (no refit) and export the version:

    .venv/bin/recsys synth --users 138493 --items 26744 --ratings 20000263 --out data/synth-20m
    PYTHONPATH=. .venv/bin/python bench/scale.py --ratings data/synth-20m/ratings.csv \\
        [--items data/synth-20m/movies.csv] [--epochs 1] [--models-dir /tmp/scale-models]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from training.config import TrainConfig  # noqa: E402
from training.data.loaders import load_files  # noqa: E402


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ratings", required=True)
    parser.add_argument("--items")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--models-dir", default=None, help="export here (default: a temp dir)")
    args = parser.parse_args()

    started = time.perf_counter()
    data = load_files(args.ratings, args.items)
    print(
        f"loaded {len(data.ratings):,} ratings in {time.perf_counter() - started:.0f}s, "
        f"peak RSS {peak_rss_gb():.1f} GB",
        flush=True,
    )

    from training.export import export_version
    from training.rating import train_rating as train

    config = TrainConfig.for_model("mf_bias", epochs=args.epochs, refit=False)
    trained = train(data, config)
    epoch_seconds = trained.history["epoch_seconds"]
    print(f"peak RSS after training {peak_rss_gb():.1f} GB", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = export_version(trained, args.models_dir or tmp, "scale", data.ratings, data.items)
        print(f"exported {path} in {time.perf_counter() - started:.0f}s")
    train_rows = len(trained.split.train)
    print("\n| epoch | seconds | ratings/s |\n|---|---|---|")
    for i, seconds in enumerate(epoch_seconds, start=1):
        print(f"| {i} | {seconds:.1f} | {train_rows / seconds:,.0f} |")
    val, test = trained.metrics["validation"], trained.metrics["test"]
    print(
        f"\nvalidation RMSE {val['rmse']:.4f}, test RMSE {test['rmse']:.4f}; "
        f"peak RSS {peak_rss_gb():.1f} GB of the machine's 24 GB"
    )


if __name__ == "__main__":
    main()
