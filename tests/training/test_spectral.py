"""The spectral start of the rating ALS: the randomised range finder gives numpy's exact leading
singular vectors, the biases are the damped means they say they are, and ALS from this start
is ahead of ALS from the random one after the same passes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from training.als import ALS, fit_als
from training.loop import Arrays, LoopSettings
from training.models.kinds import build_model
from training.spectral import DAMPING, damped_biases, leading_right_vectors, spectral_tables


def planted(n_users=120, n_items=80, rank=3, share=0.35, seed=0):
    """Ratings of a rank-3 taste matrix plus noise, a random share of the pairs observed."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=(n_users, rank)) @ rng.normal(size=(rank, n_items))
    users, items = np.nonzero(rng.random((n_users, n_items)) < share)
    ratings = 3.5 + truth[users, items] + 0.3 * rng.normal(size=len(users))
    return users, items, ratings.astype(np.float32)


def test_the_range_finder_gives_numpys_leading_singular_vectors():
    users, items, ratings = planted()
    matrix = sp.csr_matrix((ratings - 3.5, (users, items)), shape=(120, 80))
    values, right = leading_right_vectors(matrix, 5, seed=3)
    _, exact_values, exact_right = np.linalg.svd(matrix.toarray())
    np.testing.assert_allclose(values, exact_values[:5], rtol=1e-4)
    # The same subspace: every principal angle's cosine is 1.
    cosines = np.linalg.svd(exact_right[:5] @ right, compute_uv=False)
    np.testing.assert_allclose(cosines, 1.0, atol=1e-4)
    np.testing.assert_allclose(right.T @ right, np.eye(5), atol=1e-5)


def test_the_biases_are_damped_item_then_user_means():
    users = np.array([0, 0, 1, 2, 2, 2])
    items = np.array([0, 1, 0, 0, 1, 2])
    residual = np.array([1.0, -2.0, 3.0, 0.5, 1.0, -1.0])
    user_bias, item_bias, left = damped_biases(users, items, residual, 4, 4)
    for i in range(4):
        mine = items == i
        assert item_bias[i] == pytest.approx(residual[mine].sum() / (mine.sum() + DAMPING))
    after_items = residual - item_bias[items]
    for u in range(4):
        mine = users == u
        assert user_bias[u] == pytest.approx(after_items[mine].sum() / (mine.sum() + DAMPING))
    np.testing.assert_allclose(left, after_items - user_bias[users])


def test_the_tables_are_v_sqrt_s_of_the_residuals_with_the_biases_last():
    users, items, ratings = planted()  # rank 3: the leading three stand clear of the noise
    user_table, item_table = spectral_tables(users, items, ratings, 120, 80, 3, 3.5, True)
    assert user_table.shape == (120, 4) and item_table.shape == (80, 4)
    assert not user_table[:, :3].any()  # the first half-pass solves the users
    user_bias, item_bias, left = damped_biases(users, items, ratings - 3.5, 120, 80)
    np.testing.assert_allclose(item_table[:, 3], item_bias, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(user_table[:, 3], user_bias, rtol=1e-5, atol=1e-6)
    dense = sp.csr_matrix((left, (users, items)), shape=(120, 80)).toarray()
    _, values, right = np.linalg.svd(dense)
    # Column by column up to sign: the singular vectors, each times sqrt(its value).
    expected = right[:3].T * np.sqrt(values[:3])
    signs = np.sign(np.sum(expected * item_table[:, :3], axis=0))
    # float32 residuals and a randomised finder: agreement to ~1e-3 of entries up to ~1.5
    np.testing.assert_allclose(item_table[:, :3] * signs, expected, atol=1e-3)
    _, plain = spectral_tables(users, items, ratings, 120, 80, 3, 3.5, False)
    assert plain.shape == (80, 3)  # mf: no bias column


def _model(n_users=120, n_items=80):
    model = build_model("mf_bias", n_users, n_items, 3.5, factors=4, l2=0.05, init_std=0.01)
    model({"user": np.zeros(1, np.int32), "item": np.zeros(1, np.int32)})
    return model


def test_als_from_the_spectral_start_is_ahead_of_the_random_start_after_the_same_passes():
    users, items, ratings = planted()
    losses = {}
    for start in ("random", "spectral"):
        model = _model()
        solver = ALS(model, users, items, ratings)
        if start == "spectral":
            solver.write(*spectral_tables(users, items, ratings, 120, 80, 4, 3.5, True))
        losses[start] = [solver.run_pass()["loss"] for _ in range(2)]
    assert losses["spectral"][-1] < 0.8 * losses["random"][-1], losses


def test_fit_als_says_how_it_started_and_refuses_an_unknown_start():
    users, items, ratings = planted()
    train = Arrays(users.astype(np.int32), items.astype(np.int32), ratings)
    lines: list[str] = []
    fit_als(_model(), train, None, LoopSettings(256, 2, 3, 0), lines.append)
    assert any("spectral start in" in line for line in lines), lines
    with pytest.raises(ValueError, match="unknown ALS start 'svd'; choose spectral or random"):
        fit_als(_model(), train, None, LoopSettings(256, 2, 3, 0), lines.append, start="svd")
