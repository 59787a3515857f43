"""Seeded train/validation/test split and the id <-> contiguous index mapping."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.config import SPLITS


@dataclass(frozen=True)
class Split:
    """Three disjoint parts of one ratings frame. Validation tunes; test is only reported."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    seed: int

    def fitted_on(self, refitted: bool) -> pd.DataFrame:
        """The ratings a final model learned from: train, plus validation after a refit."""
        if refitted:
            return pd.concat([self.train, self.validation], ignore_index=True)
        return self.train

    def everything(self) -> pd.DataFrame:
        """Every rating of the three parts: what an exported version learns from."""
        return pd.concat([self.train, self.validation, self.test], ignore_index=True)


def split_ratings(
    ratings: pd.DataFrame, validation: float = 0.1, test: float = 0.1, seed: int = 42
) -> Split:
    """Shuffle the rows with `seed` and cut them into train/validation/test.

    The same frame and seed always give the same split. Rows are split at random (not per user),
    so a few users or items of validation/test may be absent from train: models score those with
    their out-of-vocabulary fallback, and the metrics include them.
    """
    _check_fractions(validation, test)
    n = len(ratings)
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_val = round(n * test), round(n * validation)
    parts = np.split(order, [n - n_val - n_test, n - n_test])
    train, val, tst = (ratings.iloc[np.sort(p)].reset_index(drop=True) for p in parts)
    if train.empty:
        raise ValueError(f"{n} ratings leave nothing to train on after the split")
    return Split(train, val, tst, seed)


def _check_fractions(validation: float, test: float) -> None:
    if not (0 <= validation < 1 and 0 <= test < 1 and validation + test < 1):
        raise ValueError(
            f"validation ({validation}) and test ({test}) must be fractions summing below 1"
        )


def split_per_user(
    ratings: pd.DataFrame, validation: float = 0.1, test: float = 0.1, seed: int = 42
) -> Split:
    """RecBole's default for ml-100k (`RS: [0.8, 0.1, 0.1]`, random order, grouped by user): each
    user's ratings are shuffled with `seed` and cut 80/10/10, so every user is in every part
    that their count allows."""
    rng = np.random.default_rng(seed)
    shuffled = ratings.iloc[rng.permutation(len(ratings))]
    rank = shuffled.groupby("user_id", sort=False).cumcount().to_numpy()
    count = shuffled.groupby("user_id", sort=False)["user_id"].transform("size").to_numpy()
    share = rank / count
    parts = np.where(share < 1 - validation - test, 0, np.where(share < 1 - test, 1, 2))
    train, val, tst = (shuffled[parts == p].sort_index().reset_index(drop=True) for p in range(3))
    return Split(train, val, tst, seed)


def split_by_time(
    ratings: pd.DataFrame, validation: float = 0.1, test: float = 0.1, seed: int = 42
) -> Split:
    """The past predicts the future: every rating is ordered by its timestamp (ties in file order)
    and cut there, the oldest to train, the next to validation, the newest to test. Users and
    films that first appear after a cut are cold in the parts that follow it, as they would be
    for a deployed version. `seed` is only recorded. Without timestamps, file order is time."""
    _check_fractions(validation, test)
    n = len(ratings)
    when = ratings["timestamp"].to_numpy() if "timestamp" in ratings else np.zeros(n)
    order = np.lexsort((np.arange(n), when))
    n_test, n_val = round(n * test), round(n * validation)
    parts = np.split(order, [n - n_val - n_test, n - n_test])
    train, val, tst = (ratings.iloc[p].reset_index(drop=True) for p in parts)
    if train.empty:
        raise ValueError(f"{n} ratings leave nothing to train on after the split")
    return Split(train, val, tst, seed)


