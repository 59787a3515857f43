"""Synthetic ratings that judge top-N: which films a user rates follows planted tastes, not
popularity alone.

`training.data.synthetic` draws every user's films from one popularity distribution, so any
ranking is at best popularity there (retrieval 0.0429 against popularity 0.0423 NDCG@10 at
20M ratings). Here each film belongs to one of `tastes` groups and each user has a taste
profile (a sparse Dirichlet draw over the groups: most users like two or three). A rating slot
picks a group from the user's profile (with probability `taste_share`, else from the
catalogue's own mix), then a film of that group by its power-law popularity. Users' activity
is heavy-tailed too (lognormal, at least `min_per_user` each, as ml-20m's 20). The stars
follow the same tastes: a film of a group the user likes is rated higher, plus biases, a
low-rank term and noise, rounded to half stars.

So popularity ranks well but not best, a model that learns the tastes ranks better, and an
oracle that knows them best of all: the separation a benchmark of top-N at scale needs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.data.synthetic import GENRES, catalogue


def activity(n_users: int, n_ratings: int, n_items: int, least: int,
             rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """Ratings per user: `least` each plus a lognormal share of the rest, summing to
    `n_ratings` (each at most half the catalogue)."""
    least = min(least, n_ratings // n_users)
    if least < 1:
        raise ValueError(f"{n_ratings} ratings are fewer than the {n_users} users")
    extra = rng.lognormal(0.0, 1.2, n_users)
    counts = least + np.floor(extra / extra.sum() * (n_ratings - least * n_users)).astype(int)
    counts = np.minimum(counts, max(least, n_items // 2))
    short = n_ratings - counts.sum()  # rounding and the cap: hand the rest out one by one
    room = np.flatnonzero(counts < max(least, n_items // 2))
    if short > 0 and len(room):
        counts[rng.choice(room, min(short, len(room)), replace=False)] += 1
    return counts


def draw_items(users: np.ndarray, profile_cdf: np.ndarray, mix_cdf: np.ndarray,
               taste_share: float, group_of: np.ndarray, weights: np.ndarray,
               rng: np.random.Generator, chunk: int = 2_000_000) -> np.ndarray:  # fmt: skip
    """One film per entry of `users`: a group from the user's profile (else the catalogue's
    mix), then a film of that group with probability proportional to its weight."""
    order = np.argsort(group_of, kind="stable")  # films by group
    cumulative = np.cumsum(weights[order])
    group_ends = np.searchsorted(group_of[order], np.arange(len(mix_cdf)), side="right")
    mass_end = cumulative[group_ends - 1]
    mass_start = np.concatenate([[0.0], mass_end[:-1]])
    out = np.empty(len(users), np.int64)
    for start in range(0, len(users), chunk):
        who = users[start : start + chunk]
        u = rng.random(len(who))
        personal = rng.random(len(who)) < taste_share
        groups = np.where(
            personal,
            (profile_cdf[who] < u[:, None]).sum(axis=1),
            np.searchsorted(mix_cdf, u, side="right"),
        )
        groups = np.minimum(groups, len(mix_cdf) - 1)
        point = mass_start[groups] + rng.random(len(who)) * (mass_end[groups] - mass_start[groups])
        at = np.minimum(np.searchsorted(cumulative, point, side="right"), len(order) - 1)
        out[start : start + chunk] = order[at]
    return out


def planted_ratings(
    n_users: int = 1000,
    n_items: int = 500,
    n_ratings: int = 50_000,
    tastes: int = 20,
    taste_share: float = 0.9,
    min_per_user: int = 20,
    tail: float = 1.5,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, np.ndarray]]:
    """Ratings (half stars, 0.5-5) with planted tastes; see the module's docstring.

    Returns `(ratings, items, truth)` in the service's frame shapes (string ids 1..n), and the
    planted truth: `profile` [n_users, tastes], `group` [n_items], `weight` [n_items] (the
    popularity each film is drawn by), indexed by id - 1.

    Raises:
        ValueError: the ratings do not fit (more than half the catalogue per user on average,
            or fewer ratings than users).
    """
    if n_ratings > n_users * n_items // 2:
        raise ValueError(f"{n_ratings} ratings do not fit in {n_users} users x {n_items} items")
    rng = np.random.default_rng(seed)
    group = rng.integers(0, tastes, n_items)
    weight = rng.pareto(tail, n_items) + 1.0  # a long tail (the lower `tail`, the longer)
    profile = rng.dirichlet(np.full(tastes, 0.2), n_users)
    mix = np.bincount(group, weights=weight, minlength=tastes)
    mix_cdf = np.cumsum(mix / mix.sum())
    profile_cdf = np.cumsum(profile, axis=1)
    counts = activity(n_users, n_ratings, n_items, min_per_user, rng)

    # Draw every slot, keep each (user, film) pair once, draw the shortfall again.
    pairs = np.empty(0, np.int64)
    wanted = counts.copy()
    for round_ in range(16):
        users = np.repeat(np.arange(n_users), wanted)
        # After 8 rounds the users still short have used up their groups' films: the rest
        # come from the whole catalogue.
        share = taste_share if round_ < 8 else 0.0
        items = draw_items(users, profile_cdf, mix_cdf, share, group, weight, rng)
        pairs = pd.unique(np.concatenate([pairs, users * n_items + items]))
        have = np.bincount(pairs // n_items, minlength=n_users)
        wanted = np.maximum(counts - have, 0)
        if not wanted.any():
            break
    pairs = np.sort(pairs)  # a round draws only the shortfall: nobody is over their count
    users, items = pairs // n_items, pairs % n_items

    n = len(users)
    liking = profile[users, group[items]] * tastes  # 1.0 for an average taste
    p, q = rng.normal(0, 0.35, (n_users, 8)), rng.normal(0, 0.35, (n_items, 8))
    item_bias = 0.15 * np.log(weight) + rng.normal(0, 0.3, n_items)
    score = (
        3.0
        + rng.normal(0, 0.35, n_users)[users]
        + (item_bias - item_bias.mean())[items]
        + 0.45 * np.log1p(liking)
        + np.einsum("ij,ij->i", p[users], q[items])
        + rng.normal(0, 0.5, n)
    )
    start = 1_200_000_000 + rng.integers(0, 3 * 10**8, n_users)
    ratings = pd.DataFrame(
        {
            "user_id": pd.Series(users + 1).astype(str),
            "item_id": pd.Series(items + 1).astype(str),
            "rating": np.clip(np.rint(score * 2) / 2, 0.5, 5).astype("float32"),
            "timestamp": (start[users] + rng.integers(0, 10**8, n)).astype("int64"),
        }
    )
    names = [sorted({GENRES[g % len(GENRES)], GENRES[(3 * g + 1) % len(GENRES)]})
             for g in range(tastes)]  # fmt: skip
    items_frame = catalogue([names[g] for g in group])
    return ratings, items_frame, {"profile": profile, "group": group, "weight": weight}
