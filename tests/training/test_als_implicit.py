"""Implicit-feedback ALS for the retrieval vectors: a half-pass is numpy's exact solution of every
row's normal equations over the whole catalogue (positives at confidence 1 + alpha * w, every
other pair a zero at confidence 1), the reported loss is that objective recomputed pair by pair,
every pass lowers it, and `train_retrieval` picks the solver the config resolves to."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.training.test_als import N_ITEMS, N_USERS, small_problem
from training.als import Side
from training.als_implicit import ImplicitALS
from training.config import RetrievalConfig
from training.models.retrieval import SoftmaxRetrieval

ALPHA, L2 = 4.0, 0.5


def solver_of(seed: int = 0, chunk_entries: int = 8):
    users, items, ratings = small_problem(seed)
    weights = ratings / ratings.mean()
    model = SoftmaxRetrieval(N_USERS, N_ITEMS, factors=3, init_std=0.5)
    solver = ImplicitALS(model, users, items, weights, ALPHA, L2)
    confidence = (1 + ALPHA * weights).astype(np.float32)
    # Chunks of at most 8 entries: the long row is a chunk alone, the others share chunks.
    solver.by_user = Side.of(users, items, confidence, N_USERS, N_ITEMS, chunk_entries)
    solver.by_item = Side.of(items, users, confidence, N_ITEMS, N_USERS, chunk_entries)
    return solver, users, items, weights


def dense(users, items, weights):
    """Preference and confidence matrices over every pair."""
    preference = np.zeros((N_USERS, N_ITEMS))
    confidence = np.ones((N_USERS, N_ITEMS))
    preference[users, items] = 1.0
    confidence[users, items] = 1 + ALPHA * weights
    return preference, confidence


def objective(x, y, preference, confidence):
    """The implicit-feedback objective summed over every (user, item) pair, as written."""
    error = preference - x @ y.T
    return float(np.sum(confidence * error**2) + L2 * (np.sum(x**2) + np.sum(y**2)))


def test_a_half_pass_is_numpys_exact_solution_over_the_whole_catalogue():
    solver, users, items, weights = solver_of()
    assert len(solver.by_user.chunks) > 3
    preference, confidence = dense(users, items, weights)
    y = np.asarray(solver.model.item_factors.numpy(), np.float64)
    expected = np.array(
        [
            np.linalg.solve(
                y.T @ (confidence[u, :, None] * y) + L2 * np.eye(3),
                y.T @ (confidence[u] * preference[u]),
            )
            for u in range(N_USERS)
        ]
    )
    from training.als_implicit import implicit_half_pass

    solved, _ = implicit_half_pass(solver.by_user, y.astype(np.float32), L2)
    np.testing.assert_allclose(solved, expected, rtol=2e-3, atol=2e-4)


def test_the_reported_loss_is_the_objective_over_every_pair_and_each_pass_lowers_it():
    solver, users, items, weights = solver_of(1)
    preference, confidence = dense(users, items, weights)
    losses = []
    for _ in range(4):
        losses.append(solver.run_pass()["loss"])
        x = np.asarray(solver.model.user_factors.numpy(), np.float64)
        y = np.asarray(solver.model.item_factors.numpy(), np.float64)
        assert losses[-1] * len(users) == pytest.approx(
            objective(x, y, preference, confidence), rel=1e-4
        )
    assert all(b <= a + 1e-6 for a, b in zip(losses, losses[1:], strict=False))
    assert not np.any(solver.model.item_bias.numpy())


def test_alpha_and_l2_must_be_positive_and_the_solver_known():
    with pytest.raises(ValueError, match="alpha > 0 and l2 > 0, not 0 and 100"):
        RetrievalConfig(alpha=0.0)
    with pytest.raises(ValueError, match="one of auto, softmax, als, not 'cg'"):
        RetrievalConfig(solver="cg")


def test_auto_takes_als_exactly_where_the_softmax_would_be_sampled():
    config = RetrievalConfig(sampled_above=100)
    assert config.resolved(100).solver == "softmax"
    assert config.resolved(101).solver == "als"
    assert RetrievalConfig(solver="softmax").resolved(10**6).solver == "softmax"
    assert RetrievalConfig(sampled_above=None).resolved(10**6).solver == "softmax"


def test_train_retrieval_fits_als_vectors_that_rank_what_users_rated_together():
    """Two disjoint groups of users and films: the users' five best unrated films under the ALS
    vectors are of their own group (all but a few), and they rank held-out films better than
    popularity."""
    from training.data.split import make_split
    from training.retrieval import train_retrieval

    rng = np.random.default_rng(0)
    rows = []
    for u in range(120):
        group = u % 2
        for i in rng.choice(20, size=8, replace=False):
            rows.append((f"u{u}", f"i{group * 20 + i}", float(rng.integers(3, 6)), u))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    split = make_split(frame, 0.1, 0.1, 0, "rating")
    config = RetrievalConfig(
        solver="als", factors=4, epochs=4, eval_users=200, alpha=10.0, als_l2=1.0
    )
    result = train_retrieval(split, config, refit=False, log=lambda *_: None)
    assert result.config.solver == "als"
    fit = result.fitted.final
    vectors = fit.model.factors_for_export()
    scores = vectors["user_factors"] @ vectors["item_factors"].T
    group_of_item = np.array([int(i[1:]) >= 20 for i in fit.items.ids])
    rated = split.train.groupby("user_id")["item_id"].agg(set)
    own = []
    for row, user in enumerate(fit.users.ids):
        unrated = [j for j, i in enumerate(fit.items.ids) if i not in rated[user]]
        best = sorted(unrated, key=lambda j: -scores[row, j])[:5]
        own.extend(group_of_item[best] == (int(user[1:]) % 2 == 1))
    assert np.mean(own) >= 0.98  # 4 factors also learn each group's popular films
    assert result.metrics["test"]["ndcg"] > 2 * result.metrics["popularity_test"]["ndcg"]
