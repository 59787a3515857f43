"""The learned second stage end to end: training.ranker fits it on validation lists and the
export writes it; the service loads it back, checked, and /recommend ranks exactly as the
offline metrics measured (training.ranker.ranked_scores over the exported arrays)."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from app.serving.loader import load_version
from artifact.checksums import checksums_of
from artifact.errors import ArtifactError
from artifact.ranker import FEATURES
from tests.app.ranking.test_blend import SMALL_GRID
from tests.helpers import make_client
from training.config import RankerConfig
from training.data.split import IdIndex
from training.itemitem import rating_matrix, train_item_item
from training.ranker import FirstStage, fit_ranker, ranked_scores

# Kept whatever the held-out users say: these tests are about the second stage, not its gain.
SMALL = RankerConfig(per_source=8, widths=(4, 8), max_epochs=8, patience=2, require_gain=False)


@pytest.fixture(scope="module")
def ranked_version(trained, retrieval, tiny_data, tmp_path_factory):
    from training.export import export_version

    quiet = lambda *_: None  # noqa: E731
    both = dataclasses.replace(
        retrieval, item_item=train_item_item(trained.split, retrieval, SMALL_GRID, quiet)
    )
    both.ranker = fit_ranker(trained, both, tiny_data.items, SMALL, quiet)
    root = tmp_path_factory.mktemp("ranked-models")
    path = export_version(trained, root, "ranked", tiny_data.ratings, tiny_data.items, both)
    return root, path, both.ranker


@pytest.fixture(scope="module")
def served_ranker(ranked_version):
    root, path, _ = ranked_version
    with make_client(models_dir=root, model_name="ranked", max_n=40) as client:
        yield client, load_version(path)


def exported_stage(loaded, tiny_data) -> FirstStage:
    """The first stage as the exported files hold it, for training.ranker's offline scores."""
    path = loaded.path
    arrays = {n: np.load(path / f"{n}.npy") for n in
              ("user_factors", "item_factors", "user_bias", "item_bias")}  # fmt: skip
    vectors = {n: np.load(path / f"retrieval_{n}.npy") for n in
               ("user_factors", "item_factors", "item_bias")}  # fmt: skip
    users, items = IdIndex(list(loaded.user_index)), IdIndex(loaded.item_ids)
    return FirstStage(
        users, items, vectors,
        np.load(path / "item_item.npy").astype(np.float64), loaded.manifest.item_item.blend,
        arrays, loaded.manifest.global_mean, tiny_data.ratings, np.load(path / "ranker_items.npy"),
        rating_matrix(tiny_data.ratings, users, items),
    )  # fmt: skip


def test_training_chooses_on_validation_and_the_manifest_records_it(ranked_version):
    _, path, result = ranked_version
    manifest = json.loads((path / "manifest.json").read_text())
    spec = manifest["ranker"]
    assert spec["features"] == list(FEATURES) and spec["width"] in SMALL.widths
    assert spec["per_source"] == SMALL.per_source and 1 <= spec["epochs"] <= SMALL.max_epochs
    assert spec["mean"] == pytest.approx(result.weights.mean.tolist())
    for name in ("ranker_items.npy", "ranker_hidden.npy", "ranker_output.npy"):
        assert name in manifest["files"]
    assert {"ndcg", "blend_ndcg"} <= set(manifest["metrics"]["ranker_validation"])
    assert "ndcg" in manifest["metrics"]["ranker_test"]


def test_the_ranker_loads_back_equal(ranked_version):
    _, path, result = ranked_version
    loaded = load_version(path).ranker
    for name in ("items", "mean", "scale", "hidden", "output"):
        assert np.array_equal(getattr(loaded, name), getattr(result.weights, name)), name
    assert loaded.per_source == SMALL.per_source


