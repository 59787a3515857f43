"""The offline ranking metrics measure exactly what the service answers: for every user of a
small model, the evaluation's top-10 (the kernel behind the metrics) equals GET and POST
/recommend."""

from __future__ import annotations

import numpy as np

from app.serving.loader import load_version
from training.data.split import IdIndex
from training.evaluation.ranking import factor_scores, seen_items, top_k_lists


def test_evaluations_top_10_is_what_the_service_answers(client, version_dir, tiny_data):
    loaded = load_version(version_dir)
    users, items = IdIndex(list(loaded.user_index)), IdIndex(loaded.item_ids)
    vectors = loaded.vectors
    scores = factor_scores(vectors.user_factors, vectors.item_factors, vectors.item_bias)
    # The version's seen items are every rating it was given: evaluate against the same set.
    seen = seen_items(users, items, tiny_data.ratings)
    rows = np.arange(len(users))
    measured = {
        users.to_list()[row]: [loaded.item_ids[i] for i in ranked]
        for block, lists in top_k_lists(scores, seen, rows, k=10, batch_users=16)
        for row, ranked in zip(block.tolist(), lists, strict=True)
    }
    batch = client.post("/recommend", json={"user_ids": list(measured), "n": 10}).json()
    for user, result in zip(measured, batch["results"], strict=True):
        single = client.get(f"/recommend/{user}", params={"n": 10}).json()
        assert [i["item_id"] for i in single["items"]] == measured[user], user
        assert [i["item_id"] for i in result["items"]] == measured[user], user
    assert len(measured) == len(loaded.user_index) == 60
