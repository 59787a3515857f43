"""The item-item blend (training.itemitem, app.ranking.blend): the weights training chooses and
exports, and /recommend's blended ranking against a reference computed here from the files."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import scipy.sparse as sp

from app.serving.loader import load_version
from tests.helpers import make_client, served_view
from training.config import ItemItemConfig
from training.itemitem import edlae, train_item_item

SMALL_GRID = ItemItemConfig(strengths=(1.0, 5.0), dropouts=(0.25,), blends=(0.3, 0.6))


@pytest.fixture(scope="module")
def blended_version(trained, retrieval, tiny_data, tmp_path_factory):
    from training.export import export_version

    item_item = train_item_item(trained.split, retrieval, SMALL_GRID, log=lambda *_: None)
    both = dataclasses.replace(retrieval, item_item=item_item)
    root = tmp_path_factory.mktemp("blended-models")
    path = export_version(trained, root, "blended", tiny_data.ratings, tiny_data.items, both)
    return root, path, item_item


@pytest.fixture(scope="module")
def served_blend(blended_version):
    root, path, _ = blended_version
    with make_client(models_dir=root, model_name="blended", max_n=40) as client:
        yield client, load_version(path)


def z(scores):
    return (scores - scores.mean()) / scores.std()


def reference(loaded, user, n, extra=None, dot=None):
    """Top n of the blend for `user`: their rating row (plus `extra` {row: rating}) times B,
    and the vectors' scores (`dot`, else their trained vector's)."""
    row = loaded.user_index[user]
    seen = loaded.seen
    lo, hi = seen.indptr[row], seen.indptr[row + 1]
    x = np.zeros(loaded.n_items)
    x[seen.indices[lo:hi]] = seen.ratings[lo:hi]
    for col, rating in (extra or {}).items():
        x[col] = rating
    weights = np.load(loaded.path / "item_item.npy").astype(np.float64)
    v = loaded.vectors
    if dot is None:
        dot = np.asarray(v.item_factors, np.float64) @ np.asarray(v.user_factors[row], np.float64)
        dot += np.asarray(v.item_bias, np.float64)
    blend = loaded.manifest.item_item.blend
    scores = blend * z(x @ weights) + (1 - blend) * z(dot)
    scores[x != 0] = -np.inf
    order = np.argsort(-scores, kind="stable")[:n]
    return [loaded.item_ids[r] for r in order], scores[order]


def test_training_chooses_on_validation_and_exports_the_weights(blended_version, trained):
    _, path, item_item = blended_version
    manifest = json.loads((path / "manifest.json").read_text())
    spec = manifest["item_item"]
    assert spec["weights"] == "item_item.npy"
    assert (spec["strength"], spec["dropout"], spec["blend"]) == (
        item_item.strength,
        item_item.dropout,
        item_item.blend,
    )
    assert spec["blend"] in SMALL_GRID.blends and spec["strength"] in SMALL_GRID.strengths
    assert "ndcg" in manifest["metrics"]["blend_validation"]
    weights = np.load(path / "item_item.npy")
    assert weights.shape == (40, 40) and np.allclose(np.diag(weights), 0, atol=1e-5)
    assert "item_item.npy" in manifest["files"]


def test_edlae_is_the_closed_form_with_a_zero_diagonal():
    rng = np.random.default_rng(0)
    x = sp.csr_matrix(rng.integers(0, 6, (30, 8)).astype(float))
    weights = edlae(x, strength=2.0, dropout=0.5)
    gram = (x.T @ x).toarray()
    penalty = np.diag(2.0 * np.diag(gram).mean() + np.diag(gram))  # 0.5 / (1 - 0.5) = 1
    # The optimum of |X - XB|^2 + tr(B' L B) with diag(B) = 0: the gradient vanishes off the
    # diagonal (on it, the constraint's multipliers take it up).
    gradient = -(gram @ (np.eye(8) - weights)) + penalty @ weights
    off = ~np.eye(8, dtype=bool)
    assert np.allclose(np.diag(weights), 0, atol=1e-9)
    assert np.abs(gradient[off]).max() < 1e-8 * np.abs(gram).max()


def test_a_catalogue_over_the_limit_keeps_the_vectors_alone(trained, retrieval):
    lines = []
    assert (
        train_item_item(trained.split, retrieval, ItemItemConfig(max_items=10), lines.append)
        is None
    )
    assert "40 items is over 10" in lines[0]


def test_recommend_ranks_by_the_blend(served_blend):
    client, loaded = served_blend
    for user in list(loaded.user_index)[:5]:
        body = client.get(f"/recommend/{user}", params={"n": 6}).json()
        ids, scores = reference(loaded, user, 6)
        assert [i["item_id"] for i in body["items"]] == ids
        assert [i["score"] for i in body["items"]] == pytest.approx(scores, abs=1e-4)
    users = list(loaded.user_index)[:5]
    batch = client.post("/recommend", json={"user_ids": users, "n": 6}).json()
    for user, got in zip(users, batch["results"], strict=True):
        assert [i["item_id"] for i in got["items"]] == reference(loaded, user, 6)[0]


def test_a_live_rating_counts_exactly_in_the_item_item_part(served_blend):
    client, loaded = served_blend
    user = list(loaded.user_index)[9]
    row = loaded.user_index[user]
    unseen = [c for c in range(40) if c not in set(loaded.seen.of(row).tolist())]
    event = {"user_id": user, "item_id": loaded.item_ids[unseen[0]], "rating": 5}
    assert client.post("/events", json={"events": [event]}).status_code == 200
    body = client.get(f"/recommend/{user}", params={"n": 5}).json()
    assert body["source"] == "fold_in"
    live = served_view(client)
    folded = live.folded[user]
    v = loaded.vectors
    dot = np.asarray(v.item_factors, np.float64) @ folded.vector.astype(np.float64)
    dot += np.asarray(v.item_bias, np.float64) + folded.popularity * live.log_popularity
    ids, scores = reference(loaded, user, 5, extra={unseen[0]: 5.0}, dot=dot)
    assert [i["item_id"] for i in body["items"]] == ids
    assert [i["score"] for i in body["items"]] == pytest.approx(scores, abs=1e-4)


def test_a_new_user_is_blended_at_their_own_weight_for_their_rating_count(served_blend):
    client, loaded = served_blend
    weights = np.load(loaded.path / "item_item.npy").astype(np.float64)
    v = loaded.vectors
    rng = np.random.default_rng(3)
    for user, n in (("cold-three", 3), ("cold-twenty", 20)):
        cols = rng.choice(loaded.n_items, n, replace=False)
        ratings = rng.integers(1, 6, n).astype(float)
        events = [
            {"user_id": user, "item_id": loaded.item_ids[c], "rating": r}
            for c, r in zip(cols.tolist(), ratings.tolist(), strict=True)
        ]
        assert client.post("/events", json={"events": events}).status_code == 200
        body = client.get(f"/recommend/{user}", params={"n": 6, "explain": "true"}).json()
        assert body["source"] == "fold_in"
        live = served_view(client)
        folded, trust = live.folded[user], live.folder.trust
        assert (folded.popularity, folded.blend, folded.shift) == (
            trust.popularity_weight(n),
            trust.blend_weight(n),
            trust.shift,
        )
        dot = np.asarray(v.item_factors, np.float64) @ folded.vector.astype(np.float64)
        dot += np.asarray(v.item_bias, np.float64) + folded.popularity * live.log_popularity
        x = np.zeros(loaded.n_items)
        x[cols] = ratings - folded.shift  # a low rating counts against its neighbours
        b = folded.blend
        scores = b * z(x @ weights) + (1 - b) * z(dot) if b else dot
        scores[cols] = -np.inf
        best = np.argsort(-scores, kind="stable")[:6]
        assert [i["item_id"] for i in body["items"]] == [loaded.item_ids[r] for r in best]
        assert [i["score"] for i in body["items"]] == pytest.approx(scores[best], abs=1e-4)
        for item in body["items"]:
            assert sum(item["parts"].values()) == pytest.approx(item["score"], abs=1e-4)
    # The shipped trust blends by twenty ratings, not for the first few, and shifts the stars.
    assert trust.blend_weight(3) == 0 and trust.blend_weight(20) > 0 and trust.shift > 0


def test_explained_parts_add_up_with_the_item_item_part_exact(served_blend):
    client, loaded = served_blend
    user = list(loaded.user_index)[3]
    body = client.get(f"/recommend/{user}", params={"n": 5, "explain": "true"}).json()
    assert body["explanation"]["method"].startswith("partly approximate")
    row = loaded.user_index[user]
    seen = loaded.seen
    lo, hi = seen.indptr[row], seen.indptr[row + 1]
    x = np.zeros(loaded.n_items)
    x[seen.indices[lo:hi]] = seen.ratings[lo:hi]
    item_item = x @ np.load(loaded.path / "item_item.npy").astype(np.float64)
    v = loaded.vectors
    q = np.asarray(v.item_factors, np.float64)
    dot = q @ np.asarray(v.user_factors[row], np.float64)
    blend = loaded.manifest.item_item.blend
    for item in body["items"]:
        parts = item["parts"]
        assert sum(parts.values()) == pytest.approx(item["score"], abs=1e-4)
        assert 1 <= len(item["because"]) <= 3
        # The user rated more items than the vectors have dimensions: the projection spans
        # their vector, and the rated items' parts are both scores' user terms, scaled.
        i = loaded.item_index[item["item_id"]]
        want = blend * item_item[i] / item_item.std()
        want += (1 - blend) * dot[i] / (dot + np.asarray(v.item_bias)).std()
        assert hi - lo > q.shape[1] and parts["unattributed"] == pytest.approx(0, abs=1e-4)
        assert parts["rated_items"] == pytest.approx(want, abs=1e-4)


def test_similar_items_are_the_items_its_rating_raises_most(served_blend):
    client, loaded = served_blend
    weights = np.load(loaded.path / "item_item.npy")
    for row in (0, 7):
        body = client.get(f"/similar/{loaded.item_ids[row]}", params={"n": 5}).json()
        scores = weights[row].astype(np.float64)
        scores[row] = -np.inf
        best = np.argsort(-scores, kind="stable")[:5]
        assert [i["item_id"] for i in body["items"]] == [loaded.item_ids[r] for r in best]
        assert [i["score"] for i in body["items"]] == pytest.approx(scores[best], abs=1e-5)
    drama = client.get(
        f"/similar/{loaded.item_ids[0]}", params={"n": 40, "genres": "Drama"}
    ).json()["items"]
    assert drama and all("Drama" in i["genres"] for i in drama)


def test_trained_users_item_item_scores_are_kept_and_answer_the_same_bytes(blended_version):
    """Kept (`app.serving.blend_cache`) or computed afresh, a trained user's answer is the
    same bytes; a user with live ratings is never answered from what was kept."""
    root, _, _ = blended_version

    def top(c, user):
        return c.get(f"/recommend/{user}", params={"n": 10, "explain": "true"}).json()["items"]

    def rate(c, user, item):
        c.post("/events", json={"events": [{"user_id": user, "item_id": item, "rating": 5}]})

    with make_client(models_dir=root, model_name="blended", max_n=40, blend_cache_mb=0) as c:
        loaded = served_view(c).loaded
        users, item = list(loaded.user_index)[:25], loaded.item_ids[-1]
        fresh = {u: top(c, u) for u in users}
        assert loaded.trained_blends.entries == {}  # off: nothing kept
        rate(c, users[0], item)
        rated_fresh = top(c, users[0])
    with make_client(models_dir=root, model_name="blended", max_n=40) as c:
        kept = served_view(c).loaded.trained_blends
        for _ in range(2):  # the first computes and keeps, the second answers from it
            assert {u: top(c, u) for u in users} == fresh
        assert len(kept.entries) == len(users)
        # After a live rating the user's answer counts it, as the service without the cache
        # answers (what was kept for them would not).
        rate(c, users[0], item)
        assert top(c, users[0]) == rated_fresh != fresh[users[0]]


def test_the_kept_scores_stay_within_their_budget():
    from app.serving.blend_cache import TrainedBlends

    kept = TrainedBlends()
    kept.budget_bytes = 3 * 400  # three entries of 100 float32
    for row in range(5):
        kept.put(row, (np.full(100, row, np.float32), 0.0, 1.0))
    assert list(kept.entries) == [2, 3, 4] and kept.bytes == 1200
    assert kept.get(2) is not None  # used: now the newest
    kept.put(5, (np.zeros(100, np.float32), 0.0, 1.0))
    assert list(kept.entries) == [4, 2, 5]
    entry = kept.get(5)
    assert entry is not None and not entry[0].flags.writeable  # shared: nobody may change it
    kept.budget_bytes = 0
    kept.put(6, (np.zeros(100, np.float32), 0.0, 1.0))
    assert 6 not in kept.entries