def test_recommend_ranks_as_the_offline_metrics_measured(served_ranker, tiny_data):
    client, loaded = served_ranker
    stage = exported_stage(loaded, tiny_data)
    offline = ranked_scores(stage, loaded.ranker)
    users = list(loaded.user_index)[:8]
    rows = np.array([loaded.user_index[u] for u in users])
    scores = offline(rows)
    for k, user in enumerate(users):
        seen = loaded.seen.of(loaded.user_index[user])
        mine = scores[k].copy()
        mine[seen] = -np.inf
        order = np.argsort(-mine, kind="stable")[:6]
        body = client.get(f"/recommend/{user}", params={"n": 6}).json()
        assert [i["item_id"] for i in body["items"]] == [loaded.item_ids[r] for r in order]
        assert [i["score"] for i in body["items"]] == pytest.approx(mine[order], abs=1e-4)
    batch = client.post("/recommend", json={"user_ids": users, "n": 6}).json()
    for user, got in zip(users, batch["results"], strict=True):
        single = client.get(f"/recommend/{user}", params={"n": 6}).json()
        assert [i["item_id"] for i in got["items"]] == [i["item_id"] for i in single["items"]]


def test_explanations_split_the_first_stage_score_and_say_so(served_ranker):
    client, loaded = served_ranker
    user = list(loaded.user_index)[3]
    body = client.get(f"/recommend/{user}", params={"n": 5, "explain": "true"}).json()
    assert "learned second stage" in body["explanation"]["method"]
    for item in body["items"]:
        parts = item["parts"]
        total = parts["rated_items"] + parts["unattributed"] + parts["item"] + parts["user"]
        assert total == pytest.approx(item["first_stage_score"], abs=1e-3)


def test_a_live_rating_leaves_the_rated_item_out_and_still_ranks_by_the_ranker(served_ranker):
    client, loaded = served_ranker
    user = list(loaded.user_index)[11]
    before = client.get(f"/recommend/{user}", params={"n": 5}).json()["items"]
    event = {"user_id": user, "item_id": before[0]["item_id"], "rating": 5}
    assert client.post("/events", json={"events": [event]}).status_code == 200
    body = client.get(f"/recommend/{user}", params={"n": 5, "explain": "true"}).json()
    assert body["source"] == "fold_in"
    assert before[0]["item_id"] not in [i["item_id"] for i in body["items"]]
    assert all("first_stage_score" in i for i in body["items"])


def test_a_ranker_file_of_another_shape_is_refused_naming_it(ranked_version, tmp_path):
    _, path, _ = ranked_version
    broken = tmp_path / "ranked" / "1"
    shutil.copytree(path, broken)
    hidden = broken / "ranker_hidden.npy"
    np.save(hidden, np.zeros((3, 2), np.float32))
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["files"] = {f: h for f, h in checksums_of(broken).items() if f != "manifest.json"}
    (broken / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=f"{hidden}: shape \\(3, 2\\)"):
        load_version(broken)
    manifest["ranker"]["features"] = [*FEATURES[:-1], "mood"]
    (broken / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="ranker features .*'mood'"):
        load_version(broken)


def test_too_few_validation_users_fit_no_ranker_and_say_why(
    trained, retrieval, tiny_data, monkeypatch
):
    import training.ranker

    said: list[str] = []
    both = dataclasses.replace(
        retrieval, item_item=train_item_item(trained.split, retrieval, SMALL_GRID, said.append)
    )
    monkeypatch.setattr(training.ranker, "MIN_USERS", 10_000)
    assert fit_ranker(trained, both, tiny_data.items, SMALL, said.append) is None
    assert "it needs 10000" in said[-1]


def test_a_ranker_that_does_not_beat_the_blend_on_validation_is_not_kept(
    trained, retrieval, tiny_data, monkeypatch
):
    import training.ranker

    said: list[str] = []
    both = dataclasses.replace(
        retrieval, item_item=train_item_item(trained.split, retrieval, SMALL_GRID, said.append)
    )
    # The blend's order of the held-out users' lists scores a perfect NDCG: nothing beats it.
    blend_order = np.zeros((1, 1))
    real = training.ranker.list_ndcgs

    def ndcgs(scores, lists, k=10):
        return np.ones(len(lists.labels)) if scores is blend_order else real(scores, lists, k)

    monkeypatch.setattr(training.ranker, "_blend_of", lambda features, blend: blend_order)
    monkeypatch.setattr(training.ranker, "list_ndcgs", ndcgs)
    gated = dataclasses.replace(SMALL, require_gain=True)
    assert fit_ranker(trained, both, tiny_data.items, gated, said.append) is None
    assert "the blend alone 1.0000: a gain of -" in said[-1]
    assert "is not above its standard error" in said[-1]
