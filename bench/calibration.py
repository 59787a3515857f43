"""How honest /predict's intervals are on ml-100k: coverage of held-out ratings at nominal 50,
80 and 90%, the mean width, and how the width shrinks with the user's number of ratings.

Protocol: the diversity benchmark's split and version (ratings cut at random, seed 42, into 80%
fitted on and 20% test; the default `recsys train` on the 80%, whose own validation cut
calibrated the intervals). Every test rating whose user and item the version knows is predicted
through the service's own functions (the SavedModel's rating, then `app.ranking.uncertainty`),
and counts as covered when it lies in [low, high]. Target: each coverage within 2 points of
its nominal level.

    PYTHONPATH=. .venv/bin/python bench/calibration.py [--data-dir data] [--work-dir DIR]
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from app.ranking.uncertainty import intervals  # noqa: E402
from bench.diversity import held_out  # noqa: E402

LEVELS = (0.5, 0.8, 0.9)
BUCKETS = ((1, 20), (21, 50), (51, 100), (101, 200), (201, 10**9))
TOLERANCE = 0.02


def main() -> None:
    split, loaded, live = held_out(__doc__.splitlines()[0])
    test = split.test
    known = test["user_id"].isin(loaded.user_index) & test["item_id"].isin(loaded.item_index)
    test = test[known]
    users, items = test["user_id"].tolist(), test["item_id"].tolist()
    truth = test["rating"].to_numpy(np.float64)
    predicted = np.asarray(loaded.predict_ratings(users, items), np.float64)
    counts = np.array([len(loaded.seen.of(loaded.user_index[u])) for u in users])
    spec = loaded.manifest.uncertainty
    assert spec is not None
    print(
        f"{len(test):,} test ratings (of {known.size:,}); calibrated on "
        f"{spec.validation_ratings:,} validation ratings, noise {spec.noise:.4f}; "
        f"test RMSE {np.sqrt(np.mean((truth - predicted) ** 2)):.4f}"
    )
    print("| nominal | coverage | off by | mean width | met (within 2 points) |")
    print("|---|---|---|---|---|")
    widths = {}
    for level in LEVELS:
        started = time.perf_counter()
        ranges = np.array(intervals(live, users, items, predicted, level))
        seconds = time.perf_counter() - started
        covered = (truth >= ranges[:, 0] - 1e-9) & (truth <= ranges[:, 1] + 1e-9)
        width = ranges[:, 1] - ranges[:, 0]
        widths[level] = (width, covered)
        off = covered.mean() - level
        print(
            f"| {level:.0%} | {covered.mean():.3f} | {off:+.3f} | {width.mean():.3f} | "
            f"{'yes' if abs(off) <= TOLERANCE else 'NO'} |  ({seconds:.1f} s)",
            flush=True,
        )
    print("\nBy the user's number of training ratings (90% intervals):")
    print("| ratings | test ratings | mean width | coverage |")
    print("|---|---|---|---|")
    width, covered = widths[0.9]
    for low, high in BUCKETS:
        at = (counts >= low) & (counts <= high)
        if at.any():
            label = f"{low}-{high}" if high < 10**9 else f"{low}+"
            print(f"| {label} | {at.sum():,} | {width[at].mean():.3f} | {covered[at].mean():.3f} |")


if __name__ == "__main__":
    main()
