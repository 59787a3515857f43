"""The ALS solver: each half-pass is the exact solution of every row's normal equations (checked
against numpy on a small problem, chunked and padded), every pass lowers the objective the
gradient loop minimises, and `recsys train --solver als` gives a model that exports and predicts
like the gradient loop's."""

from __future__ import annotations

import numpy as np
import pytest

from training import als, als_steps
from training.als import ALS, Side, padded_lengths
from training.config import TrainConfig
from training.models.kinds import build_model

N_USERS, N_ITEMS = 30, 18


def small_problem(seed: int = 0):
    """Ratings with uneven counts: one user rated every item, some users rated one."""
    rng = np.random.default_rng(seed)
    pairs = {(0, i) for i in range(N_ITEMS)}  # a long row: its own padded length
    for u in range(1, N_USERS):
        for i in rng.choice(N_ITEMS, size=rng.integers(1, 8), replace=False):
            pairs.add((u, int(i)))
    users, items = (np.array(c, np.int64) for c in zip(*sorted(pairs), strict=True))
    ratings = rng.integers(1, 6, len(users)).astype(np.float32)
    return users, items, ratings


def model_of(kind: str, regularization: str = "example", **params):
    model = build_model(
        kind, N_USERS, N_ITEMS, 3.2, factors=4, l2=0.3, bias_l2=0.05,
        regularization=regularization, init_std=0.5, **params,
    )  # fmt: skip
    model({"user": np.zeros(1, np.int32), "item": np.zeros(1, np.int32)})
    return model


def reference_user_solve(model, users, items, ratings, item_table):
    """Each user's [p_u, b_u] from numpy's own solve of the normal equations, and the summed
    objective at them (squared errors plus the users' penalty)."""
    k, biased = model.factors, model.use_bias
    penalty = np.full(k + biased, model.l2)
    if biased:
        penalty[k] = model.bias_l2
    solved, squares = np.zeros((N_USERS, k + biased)), 0.0
    for u in range(N_USERS):
        mine = users == u
        q = item_table[items[mine]]
        features = np.hstack([q[:, :k], np.ones((len(q), 1))]) if biased else q
        target = ratings[mine] - model.global_mean - (q[:, k] if biased else 0.0)
        weight = mine.sum() if model.regularization == "example" else len(ratings)
        a = features.T @ features + np.diag(penalty * weight)
        solved[u] = np.linalg.solve(a, features.T @ target)
        error = target - features @ solved[u]
        squares += float(error @ error + solved[u] @ np.diag(penalty * weight) @ solved[u])
    return solved, squares


@pytest.mark.parametrize(
    "kind, regularization", [("mf_bias", "example"), ("mf", "example"), ("mf_bias", "table")]
)
def test_a_half_pass_is_numpys_exact_solution_of_every_users_normal_equations(kind, regularization):
    users, items, ratings = small_problem()
    model = model_of(kind, regularization)
    solver = ALS(model, users, items, ratings)
    # Chunks of at most 8 entries and 3 rows: the long row is a chunk alone, others share
    # chunks, and rows of one rating each never more than 3 to a chunk.
    solver.by_user = Side.of(users, items, ratings, N_USERS, N_ITEMS, chunk_entries=8, chunk_rows=3)
    assert len(solver.by_user.chunks) > 3
    assert max(len(chunk.rows) for chunk in solver.by_user.chunks) == 3
    _, item_table = solver.tables()
    solved, objective = solver.solve(solver.by_user, item_table)
    expected, expected_objective = reference_user_solve(model, users, items, ratings, item_table)
    np.testing.assert_allclose(solved, expected, rtol=2e-4, atol=2e-5)
    assert objective == pytest.approx(expected_objective, rel=1e-4)


