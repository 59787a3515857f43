from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.data.split import IdIndex, make_split, split_by_time, split_ratings


def frame(n=1000):
    return pd.DataFrame(
        {
            "user_id": [str(i % 37) for i in range(n)],
            "item_id": [str(i % 53) for i in range(n)],
            "rating": np.ones(n, np.float32),
            "row": range(n),
        }
    )


def test_split_is_seeded_disjoint_and_complete():
    data = frame()
    a, b = split_ratings(data, 0.1, 0.1, seed=7), split_ratings(data, 0.1, 0.1, seed=7)
    for part in ("train", "validation", "test"):
        pd.testing.assert_frame_equal(getattr(a, part), getattr(b, part))
    assert (len(a.train), len(a.validation), len(a.test)) == (800, 100, 100)
    together = pd.concat([a.train, a.validation, a.test])["row"]
    assert sorted(together) == list(range(1000))
    other = split_ratings(data, 0.1, 0.1, seed=8)
    assert set(other.test["row"]) != set(a.test["row"])


@pytest.mark.parametrize("validation,test", [(0.6, 0.5), (-0.1, 0.1), (0.1, 1.0)])
@pytest.mark.parametrize("cut", [split_ratings, split_by_time])
def test_split_rejects_bad_fractions(cut, validation, test):
    with pytest.raises(ValueError, match="fractions"):
        cut(frame(), validation, test)


def test_time_split_trains_on_the_past_and_tests_on_the_future():
    data = frame(10)
    # Timestamps out of file order, two ties (rows 3 and 7 at 50; 1 and 8 at 90).
    data["timestamp"] = [70, 90, 10, 50, 30, 100, 20, 50, 90, 60]
    split = make_split(data, 0.2, 0.2, seed=1, by="time")
    assert split.train["row"].tolist() == [2, 6, 4, 3, 7, 9]
    assert split.validation["row"].tolist() == [0, 1]
    assert split.test["row"].tolist() == [8, 5]
    assert split.train["timestamp"].max() <= split.validation["timestamp"].min()
    assert split.validation["timestamp"].max() <= split.test["timestamp"].min()


def test_id_index_sorts_naturally_and_maps_unknown_to_oov():
    index = IdIndex.from_column(pd.Series(["10", "2", "b", "2", "a"]))
    assert index.to_list() == ["2", "10", "a", "b"]
    assert index.lookup(["10", "zzz", "a"]).tolist() == [1, 4, 2]
    assert index.oov == 4


def test_user_time_split_holds_out_each_users_newest_ratings():
    rng = np.random.default_rng(3)
    n = 2000
    data = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in rng.integers(0, 40, n)],
            "item_id": [str(i) for i in rng.integers(0, 300, n)],
            "rating": np.ones(n, np.float32),
            "timestamp": rng.integers(0, 500, n),  # many ties within a user
            "row": range(n),
        }
    )
    split = make_split(data, 0.1, 0.2, seed=1, by="user-time")
    together = pd.concat([split.train, split.validation, split.test])["row"]
    assert sorted(together) == list(range(n))
    for user, mine in data.groupby("user_id"):
        # The reference: the user's rows by (time, file order), the first 70% to train, the
        # next 10% to validation, the rest to test (by each row's share of the user's count).
        ordered = mine.sort_values(["timestamp", "row"], kind="stable")["row"].tolist()
        share = np.arange(len(ordered)) / len(ordered)
        expected = [
            [r for r, s in zip(ordered, share, strict=True) if lo <= s < hi]
            for lo, hi in ((0, 0.7), (0.7, 0.8), (0.8, 1.1))
        ]
        parts = [
            part[part["user_id"] == user] for part in (split.train, split.validation, split.test)
        ]
        assert [sorted(p["row"]) for p in parts] == [sorted(e) for e in expected]
        train, validation, test = (p["timestamp"] for p in parts)
        assert train.max() <= min(validation.min(), test.min())
        assert validation.max() <= test.min()
    # Each part keeps the file's order.
    assert split.test["row"].is_monotonic_increasing


def test_user_time_split_without_timestamps_takes_file_order():
    data = frame(370)  # every user has 10 ratings, in file order
    split = make_split(data, 0.1, 0.1, seed=1, by="user-time")
    newest = data.groupby("user_id")["row"].max()
    assert sorted(split.test["row"]) == sorted(newest)
