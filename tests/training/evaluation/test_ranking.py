"""Top-N metrics and the liked/not-liked confusion matrix against hand-computed references."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from training.data.split import IdIndex
from training.evaluation import ranking
from training.evaluation.ranking import factor_scores, popularity_scores, ranking_metrics
from training.evaluation.rating import liked_confusion


def frame(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])


USERS = IdIndex(["u1", "u2", "u3"])
ITEMS = IdIndex(["a", "b", "c", "d", "e"])
# u1 rated a in training; u2 rated b and c; u3 has no relevant held-out item.
FITTED = frame([("u1", "a", 5), ("u2", "b", 4), ("u2", "c", 2), ("u3", "a", 3)])
HELD_OUT = frame(
    [
        ("u1", "b", 5),
        ("u1", "e", 4),
        ("u1", "c", 2),  # relevant: b, e
        ("u2", "d", 4),
        ("u2", "zz", 5),  # relevant: d, unknown zz
        ("u3", "e", 3),
    ]
)
# Fixed scores: item order by score is a > b > c > d > e for everyone.
SCORES = np.array([5.0, 4.0, 3.0, 2.0, 1.0])


def fixed(rows):
    return np.tile(SCORES, (len(rows), 1))


def test_ranking_metrics_equal_a_hand_computation():
    got = ranking_metrics(fixed, USERS, ITEMS, FITTED, HELD_OUT, k=2)
    # u1: a is seen -> top-2 = [b, c]; relevant {b, e}: 1 hit at rank 1.
    # u2: b, c seen -> top-2 = [a, d]; relevant {d, zz}: 1 hit at rank 2.
    dcg_u1, idcg = 1.0, 1.0 + 1 / math.log2(3)
    dcg_u2 = 1 / math.log2(3)
    assert got["users"] == 2
    assert got["precision"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert got["recall"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert got["hit_rate"] == pytest.approx(1.0)
    assert got["ndcg"] == pytest.approx((dcg_u1 / idcg + dcg_u2 / idcg) / 2)
    # AP@2: u1 hits at rank 1 -> (1/1) / 2; u2 hits at rank 2 -> (1/2) / 2.
    assert got["map"] == pytest.approx((0.5 + 0.25) / 2)
    assert got["coverage"] == pytest.approx(4 / 5)  # a, b, c, d recommended; e never


def test_every_held_out_interaction_is_relevant_under_recbole_convention():
    got = ranking_metrics(fixed, USERS, ITEMS, FITTED, HELD_OUT, k=2, relevant_from=None)
    # u1 now also counts c (rated 2): top-2 [b, c] -> 2 hits of 3; u3 ranks [b, c], wants e.
    assert got["users"] == 3
    assert got["hit_rate"] == pytest.approx(2 / 3)
    assert got["precision"] == pytest.approx((2 / 2 + 1 / 2 + 0) / 3)


def test_a_seeded_sample_of_users_is_evaluated_when_asked():
    first = ranking_metrics(fixed, USERS, ITEMS, FITTED, HELD_OUT, k=2, max_users=1, seed=3)
    again = ranking_metrics(fixed, USERS, ITEMS, FITTED, HELD_OUT, k=2, max_users=1, seed=3)
    assert first == again and first["users"] == 1


def test_ndcg_comes_with_its_standard_error_over_the_users():
    got = ranking_metrics(fixed, USERS, ITEMS, FITTED, HELD_OUT, k=2)
    idcg = 1.0 + 1 / math.log2(3)
    per_user = np.array([1.0 / idcg, (1 / math.log2(3)) / idcg])  # u1, u2 as above
    assert got["ndcg_se"] == pytest.approx(per_user.std(ddof=1) / math.sqrt(2))
    assert got["eligible"] == got["users"] == 2


def test_a_large_catalogue_ranks_the_sample_its_score_budget_allows(monkeypatch):
    rng = np.random.default_rng(0)
    users = IdIndex([f"u{i}" for i in range(60)])
    held = frame([(f"u{i}", "e", 5) for i in range(60)])
    fitted = frame([(f"u{i}", "a", 3) for i in range(60)])
    table = rng.normal(size=(60, 5))

    def scores(rows):
        return table[rows]

    everyone = ranking_metrics(scores, users, ITEMS, fitted, held, k=2)
    assert everyone["users"] == everyone["eligible"] == 60  # 300 scores: inside the budget
    monkeypatch.setattr(ranking, "SCORE_BUDGET", 100)  # 20 users of 5 items
    monkeypatch.setattr(ranking, "MIN_SAMPLE", 10)
    sampled = ranking_metrics(scores, users, ITEMS, fitted, held, k=2, seed=4)
    assert (sampled["users"], sampled["eligible"]) == (20, 60)
    assert sampled == ranking_metrics(scores, users, ITEMS, fitted, held, k=2, max_users=20, seed=4)
    monkeypatch.setattr(ranking, "SCORE_BUDGET", 1)
    assert ranking_metrics(scores, users, ITEMS, fitted, held, k=2)["users"] == 10  # the floor
    assert ranking_metrics(scores, users, ITEMS, fitted, held, k=2, max_users=None)["users"] == 60
    with pytest.raises(ValueError, match="max_users 'some'"):
        ranking_metrics(scores, users, ITEMS, fitted, held, k=2, max_users="some")


def test_popularity_baseline_ranks_by_count_in_fitted_data():
    scores = popularity_scores(ITEMS, FITTED)(np.array([0, 1]))
    assert scores.tolist() == [[2, 1, 1, 0, 0]] * 2


def test_factor_scores_are_the_recommend_formula():
    p = np.array([[1.0, 0.0], [0.0, 2.0]])
    q = np.array([[1.0, 1.0], [3.0, 0.0], [0.0, 1.0]])
    bias = np.array([0.5, 0.0, -1.0])
    assert factor_scores(p, q, bias)(np.array([1, 0])).tolist() == [
        [2.5, 0.0, 1.0],
        [1.5, 3.0, -1.0],
    ]


def test_liked_confusion_counts_and_scores():
    actual = np.array([5, 4, 2, 1, 4, 3])
    predicted = np.array([4.2, 3.1, 3.9, 2.0, 4.5, 3.4])
    got = liked_confusion(actual, predicted, threshold=3.5)
    # actual liked: 5,4,4 (idx 0,1,4); predicted liked: idx 0,2,4
    assert got["matrix"] == {
        "liked": {"liked": 2, "not_liked": 1},
        "not_liked": {"liked": 1, "not_liked": 2},
    }
    assert got["precision"] == pytest.approx(2 / 3) and got["recall"] == pytest.approx(2 / 3)
    assert got["f1"] == pytest.approx(2 / 3) and got["accuracy"] == pytest.approx(4 / 6)


def test_seen_items_are_built_once_per_frame_and_let_go_with_it():
    fitted = FITTED.copy()
    first = ranking.seen_items(USERS, ITEMS, fitted)
    assert ranking.seen_items(USERS, ITEMS, fitted) is first  # kept while the frame lives
    other = ranking.seen_items(USERS, ITEMS, FITTED.copy())  # another frame: built anew
    assert other is not first
    np.testing.assert_array_equal(other.indices, first.indices)
    np.testing.assert_array_equal(other.indptr, first.indptr)
    key = (id(USERS), id(ITEMS), id(fitted))
    assert key in ranking._SEEN
    del fitted
    assert key not in ranking._SEEN  # the frame gone, its rows go too
