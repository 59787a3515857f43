"""explain=true on /recommend and /rank: each item's score split into parts that add up to it,
the rated items with the largest parts named (`because`), checked against a projection computed
here with numpy's own least squares."""

from __future__ import annotations

import numpy as np
import pytest


def reference_parts(loaded, row, target):
    """Each rated item's part in `target`'s score: p ~ Q_S' a (minimum-norm least squares)."""
    v = loaded.vectors
    rated = loaded.seen.of(row)
    q = np.asarray(v.item_factors, np.float64)
    p = np.asarray(v.user_factors[row], np.float64)
    weights = np.linalg.lstsq(q[rated].T, p, rcond=None)[0]
    parts = weights * (q[rated] @ q[target])
    return dict(zip(rated.tolist(), parts.tolist(), strict=True)), q[target] @ (
        p - q[rated].T @ weights
    )


def test_the_parts_add_up_to_each_score_and_name_the_largest_rated_items(served):
    client, loaded = served
    user = list(loaded.user_index)[8]
    row = loaded.user_index[user]
    body = client.get(f"/recommend/{user}", params={"n": 5, "explain": "true"}).json()
    assert body["explanation"]["exact"] is False
    assert body["explanation"]["method"].startswith("approximate")
    ratings = dict(
        zip(
            loaded.seen.of(row).tolist(),
            loaded.seen.ratings[loaded.seen.indptr[row] : loaded.seen.indptr[row + 1]].tolist(),
            strict=True,
        )
    )
    for item in body["items"]:
        parts = item["parts"]
        total = parts["rated_items"] + parts["unattributed"] + parts["item"] + parts["user"]
        assert total == pytest.approx(item["score"], abs=1e-4)
        target = loaded.item_index[item["item_id"]]
        want, missed = reference_parts(loaded, row, target)
        assert parts["rated_items"] == pytest.approx(sum(want.values()), abs=1e-3)
        assert parts["unattributed"] == pytest.approx(missed, abs=1e-3)
        assert parts["item"] == pytest.approx(float(loaded.vectors.item_bias[target]), abs=1e-5)
        best = sorted(want, key=lambda r: -want[r])[:3]
        assert [b["item_id"] for b in item["because"]] == [loaded.item_ids[r] for r in best]
        for reason, r in zip(item["because"], best, strict=True):
            assert reason["contribution"] == pytest.approx(want[r], abs=1e-3)
            assert reason["rating"] == ratings[r]
            assert reason["title"] == loaded.titles[r]
            assert reason["share"] == pytest.approx(want[r] / item["score"], abs=1e-3)
    plain = client.get(f"/recommend/{user}", params={"n": 5}).json()
    assert "explanation" not in plain and "because" not in plain["items"][0]
    assert [i["item_id"] for i in plain["items"]] == [i["item_id"] for i in body["items"]]


def test_rank_explains_too_and_a_user_without_history_is_explained_by_popularity(served):
    client, loaded = served
    user = list(loaded.user_index)[8]
    given = loaded.item_ids[:4]
    body = client.post("/rank", json={"user_id": user, "item_ids": given, "explain": True})
    for item in body.json()["items"]:
        parts = item["parts"]
        assert sum(parts.values()) == pytest.approx(item["score"], abs=1e-4)
        assert 1 <= len(item["because"]) <= 3
    stranger = client.post("/rank", json={"user_id": "nobody", "item_ids": given, "explain": True})
    answer = stranger.json()
    assert answer["source"] == "popular" and answer["explanation"]["exact"] is True
    for item in answer["items"]:
        assert item["because"] == [] and item["parts"]["item"] == item["score"]


def test_a_folded_in_users_reasons_are_their_live_ratings(served):
    client, loaded = served
    liked = loaded.item_ids[10:16]
    events = [{"user_id": "explained-newcomer", "item_id": i, "rating": 5} for i in liked]
    assert client.post("/events", json={"events": events}).status_code == 200
    body = client.get("/recommend/explained-newcomer", params={"n": 5, "explain": "true"}).json()
    assert body["source"] == "fold_in"
    for item in body["items"]:
        assert sum(item["parts"].values()) == pytest.approx(item["score"], abs=1e-4)
        assert {b["item_id"] for b in item["because"]} <= set(liked)
        assert all(b["rating"] == 5 for b in item["because"])
