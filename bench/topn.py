"""The top-N kernel (artifact/topn.py) against the selection /recommend used before it, side by
side in one run: one user's top-10 and a block of 256 users, on ml-100k's shape (1,669 items),
an ml-20m-shaped catalogue (26,744 items) and a million items, K 64, one BLAS thread, seen
items excluded.

The kernel keeps one tie rule (higher score first, equal scores by ascending row) even when equal
scores straddle the n-th place, which costs one comparison pass over the scores; the former code
let argpartition choose among such ties. This measures what that costs.

    PYTHONPATH=. .venv/bin/python bench/topn.py
"""

from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits

from artifact.topn import score, top_n, top_n_block

SHAPES = {"ml-100k": (943, 1669), "27k items": (138_493, 26_744), "1M items": (0, 1_000_000)}
K, N, SEEN = 64, 10, 100


def former_top_n(scores: np.ndarray, n: int, exclude: np.ndarray) -> np.ndarray:
    """The single-user selection before the kernel (app/recommender.py, 2026-11-23)."""
    scores[exclude] = -np.inf
    n = min(n, len(scores) - len(exclude))
    winners = np.argpartition(scores, len(scores) - n)[len(scores) - n :]
    return winners[np.lexsort((winners, -scores[winners]))]


def former_top_n_block(scores: np.ndarray, n: int, exclude: list[np.ndarray]) -> np.ndarray:
    """The block selection before the kernel (app/recommender.py's recommend_many)."""
    counts = np.array([len(e) for e in exclude])
    scores[np.repeat(np.arange(len(scores)), counts), np.concatenate(exclude)] = -np.inf
    cut = scores.shape[1] - n
    winners = np.argpartition(scores, cut, axis=1)[:, cut:]
    top = np.take_along_axis(scores, winners, axis=1)
    order = np.lexsort((winners, -top), axis=1)
    return np.take_along_axis(winners, order, axis=1)


def per_call_us(fn, calls: int) -> float:
    for _ in range(min(calls, 50)):
        fn()
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls * 1e6


def measure(name: str, n_items: int, rng: np.random.Generator) -> None:
    items = rng.normal(0, 0.1, (n_items, K)).astype(np.float32)
    bias = rng.normal(0, 0.1, n_items).astype(np.float32)
    users = rng.normal(0, 0.1, (256, K)).astype(np.float32)
    seen = [np.sort(rng.choice(n_items, SEEN, replace=False)) for _ in range(256)]
    calls = 2000 if n_items < 5000 else 300 if n_items < 100_000 else 20
    former = per_call_us(lambda: former_top_n(score(users[0], items, bias), N, seen[0]), calls)
    kernel = per_call_us(lambda: top_n(score(users[0], items, bias), N, seen[0]), calls)
    print(f"| {name} | one user | {former:.1f} | {kernel:.1f} | {kernel / former:.2f} |")
    blocks = max(calls // 50, 5)
    former = per_call_us(lambda: former_top_n_block(score(users, items, bias), N, seen), blocks)
    kernel = per_call_us(lambda: top_n_block(score(users, items, bias), N, seen), blocks)
    print(
        f"| {name} | 256 users in one block | {former:.0f} | {kernel:.0f} | {kernel / former:.2f} |"
    )


def main() -> None:
    rng = np.random.default_rng(0)
    print("| catalogue | case | former us | kernel us | kernel / former |\n|---|---|---|---|---|")
    with threadpool_limits(1, "blas"):
        for name, (_, n_items) in SHAPES.items():
            measure(name, n_items, rng)


if __name__ == "__main__":
    main()
