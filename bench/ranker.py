"""The learned second stage (issue 26): /recommend's NDCG@10 with and without it, trained the
way `recsys train` trains a version, under each protocol, and what it adds to /recommend's
in-process cost.

Each protocol trains one version through `training.pipeline.train_version` on ml-100k split
70 / 10 / 20 (bench/retrieval.py's shape: validation chooses everything, the test figures come
from the models refitted on train+validation). The rows are the manifest's own test figures:
popularity, the retrieval vectors alone, the item-item blend (the first stage), and the
ranker over the blend's candidates. Then the random split's version is loaded as the service
loads it and one trained user's top-10 is timed in process, with the ranker and without it
(the same loaded arrays, the ranker set aside), alternately, over every user, one BLAS thread.

    PYTHONPATH=. .venv/bin/python bench/ranker.py --data-dir data [--split random,user-time]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

ROWS = (  # (label, the manifest's metrics key)
    ("popularity", "ranking_popularity_test"),
    ("retrieval vectors alone", "ranking_test"),
    ("first stage: vectors + item-item blend", "blend_test"),
    ("second stage: learned ranker over the blend's candidates", "ranker_test"),
)


def train(data, models: Path, split_by: str):
    from training.config import TrainConfig
    from training.pipeline import train_version

    by = "rating" if split_by == "random" else split_by  # TrainConfig's word for it
    config = TrainConfig.for_model("mf_bias", len(data.ratings), validation=0.1, test=0.2,
                                   split_by=by)  # fmt: skip
    said: list[str] = []
    version = train_version(data, models, split_by, config, log=said.append)
    for line in said:
        if line.startswith(("ranker", "item-item")):
            print(f"  {line}")
    return version


def cost(path: Path, rounds: int = 3) -> dict[str, dict[str, list[float]]]:
    """Per-call seconds of one trained user's top-10, with and without the ranker: the first
    call for each user (nothing kept yet: the item-item scores, and with the ranker the
    candidates' scores, are computed) and the later ones (both read back what the version's
    per-user caches kept, `RECSYS_BLEND_CACHE_MB`)."""
    from app.events.live import LiveState
    from app.events.view import VersionView
    from app.ranking.recommend import recommend
    from app.serving.loader import load_version

    loaded = load_version(path)
    arms = {
        "with the ranker": loaded,
        "first stage alone": dataclasses.replace(loaded, ranker=None),
    }
    views = {name: VersionView(v, LiveState().log, 0) for name, v in arms.items()}
    users = list(loaded.user_index)
    times = {name: {"first call": [], "later calls": []} for name in arms}
    with threadpool_limits(1):
        for round_ in range(rounds):
            for n, user in enumerate(users):  # the two arms alternately, user by user, and
                # which goes first alternates too: the second reads the user's rows of the
                # shared item-item matrix from a warm cache
                for name, view in list(views.items())[:: 1 if n % 2 else -1]:
                    started = time.perf_counter()
                    recommend(view.user(user), 10)
                    seconds = time.perf_counter() - started
                    times[name]["first call" if round_ == 0 else "later calls"].append(seconds)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--split", default="random,user-time")
    args = parser.parse_args()
    from training.data.loaders import load_dataset

    data = load_dataset("ml-100k", args.data_dir)
    splits = args.split.split(",")
    table: dict[str, dict[str, float]] = {}
    paths = {}
    with tempfile.TemporaryDirectory() as tmp:
        for split_by in splits:
            print(f"\nml-100k, split by {split_by}", flush=True)
            started = time.perf_counter()
            version = train(data, Path(tmp), split_by)
            metrics = version.path and __import__("json").loads(
                (version.path / "manifest.json").read_text())["metrics"]  # fmt: skip
            table[split_by] = {key: metrics[key]["ndcg"] for _, key in ROWS if key in metrics}
            table[split_by]["se"] = metrics.get("ranker_test", {}).get("ndcg_se", float("nan"))
            paths[split_by] = version.path
            print(
                f"  trained in {time.perf_counter() - started:.0f} s ({version.describe_stages()})"
            )
        print("\n| method | " + " | ".join(splits) + " |")
        print("|---|" + "---|" * len(splits))
        for label, key in ROWS:
            cells = []
            for s in splits:
                value, floor = table[s].get(key), table[s].get("ranking_popularity_test")
                shown = "not kept (validation)"
                if value is not None:
                    shown = f"{value:.4f} ({value / floor:.2f}x)"
                cells.append(shown)
            print(f"| {label} | " + " | ".join(cells) + " |")
        print("| ranker's standard error over test users | "
              + " | ".join(f"{table[s]['se']:.4f}" for s in splits) + " |")  # fmt: skip
        times = cost(paths[splits[0]])
    print(f"\nin-process top-10 of a trained user, {splits[0]} split's version, one BLAS thread:")
    for kind in ("first call", "later calls"):
        p50 = {}
        for name, arm in times.items():
            ms = np.array(arm[kind]) * 1000
            p50[name] = float(np.median(ms))
            print(f"  {kind:>11}, {name:>18}: p50 {p50[name]:.3f} ms  "
                  f"p99 {np.percentile(ms, 99):.3f} ms  ({len(ms):,} calls)")  # fmt: skip
        ratio = p50["with the ranker"] / p50["first stage alone"]
        verdict = "met" if ratio <= 2 else "MISSED"
        print(f"  {kind:>11}: p50 ratio {ratio:.2f}x (target <= 2x): {verdict}")
    ndcg = table[splits[0]].get("ranker_test", float("nan"))
    print(f"NDCG@10 {ndcg:.4f} on the {splits[0]} split (target >= 0.41): "
          + ("met" if ndcg >= 0.41 else "MISSED"))  # fmt: skip


if __name__ == "__main__":
    main()
