"""Fold-in for retrieval vectors fitted by implicit ALS: the service's solve is training's own
half-pass for that user (the same numbers as `training.als_implicit`), a trained user is
re-solved from all their ratings, and through the app a new user's /recommend is their folded
vector times the exported item matrix (plus the trust's popularity weight), a new item gets the
same solve with the users fixed."""

from __future__ import annotations

import numpy as np
import pytest

from app.events.implicit_fold import ImplicitFold
from app.serving.loader import load_version
from tests.helpers import make_client, served_view
from training.als import Side
from training.als_implicit import implicit_half_pass

RNG = np.random.default_rng(3)
N_USERS, N_ITEMS, K = 12, 25, 4
ALPHA, L2, MEAN = 6.0, 0.7, 3.4


def test_the_fold_is_trainings_own_half_pass_for_each_user():
    items = RNG.normal(0, 0.4, (N_ITEMS, K)).astype(np.float32)
    rows, ratings = [], []
    for _ in range(N_USERS):
        rated = RNG.choice(N_ITEMS, size=RNG.integers(1, 9), replace=False)
        rows.append(rated)
        ratings.append(RNG.integers(1, 6, len(rated)).astype(np.float64))
    users = np.repeat(np.arange(N_USERS), [len(r) for r in rows])
    confidence = (1 + ALPHA * np.concatenate(ratings) / MEAN).astype(np.float32)
    side = Side.of(users, np.concatenate(rows), confidence, N_USERS, N_ITEMS, chunk_entries=8)
    trained, _ = implicit_half_pass(side, items, L2)
    folded = ImplicitFold.of(items, ALPHA, L2, MEAN, weighted=True).solve_many(rows, ratings)
    np.testing.assert_allclose(folded, trained, rtol=1e-3, atol=1e-4)


def test_a_user_with_no_rating_folds_to_zeros_as_training_leaves_them():
    items = RNG.normal(0, 0.4, (N_ITEMS, K))
    fold = ImplicitFold.of(items, ALPHA, L2, MEAN, weighted=False)
    out = fold.solve_many([np.array([], np.int64), np.array([2])], [np.array([]), np.array([4.0])])
    assert not out[0].any() and out[1].any()


# --- through the app ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def als_version(trained, tiny_data, tmp_path_factory):
    """A version whose retrieval vectors were fitted by implicit ALS, as `recsys train` fits
    them over a large catalogue."""
    from training.config import RetrievalConfig
    from training.export import export_version
    from training.retrieval import train_retrieval

    config = RetrievalConfig(factors=6, epochs=4, solver="als", alpha=5.0, als_l2=0.5)
    vectors = train_retrieval(trained.split, config, refit=trained.refitted, log=lambda *_: None)
    root = tmp_path_factory.mktemp("als-models")
    path = export_version(trained, root, "als", tiny_data.ratings, tiny_data.items, vectors)
    return root, path


def test_the_manifest_names_the_solver_and_the_service_folds_with_its_own_solve(als_version):
    root, path = als_version
    loaded = load_version(path)
    assert loaded.manifest.retrieval is not None
    assert loaded.manifest.retrieval["solver"] == "als"
    assert not np.any(loaded.vectors.item_bias)
    with make_client(models_dir=root, model_name="als") as client:
        folder = served_view(client).folder
        assert folder.implicit is not None and folder.softmax is None
        item = loaded.item_ids[7]
        response = client.post(
            "/events", json={"events": [{"user_id": "newcomer", "item_id": item, "rating": 5}]}
        )
        assert response.status_code == 200, response.text
        body = client.get("/recommend/newcomer", params={"n": 5}).json()
        assert body["source"] == "fold_in"
        row = np.array([loaded.item_index[item]])
        expected = ImplicitFold.of(
            loaded.vectors.item_factors, 5.0, 0.5, loaded.manifest.global_mean, True
        ).solve_many([row], [np.array([5.0])])[0]
        raters = np.bincount(loaded.seen.indices, minlength=loaded.n_items).astype(np.float64)
        raters[row] += 1
        scores = loaded.vectors.item_factors @ expected
        scores = scores + folder.trust.popularity_weight(1) * np.log1p(raters)
        scores[row] = -np.inf
        best = np.argsort(-scores, kind="stable")[:5]
        assert [i["item_id"] for i in body["items"]] == [loaded.item_ids[r] for r in best]
        assert [i["score"] for i in body["items"]] == pytest.approx(scores[best], abs=1e-4)


def test_a_trained_user_is_resolved_from_their_training_and_live_ratings(als_version):
    root, path = als_version
    loaded = load_version(path)
    user_row = 3
    user = next(u for u, r in loaded.user_index.items() if r == user_row)
    seen = loaded.seen
    start, end = seen.indptr[user_row], seen.indptr[user_row + 1]
    trained_rows, trained = seen.indices[start:end], seen.ratings[start:end]
    unseen = next(r for r in range(loaded.n_items) if r not in set(trained_rows))
    with make_client(models_dir=root, model_name="als") as client:
        events = [
            {"user_id": user, "item_id": loaded.item_ids[unseen], "rating": 4},
            {"user_id": user, "item_id": loaded.item_ids[trained_rows[0]], "rating": 1},
        ]
        assert client.post("/events", json={"events": events}).status_code == 200
        view = served_view(client)
        assert client.get(f"/recommend/{user}").json()["source"] == "fold_in"  # solved here
        got = view.folded[user].vector
        ratings = np.concatenate([trained[1:], [4.0, 1.0]])
        rows = np.concatenate([trained_rows[1:], [unseen, trained_rows[0]]])
        expected = view.folder.implicit.solve_many([rows], [ratings])[0]
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_a_new_item_is_solved_with_the_trained_users_fixed(als_version):
    root, path = als_version
    loaded = load_version(path)
    with make_client(models_dir=root, model_name="als") as client:
        folder = served_view(client).folder
        user_rows, ratings = np.array([0, 4, 9]), np.array([5.0, 4.0, 2.0])
        folded = folder.fold_item(user_rows, ratings)
        expected = ImplicitFold.of(
            loaded.vectors.user_factors, 5.0, 0.5, loaded.manifest.global_mean, True
        ).solve_many([user_rows], [ratings])[0]
        assert folded is not None and folded.bias == 0.0
        np.testing.assert_allclose(folded.vector, expected, rtol=1e-5, atol=1e-6)
