"""The top-N vectors: trained from positives, exported beside the rating model, served by
default, with ranking by predicted rating still available."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.serving.loader import load_version
from tests.helpers import RETRIEVAL_SETTINGS, make_client
from training.config import RetrievalConfig
from training.evaluation.ranking import popularity_scores, ranking_metrics
from training.export import export_version
from training.retrieval import Positives, positives, train_retrieval

CONFIG = RetrievalConfig(**RETRIEVAL_SETTINGS)


def fit_like_the_default(trained):
    """Retrieval vectors on the rating model's split and ids, as `recsys train` fits them."""
    return train_retrieval(trained.split, CONFIG, refit=trained.refitted, log=lambda *_: None)


def test_positives_follow_the_threshold_and_weights(tiny_data):
    frame = tiny_data.ratings
    chosen, weights = positives(frame, RetrievalConfig(positive_from=4.0, weighting="none"))
    assert (chosen["rating"] >= 4).all() and len(chosen) == (frame["rating"] >= 4).sum()
    assert (weights == 1).all()
    every, by_rating = positives(frame, RetrievalConfig(positive_from=None, weighting="rating"))
    assert len(every) == len(frame)
    np.testing.assert_allclose(by_rating, frame["rating"] / frame["rating"].mean(), rtol=1e-6)


def test_positives_are_grouped_by_user_with_their_weights_and_shares():
    users = np.array([3, 0, 3, 5, 0, 3], np.int32)
    items = np.array([1, 2, 0, 4, 1, 4], np.int32)
    weights = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], np.float32)
    grouped = Positives.group(users, items, weights, n_users=7)
    assert grouped.active.tolist() == [0, 3, 5]  # users without a positive are never drawn
    for u in range(7):
        start, end = grouped.indptr[u], grouped.indptr[u + 1]
        assert sorted(zip(grouped.items[start:end], grouped.weights[start:end], strict=True)) == (
            sorted((i, w) for uu, i, w in zip(users, items, weights, strict=True) if uu == u)
        )
    np.testing.assert_allclose(grouped.item_share(6), [1 / 6, 2 / 6, 1 / 6, 0, 2 / 6, 0])


def batch_of_positives():
    users = np.array([0, 2, 3], np.int32)
    pairs = [(0, 1, 1.0), (0, 4, 2.0), (1, 0, 1.0), (2, 5, 0.5)]  # (batch row, item, weight)
    rows, items, weights = (np.array(column) for column in zip(*pairs, strict=True))
    return users, pairs, (rows.astype(np.int32), items.astype(np.int32), weights.astype("f4"))


def test_loss_is_the_per_positive_softmax_mean_plus_the_tables_l2():
    from training.models.retrieval import SoftmaxRetrieval

    model = SoftmaxRetrieval(4, 6, factors=3, l2=1e-3)
    users, pairs, batch = batch_of_positives()
    logits = np.asarray(model(users), np.float64)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    reference = -sum(w * log_softmax[r, i] for r, i, w in pairs) / sum(w for *_, w in pairs)
    factors = model.factors_for_export()
    l2 = 1e-3 * ((factors["user_factors"] ** 2).sum() + (factors["item_factors"] ** 2).sum())
    loss = float(model.training_loss(users, *batch))
    assert loss == pytest.approx(reference + l2, rel=1e-5)


def test_sampled_loss_is_the_full_one_when_the_sample_holds_every_item_surely():
    from training.models.retrieval import SoftmaxRetrieval

    model = SoftmaxRetrieval(4, 6, factors=3, l2=0.0, init_std=0.5)
    users, _, batch = batch_of_positives()
    share = np.full(6, 1 / 6, np.float32)
    full = float(model.training_loss(users, *batch))
    # 3,000 uniform draws from 6 items: every item is drawn, each with inclusion probability 1.
    sampled = float(model.training_loss(users, *batch, negatives=3000, item_share=share))
    assert sampled == pytest.approx(full, rel=1e-5)