def test_every_pass_lowers_the_objective_the_gradient_loop_minimises():
    users, items, ratings = small_problem(1)
    model = model_of("mf_bias")
    solver = ALS(model, users, items, ratings)
    passes = [solver.run_pass() for _ in range(6)]
    losses = [figures["loss"] for figures in passes]
    assert all(b <= a + 1e-6 for a, b in zip(losses, losses[1:], strict=False)), losses
    # The reported loss is the objective recomputed from the model's own tables.
    arrays = model.factors_for_export()
    p, q = arrays["user_factors"][users], arrays["item_factors"][items]
    b_u, b_i = arrays["user_bias"][users], arrays["item_bias"][items]
    predicted = model.global_mean + b_u + b_i + np.sum(p * q, axis=1)
    objective = np.sum((ratings - predicted) ** 2) + 0.3 * (
        np.sum(p**2) + np.sum(q**2)
    ) + 0.05 * (np.sum(b_u**2) + np.sum(b_i**2))  # fmt: skip
    assert losses[-1] == pytest.approx(objective / len(ratings), rel=1e-4)
    rmse = np.sqrt(np.mean((ratings - predicted) ** 2))
    assert passes[-1]["rmse"] == pytest.approx(rmse, rel=1e-3)
    # What the Keras model predicts is the same formula (the OOV rows untouched).
    keras_says = model({"user": users.astype(np.int32), "item": items.astype(np.int32)})
    np.testing.assert_allclose(np.asarray(keras_says), predicted, rtol=1e-5, atol=1e-5)
    oov = model({"user": np.array([N_USERS], np.int32), "item": np.array([0], np.int32)})
    assert float(oov[0]) == pytest.approx(model.global_mean + arrays["item_bias"][0], abs=1e-6)


def test_padded_lengths_cover_every_count_with_at_most_a_fifth_of_padding():
    lengths = padded_lengths(70_000)
    counts = np.arange(1, 70_001)
    padded = lengths[np.searchsorted(lengths, counts)]
    assert np.all(padded >= counts)
    assert np.all(padded <= 1.2 * counts + 1)
    assert lengths[-1] >= 70_000 and len(lengths) < 80


def test_als_trains_only_the_factor_models():
    with pytest.raises(ValueError, match="--solver als trains mf and mf_bias, not dnn"):
        TrainConfig.for_model("dnn", solver="als")
    with pytest.raises(ValueError, match="unknown solver 'newton'"):
        TrainConfig.for_model("mf_bias", solver="newton")


def test_large_data_defaults_to_als_and_a_chosen_solver_is_kept():
    assert TrainConfig.for_model("mf_bias", ratings=1_000_000).solver == "als"
    assert TrainConfig.for_model("mf_bias", ratings=999_999).solver == "gradient"
    gradient = TrainConfig.for_model("mf_bias", ratings=2_000_000, solver="gradient")
    assert (gradient.solver, gradient.batch_size) == ("gradient", 32768)
    assert TrainConfig.for_model("dnn", ratings=2_000_000).solver == "gradient"


def test_train_with_als_exports_a_model_that_predicts_the_factor_formula(tmp_path):
    from training.data.ratings import RatingsData
    from training.data.synthetic import synthetic_ratings
    from training.rating import train_rating

    frame, items = synthetic_ratings(300, 120, 12_000, seed=3)
    data = RatingsData(frame, items)
    config = TrainConfig.for_model("mf_bias", solver="als", epochs=8, factors=8)
    trained = train_rating(data, config, log=lambda *_: None)
    assert trained.history["val_rmse"][-1] < trained.history["val_rmse"][0]
    assert trained.metrics["test"]["rmse"] < 1.1
    fit = trained.exported
    arrays = fit.model.factors_for_export()
    sample = frame.sample(50, random_state=0)
    u, i = fit.users.lookup(sample["user_id"]), fit.items.lookup(sample["item_id"])
    formula = (
        fit.model.global_mean + arrays["user_bias"][u] + arrays["item_bias"][i]
        + np.sum(arrays["user_factors"][u] * arrays["item_factors"][i], axis=1)
    )  # fmt: skip
    keras_says = fit.model({"user": u.astype(np.int32), "item": i.astype(np.int32)})
    np.testing.assert_allclose(np.asarray(keras_says), formula, rtol=1e-5, atol=1e-5)


def reference_cg_step(model, users, items, ratings, item_table, start):
    """One conjugate-gradient step (the first is steepest descent with the exact step length)
    from `start` on each user's normal equations, in numpy, and the objective there."""
    k, biased = model.factors, model.use_bias
    penalty = np.full(k + biased, model.l2)
    if biased:
        penalty[k] = model.bias_l2
    stepped, objective = np.zeros_like(start, np.float64), 0.0
    for u in range(N_USERS):
        mine = users == u
        q = item_table[items[mine]]
        features = np.hstack([q[:, :k], np.ones((len(q), 1))]) if biased else q
        target = ratings[mine] - model.global_mean - (q[:, k] if biased else 0.0)
        a = features.T @ features + np.diag(penalty * mine.sum())
        residual = features.T @ target - a @ start[u]
        if mine.any():
            stepped[u] = start[u] + (residual @ residual) / (residual @ a @ residual) * residual
        error = target - features @ stepped[u]
        objective += float(error @ error + stepped[u] @ np.diag(penalty * mine.sum()) @ stepped[u])
    return stepped, objective


