"""The planted-taste generator: the shape asked for, the same set from the same seed, and a set
on which knowing the tastes ranks better than popularity (the reason it exists)."""

from __future__ import annotations

import numpy as np
import pytest

from cli import main as cli_main
from training.data.loaders import load_files
from training.data.planted import planted_ratings

USERS, ITEMS, RATINGS = 1500, 600, 60_000


@pytest.fixture(scope="module")
def planted():
    return planted_ratings(USERS, ITEMS, RATINGS, tastes=12, seed=4)


def test_the_set_has_the_shape_asked_for_with_heavy_tails(planted):
    ratings, items, truth = planted
    assert RATINGS * 0.97 <= len(ratings) <= RATINGS
    assert not ratings.duplicated(["user_id", "item_id"]).any()
    assert set(ratings["rating"]) <= {0.5 * i for i in range(1, 11)}
    per_user = ratings.groupby("user_id").size()
    assert len(per_user) == USERS and per_user.min() >= 20
    assert per_user.max() > 4 * per_user.median()  # heavy-tailed activity
    per_item = ratings.groupby("item_id").size()
    assert per_item.max() > 10 * per_item.median()  # a long tail of films
    assert len(items) == ITEMS and truth["profile"].shape == (USERS, 12)
    np.testing.assert_allclose(truth["profile"].sum(axis=1), 1.0)


def test_the_same_seed_gives_the_same_set(planted):
    again, _, _ = planted_ratings(USERS, ITEMS, RATINGS, tastes=12, seed=4)
    assert again.equals(planted[0])
    other, _, _ = planted_ratings(USERS, ITEMS, RATINGS, tastes=12, seed=5)
    assert not other.equals(planted[0])


def hits_at_10(scores: np.ndarray, seen: list[set[int]], held: np.ndarray) -> float:
    """Share of users whose held-out film is in their top 10 (seen films excluded)."""
    scores = scores.copy()
    for user, films in enumerate(seen):
        scores[user, list(films)] = -np.inf
    top = np.argpartition(-scores, 10, axis=1)[:, :10]
    return float(np.mean([held[u] in top[u] for u in range(len(held))]))


def test_knowing_the_tastes_ranks_far_better_than_popularity(planted):
    ratings, _, truth = planted
    users = ratings["user_id"].astype(int).to_numpy() - 1
    films = ratings["item_id"].astype(int).to_numpy() - 1
    last = ratings.assign(u=users).groupby("u").tail(1).index  # one held out per user
    held = np.empty(USERS, int)
    held[users[last]] = films[last]
    train = np.ones(len(ratings), bool)
    train[last] = False
    seen = [set() for _ in range(USERS)]
    for u, i in zip(users[train], films[train], strict=True):
        seen[u].add(i)
    popularity = np.bincount(films[train], minlength=ITEMS).astype(float)
    group, weight, profile = truth["group"], truth["weight"], truth["profile"]
    share = np.bincount(group, weights=weight, minlength=12)[group]
    oracle = profile[:, group] * (weight / share)[None, :]  # P(film | user), the taste part
    by_popularity = hits_at_10(np.tile(popularity, (USERS, 1)), seen, held)
    by_taste = hits_at_10(oracle, seen, held)
    assert by_taste > 1.4 * by_popularity, (by_taste, by_popularity)


def test_recsys_synth_tastes_writes_a_planted_set(tmp_path):
    code = cli_main(
        ["synth", "--users", "200", "--items", "100", "--ratings", "5000", "--tastes", "5",
         "--out", str(tmp_path)]
    )  # fmt: skip
    assert code == 0
    data = load_files(tmp_path / "ratings.csv", tmp_path / "movies.csv")
    assert len(data.ratings) > 4800 and data.ratings.groupby("user_id").size().min() >= 20
    assert data.items["genres"].map(len).min() >= 1
