"""The retrain loop's rounds: the newest new ratings held out, a candidate judged against the
served version through the service's own code, published only when it is not worse (refitted
with the holdout, the gate in its manifest), every round written down in the store."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from app.events.changes import Rating
from app.events.store import EventStore
from artifact.manifest import read_manifest
from loop.holdout import choose
from loop.round import Plan, due, run
from tests.helpers import MODEL_NAME, fresh_store_url
from training.config import TrainConfig


def test_the_holdout_is_the_newest_share_and_one_per_active_user():
    users = ["a", "a", "a", "b", "c", "c", "d", "d", "d", "d"]
    rows = [
        {"id": i, "user_id": u, "item_id": str(i), "rating": 4.0, "ts": i}
        for i, u in enumerate(users, 1)
    ]
    rows.append({"id": 11, "user_id": "a", "item_id": "1", "rating": 2.0, "ts": 0})  # older ts
    held = choose(rows, 0.2)
    # a, c and d (two or more new ratings) give their newest; b (one) only by the top-up.
    assert sorted(held.ratings["item_id"]) == ["10", "3", "6"]
    assert held.unlearned == 10  # a's item 1 twice: its latest (by time) is the first
    # Half of the ten: those three, then the newest until five.
    assert choose(rows, 0.5).ratings["item_id"].tolist() == ["3", "6", "8", "9", "10"]


@pytest.fixture
def store_with_new_ratings(tiny_data, models_dir, tmp_path):
    """A models directory with version 1 (trained without the store) and a store holding new
    ratings of the same shape as the training data: what the served version never learned."""
    root = tmp_path / "models"
    shutil.copytree(models_dir / MODEL_NAME, root / MODEL_NAME)
    url = fresh_store_url()
    store = EventStore(url)
    store.open()
    rng = np.random.default_rng(3)
    base = tiny_data.ratings.sample(frac=1.0, random_state=3)
    writes = []
    for k, row in enumerate(base.head(400).itertuples()):
        rating = float(np.clip(row.rating + rng.normal(0, 0.3), 1, 5).round())
        writes.append([Rating(str(row.user_id), str(row.item_id), rating, 2_000_000_000 + k)])
    store.write(writes)
    store.close()
    return root, url


def plan(tiny_data, root, url, config, **more):
    return Plan(
        store=url, models_dir=root, name=MODEL_NAME, data=tiny_data, config=config,
        retrieval=None, **more,
    )  # fmt: skip


def test_an_ordinary_candidate_is_published_with_its_gate(tiny_data, store_with_new_ratings):
    root, url = store_with_new_ratings
    config = TrainConfig(factors=8, epochs=6, batch_size=128, patience=2, learning_rate=0.01)
    record = run(plan(tiny_data, root, url, config, tolerance=0.1), say=lambda *_: None)
    assert record["verdict"] == "passed", record
    assert record["published_version"] == 2 and record["held_out_ratings"] >= 40
    manifest = read_manifest(root / MODEL_NAME / "2")
    assert manifest.gate is not None and manifest.gate.verdict == "passed"
    assert manifest.gate.baseline_version == 1 and manifest.gate.tolerance == 0.1
    assert manifest.gate.candidate.rmse == pytest.approx(record["candidate"]["rmse"])
    # Refitted with the holdout: the published version learned every rating in the store.
    assert manifest.events is not None and manifest.events.ratings == 400
    store = EventStore(url)
    store.open()
    (history,) = [json.loads(store.control_get(f"retrain:{MODEL_NAME}")[0])]
    store.close()
    assert [r["verdict"] for r in history] == ["passed"]


def test_a_weak_candidate_is_refused_and_written_down(tiny_data, store_with_new_ratings):
    root, url = store_with_new_ratings
    weak = TrainConfig(factors=2, epochs=1, batch_size=128, learning_rate=1e-5, refit=False)
    record = run(plan(tiny_data, root, url, weak, tolerance=0.0), say=lambda *_: None)
    assert record["verdict"] == "refused", record
    assert "RMSE" in record["reason"] and record["candidate"]["rmse"] > record["baseline"]["rmse"]
    assert sorted(p.name for p in (root / MODEL_NAME).iterdir()) == ["1"]  # nothing published
    forced = run(plan(tiny_data, root, url, weak, tolerance=0.0, force=True), say=lambda *_: None)
    assert forced["verdict"] == "forced" and forced["published_version"] == 2
    assert read_manifest(root / MODEL_NAME / "2").gate.verdict == "forced"


def test_a_round_is_due_on_enough_new_ratings_or_after_a_while(tiny_data, store_with_new_ratings):
    root, url = store_with_new_ratings
    loop = plan(tiny_data, root, url, TrainConfig())
    assert due(loop, 400, 1e9) == "400 new ratings (at least 400)"
    assert due(loop, 401, 1e9) is None
    assert due(loop, 401, 0.0).endswith("since the last round")


def test_the_round_judges_the_version_the_service_serves_by_its_own_rule(
    tiny_data, store_with_new_ratings
):
    """The admin's pin, else the service's start-up pin (RECSYS_MODEL_VERSION), else the
    newest on disk."""
    from app.serving.control import Choice
    from loop.round import served_version

    root, url = store_with_new_ratings
    shutil.copytree(root / MODEL_NAME / "1", root / MODEL_NAME / "2")
    store = EventStore(url)
    store.open()
    try:
        assert served_version(plan(tiny_data, root, url, TrainConfig()), store) == 2
        assert served_version(plan(tiny_data, root, url, TrainConfig(), pinned=1), store) == 1
        store.control_put(f"admin:{MODEL_NAME}", Choice(2, 0).to_json())
        assert served_version(plan(tiny_data, root, url, TrainConfig(), pinned=1), store) == 2
        store.control_put(f"admin:{MODEL_NAME}", Choice(None, 1).to_json())  # a reload unpins
        assert served_version(plan(tiny_data, root, url, TrainConfig(), pinned=1), store) == 1
    finally:
        store.close()