def split_user_time(
    ratings: pd.DataFrame, validation: float = 0.1, test: float = 0.1, seed: int = 42
) -> Split:
    """Each user's future from their past: a user's ratings are ordered by timestamp (ties in
    file order) and cut by share like `split_per_user`, their oldest to train, the next to
    validation, their newest to test. No user has a held-out rating older than one they
    trained on; every user with enough ratings is in every part. `seed` is only recorded."""
    _check_fractions(validation, test)
    n = len(ratings)
    when = ratings["timestamp"].to_numpy() if "timestamp" in ratings else np.zeros(n)
    users = pd.factorize(ratings["user_id"])[0]
    order = np.lexsort((np.arange(n), when, users))  # by user, then time, then file position
    ordered = users[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    count = np.diff(np.r_[starts, n])
    rank = np.arange(n) - np.repeat(starts, count)
    share = rank / np.repeat(count, count)
    parts = np.where(share < 1 - validation - test, 0, np.where(share < 1 - test, 1, 2))
    train, val, tst = (
        ratings.iloc[np.sort(order[parts == p])].reset_index(drop=True) for p in range(3)
    )
    if train.empty:
        raise ValueError(f"{n} ratings leave nothing to train on after the split")
    return Split(train, val, tst, seed)


def make_split(
    ratings: pd.DataFrame, validation: float, test: float, seed: int, by: str = "rating"
) -> Split:
    """`by="rating"`: shuffle all ratings and cut (split_ratings); `by="user"`: cut each user's
    ratings (split_per_user, RecBole's protocol); `by="time"`: cut them all at one point in
    time (split_by_time); `by="user-time"`: cut each user's at their own point in time
    (split_user_time)."""
    if by not in SPLITS:
        raise ValueError(f"split by {by!r}: choose one of {', '.join(SPLITS)}")
    check_trainable(ratings)
    cut = {
        "rating": split_ratings,
        "user": split_per_user,
        "time": split_by_time,
        "user-time": split_user_time,
    }[by]
    split = cut(ratings, validation, test, seed)
    for name, share, part in (
        ("validation", validation, split.validation),
        ("test", test, split.test),
    ):
        if share > 0 and part.empty:
            raise ValueError(
                f"{len(ratings):,} ratings leave the {name} split empty ({share:.0%} of them, "
                f"split by {by}): there would be nothing to stop early on or to report"
            )
    return split


def check_trainable(ratings: pd.DataFrame) -> None:
    """Refuse data a collaborative model cannot learn from: it needs several users and items.

    Raises:
        ValueError: fewer than 2 distinct users or items (the message names them and counts).
    """
    for column, kind in (("user_id", "user"), ("item_id", "item")):
        distinct = ratings[column].unique()
        if len(distinct) < 2:
            raise ValueError(
                f"{len(ratings):,} ratings, all from one {kind} ({kind} id {distinct[0]!r}): "
                f"a recommender learns from how users and items differ; "
                f"it needs at least 2 {kind}s"
            )


class IdIndex:
    """External ids (strings) <-> contiguous indices 0..n-1; unknown ids map to n (the OOV row)."""

    def __init__(self, ids: Iterable[str]):
        self.ids = pd.Index(pd.unique(pd.Series(list(ids), dtype=object)), dtype=object)

    @classmethod
    def from_column(cls, column: pd.Series) -> IdIndex:
        """Index of the distinct values of `column`, sorted so the order does not depend on rows."""
        return cls(sorted(column.astype(str).unique(), key=_natural_key))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def oov(self) -> int:
        return len(self.ids)

    def lookup(self, values: Iterable[str] | pd.Series) -> np.ndarray:
        if not isinstance(values, pd.Series | pd.Index | np.ndarray):
            values = pd.Index(list(values), dtype=object)
        # A Series goes in as it is: copied to a list and an Index first, 16M ids took 2.5x as
        # long (bench/scale.py's load).
        positions = self.ids.get_indexer(values)
        positions[positions < 0] = self.oov
        return positions.astype(np.int32)

    def to_list(self) -> list[str]:
        return [str(v) for v in self.ids]


def _natural_key(value: str) -> tuple[int, int | str]:
    # Numeric ids sort as numbers ("2" before "10"), the rest as text after them.
    return (0, int(value)) if value.isdigit() else (1, value)
