"""The export's ranking evaluation at a million items (issue 27): the three figures a version's
retrieval stage reports (its vectors on validation and on test, popularity on test), each
through `training.evaluation.ranking.ranking_metrics` with its default user sample, timed on
one thread; side by side with the same call through the former block selection (one
row-wise argpartition over the whole block, before `artifact.topn`'s large-catalogue path).

Synthetic and random on purpose (what is timed is the evaluation, not a model): 100,000 users,
1,000,000 items, K 64 Gaussian vectors, 5,000,000 fitted-on and 500,000 held-out ratings.

    PYTHONPATH=. .venv/bin/python bench/ranking_eval.py
"""

from __future__ import annotations

import time
from unittest import mock

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

import training.evaluation.ranking as ranking
from bench.topn import former_top_n_block
from training.data.split import IdIndex

USERS, ITEMS, K = 100_000, 1_000_000, 64


def former_block(scores, n, exclude=None, allowed=None):
    """`top_n_block`'s answers through the former selection (no prefilter on large catalogues)."""
    winners = former_top_n_block(scores, n, exclude)
    return [(w, scores[q, w]) for q, w in enumerate(winners)]


def main() -> None:
    rng = np.random.default_rng(0)
    users = IdIndex(str(i) for i in range(USERS))
    items = IdIndex(str(i) for i in range(ITEMS))

    def ratings(n: int) -> pd.DataFrame:
        return pd.DataFrame({
            "user_id": rng.integers(0, USERS, n).astype(str),
            "item_id": rng.integers(0, ITEMS, n).astype(str),
            "rating": rng.integers(1, 6, n).astype(float),
        })  # fmt: skip

    fitted, held = ratings(5_000_000), ratings(500_000)
    user_factors = rng.standard_normal((USERS + 1, K), dtype=np.float32)
    item_factors = rng.standard_normal((ITEMS, K), dtype=np.float32)
    figures = {
        "vectors, validation": ranking.factor_scores(user_factors, item_factors),
        "vectors, test": ranking.factor_scores(user_factors, item_factors),
        "popularity, test": ranking.popularity_scores(items, fitted),
    }
    print(f"{ITEMS:,} items: {ranking.budget_users(ITEMS):,} users a figure (score budget "
          f"{ranking.SCORE_BUDGET:.0e})")  # fmt: skip
    print("| figure | users (eligible) | NDCG@10 s.e. | seconds | former selection s |")
    print("|---|---|---|---|---|")
    total = former_total = 0.0
    with threadpool_limits(1):
        for name, scores in figures.items():
            started = time.perf_counter()
            got = ranking.ranking_metrics(scores, users, items, fitted, held, k=10)
            seconds = time.perf_counter() - started
            former = float("nan")
            if name == "vectors, test":  # the former path once (it is the slow one)
                with mock.patch.object(ranking, "top_n_block", former_block):
                    started = time.perf_counter()
                    ranking.ranking_metrics(scores, users, items, fitted, held, k=10)
                    former = time.perf_counter() - started
                former_total = former * len(figures)
            total += seconds
            print(f"| {name} | {got['users']:,} ({got['eligible']:,}) | {got['ndcg_se']:.4f} | "
                  f"{seconds:.1f} | {former:.1f} |", flush=True)  # fmt: skip
    print(
        f"the three: {total:.1f} s (target <= 120 s: {'met' if total <= 120 else 'MISSED'}); "
        f"through the former selection about {former_total:.0f} s"
    )


if __name__ == "__main__":
    main()