def test_one_conjugate_gradient_step_is_numpys_and_enough_steps_reach_the_exact_solution(
    monkeypatch,
):
    # At 5 unknowns the exact solve is cheaper for every row (next test): take the steps anyway.
    monkeypatch.setattr(als, "steps_are_cheaper", lambda length, d, steps: True)
    users, items, ratings = small_problem(2)
    model = model_of("mf_bias")
    solver = ALS(model, users, items, ratings)
    solver.by_user = Side.of(users, items, ratings, N_USERS, N_ITEMS, chunk_entries=8, chunk_rows=3)
    start, item_table = solver.tables()  # the model's random initial tables
    stepped, objective = solver.solve(solver.by_user, item_table, start, steps=1)
    expected, expected_objective = reference_cg_step(
        model, users, items, ratings, item_table, start
    )
    rated = np.bincount(users, minlength=N_USERS) > 0
    np.testing.assert_allclose(stepped[rated], expected[rated], rtol=1e-3, atol=1e-4)
    assert objective == pytest.approx(expected_objective, rel=1e-4)
    assert not np.allclose(
        stepped, reference_user_solve(model, users, items, ratings, item_table)[0]
    )
    # Five unknowns a user (4 factors and a bias): five steps solve the equations.
    solved, objective = solver.solve(solver.by_user, item_table, start, steps=5)
    exact, exact_objective = reference_user_solve(model, users, items, ratings, item_table)
    np.testing.assert_allclose(solved, exact, rtol=2e-3, atol=2e-4)
    assert objective == pytest.approx(exact_objective, rel=1e-4)


def test_steps_replace_the_exact_solve_only_where_they_cost_less():
    # 65 unknowns (64 factors and a bias), as measured: 2 steps up to ~530 ratings a row.
    assert als_steps.steps_are_cheaper(20, 65, 2) and als_steps.steps_are_cheaper(520, 65, 2)
    assert not als_steps.steps_are_cheaper(540, 65, 2)
    assert als_steps.steps_are_cheaper(240, 65, 3) and not als_steps.steps_are_cheaper(260, 65, 3)
    # One step (4 passes) costs less than the Gram matmul alone at 65 unknowns: always.
    assert als_steps.steps_are_cheaper(100_000, 65, 1)
    # At 5 unknowns a Cholesky is nearly free: the exact solve wins from two ratings a row.
    assert not als_steps.steps_are_cheaper(2, 5, 1)


def test_with_conjugate_gradient_steps_the_first_pass_is_exact_and_every_pass_lowers_the_loss(
    monkeypatch,
):
    # Rows of up to 4 ratings take the steps, the longer ones the exact solve.
    monkeypatch.setattr(als, "steps_are_cheaper", lambda length, d, steps: length <= 4)
    users, items, ratings = small_problem(1)
    exact, iterated = model_of("mf_bias"), model_of("mf_bias")
    exact.set_weights(iterated.get_weights())
    by_exact, by_steps = (
        ALS(exact, users, items, ratings),
        ALS(iterated, users, items, ratings, cg_steps=2),
    )
    first = by_exact.run_pass(), by_steps.run_pass()
    assert first[0]["loss"] == pytest.approx(first[1]["loss"], rel=1e-6)
    # Two steps a pass, not the exact solve: the passes after the first differ from ALS's.
    second = by_exact.run_pass(), by_steps.run_pass()
    assert second[0]["loss"] != pytest.approx(second[1]["loss"], rel=1e-6)
    losses = [first[1]["loss"], second[1]["loss"]] + [by_steps.run_pass()["loss"] for _ in range(5)]
    assert all(b <= a + 1e-6 for a, b in zip(losses, losses[1:], strict=False)), losses
    with pytest.raises(
        ValueError, match="conjugate-gradient steps must be 0 .exact. or more, not -1"
    ):
        ALS(exact, users, items, ratings, cg_steps=-1)