def test_metrics_and_rows_line_up_with_the_rating_model(retrieval, trained):
    assert set(retrieval.metrics) == {"validation", "test", "popularity_test"}
    assert 0 <= retrieval.metrics["test"]["ndcg"] <= 1
    # The floor, on the same test split: the most-rated items of what the final fit learned.
    split = trained.split
    both = split.fitted_on(retrieval.refitted)
    final = retrieval.fitted.final
    popular = ranking_metrics(
        popularity_scores(final.items, both), final.users, final.items, both, split.test, k=10
    )
    assert retrieval.metrics["popularity_test"] == popular
    vectors = retrieval.model.factors_for_export()
    assert vectors["user_factors"].shape == (len(trained.users), 8)
    assert vectors["item_factors"].shape == (len(trained.items), 8)
    assert 1 <= retrieval.best_epoch <= 4


def test_same_data_and_seed_give_the_same_vectors(retrieval, trained):
    again = fit_like_the_default(trained)
    first, second = retrieval.model.factors_for_export(), again.model.factors_for_export()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])


def test_manifest_names_both_vector_sets(default_version, retrieval):
    _, path = default_version
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["recommend"]["source"] == "retrieval"
    assert manifest["recommend"]["user_factors"] == "retrieval_user_factors.npy"
    assert manifest["recommend"]["score"] == "dot"
    assert manifest["recommend_by_rating"]["source"] == "mf_bias"
    assert manifest["recommend_by_rating"]["score"] == "rating"
    assert manifest["metrics"]["ranking_test"]["ndcg"] == pytest.approx(
        retrieval.metrics["test"]["ndcg"]
    )
    assert manifest["retrieval"]["best_epoch"] == retrieval.best_epoch


def top(vectors, bundle, user, n):
    u = bundle.user_index[user]
    scores = vectors.item_factors @ vectors.user_factors[u]
    if vectors.item_bias is not None:
        scores = scores + vectors.item_bias
    seen = set(bundle.seen.of(u).tolist())
    return [bundle.item_ids[i] for i in np.argsort(-scores, kind="stable") if i not in seen][:n]


def test_recommend_ranks_with_retrieval_vectors_by_default_and_by_rating_on_request(
    default_version, trained
):
    root, path = default_version
    bundle = load_version(path)
    assert (bundle.vectors.source, bundle.rating_vectors.source) == ("retrieval", "mf_bias")
    user = trained.users.to_list()[5]
    with make_client(models_dir=root, model_name="both") as client:
        default = client.get(f"/recommend/{user}", params={"n": 6}).json()
        by_rating = client.get(f"/recommend/{user}", params={"n": 6, "by": "rating"}).json()
        info = client.get("/models").json()
        bad = client.get(f"/recommend/{user}", params={"by": "popularity"})
    assert [i["item_id"] for i in default["items"]] == top(bundle.vectors, bundle, user, 6)
    assert [i["item_id"] for i in by_rating["items"]] == top(bundle.rating_vectors, bundle, user, 6)
    # By rating, the score is the rating model's predicted rating before clipping.
    vectors, u = bundle.rating_vectors, bundle.user_index[user]
    rows = [bundle.item_index[i["item_id"]] for i in by_rating["items"]]
    expected = (
        vectors.user_offset[u]
        + vectors.item_bias[rows]
        + vectors.item_factors[rows] @ vectors.user_factors[u]
    )
    np.testing.assert_allclose([i["score"] for i in by_rating["items"]], expected, atol=1e-4)
    assert info["recommend"] == "retrieval"
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "by"]


def test_export_refuses_vectors_fitted_on_other_ids(trained, retrieval, tiny_data, tmp_path):
    from training.data.split import Split

    # A split whose train part lacks one user: vectors fitted on it alone know one user fewer.
    split = trained.split
    user = trained.users.to_list()[-1]
    without = Split(split.train[split.train["user_id"] != user], split.validation, split.test, 0)
    other = train_retrieval(without, CONFIG, refit=False, log=lambda *_: None)
    assert len(other.users) == len(trained.users) - 1
    with pytest.raises(ValueError, match="must be fitted on the same ids"):
        export_version(trained, tmp_path, "m", tiny_data.ratings, None, other)
    assert not any((tmp_path / "m").iterdir())
