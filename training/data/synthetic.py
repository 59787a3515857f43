"""Synthetic explicit ratings from a known low-rank model, for tests and benchmarks."""

from __future__ import annotations

import numpy as np
import pandas as pd

GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Thriller"]


def synthetic_ratings(
    n_users: int = 100,
    n_items: int = 60,
    n_ratings: int = 2000,
    factors: int = 4,
    seed: int = 0,
    noise: float = 0.3,
    half_stars: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ratings 1-5 drawn from mean + user bias + item bias + <p_u, q_i> + noise, rounded to whole
    stars (or half stars, as in ml-20m and later, with `half_stars`).

    Returns `(ratings, items)` in the service's own frame shapes (string ids; items with title and
    genres). Each (user, item) pair occurs at most once; popular items are rated more often.
    """
    if n_ratings > n_users * n_items:
        raise ValueError(f"{n_ratings} ratings do not fit in {n_users} users x {n_items} items")
    rng = np.random.default_rng(seed)
    popularity = rng.zipf(1.6, n_items).astype(float)
    popularity /= popularity.sum()
    # Draw more pairs than needed, keep the first occurrence of each, top up until full.
    pairs: np.ndarray = np.empty(0, dtype=np.int64)
    while len(pairs) < n_ratings:
        users = rng.integers(0, n_users, 2 * n_ratings)
        items = rng.choice(n_items, 2 * n_ratings, p=0.5 * popularity + 0.5 / n_items)
        pairs = pd.unique(np.concatenate([pairs, users * n_items + items]))
    pairs = pairs[:n_ratings]
    users, items = pairs // n_items, pairs % n_items
    p = rng.normal(0, 0.6, (n_users, factors))
    q = rng.normal(0, 0.6, (n_items, factors))
    score = (
        3.5
        + rng.normal(0, 0.4, n_users)[users]
        + rng.normal(0, 0.5, n_items)[items]
        + np.einsum("ij,ij->i", p[users], q[items])
        + rng.normal(0, noise, n_ratings)
    )
    steps = 2.0 if half_stars else 1.0
    ratings = pd.DataFrame(
        {
            "user_id": pd.Series(users + 1).astype(str),
            "item_id": pd.Series(items + 1).astype(str),
            "rating": np.clip(np.rint(score * steps) / steps, 1, 5).astype("float32"),
            "timestamp": (1_600_000_000 + rng.integers(0, 10**7, n_ratings)).astype("int64"),
        }
    )
    genres = [
        sorted(rng.choice(GENRES, rng.integers(1, 3), replace=False).tolist())
        for _ in range(n_items)
    ]
    return ratings, catalogue(genres)


def catalogue(genres: list[list[str]]) -> pd.DataFrame:
    """The items frame of a synthetic set: ids 1..n, titles "Movie i (year)", these genres."""
    n_items = len(genres)
    return pd.DataFrame(
        {
            "item_id": [str(i + 1) for i in range(n_items)],
            "title": [f"Movie {i + 1} ({1950 + i % 70})" for i in range(n_items)],
            "genres": genres,
        }
    )
