"""POST /rank (the caller's items ordered by the user's score) and GET /popular (most raters,
overall or in a window), each against a reference computed from the version's files."""

from __future__ import annotations

import numpy as np
import pytest


def scores_of(loaded, row):
    v = loaded.vectors
    scores = np.asarray(v.item_factors, np.float64) @ np.asarray(v.user_factors[row], np.float64)
    return scores + np.asarray(v.item_bias, np.float64)


def test_rank_orders_the_given_items_by_the_users_score(served):
    client, loaded = served
    user = list(loaded.user_index)[2]
    scores = scores_of(loaded, loaded.user_index[user])
    given = [loaded.item_ids[r] for r in (5, 0, 17, 33, 0, 9)]  # a repeat, and seen ones too
    body = client.post("/rank", json={"user_id": user, "item_ids": given}).json()
    rows = sorted({5, 0, 17, 33, 9}, key=lambda r: -scores[r])
    assert [i["item_id"] for i in body["items"]] == [loaded.item_ids[r] for r in rows]
    assert [i["score"] for i in body["items"]] == pytest.approx(scores[rows], abs=1e-5)
    assert body["source"] == "model" and body["items"][0]["title"] == loaded.titles[rows[0]]
    # The same scores /recommend ranks with: its top item, ranked with others, keeps its score.
    top = client.get(f"/recommend/{user}", params={"n": 1}).json()["items"][0]
    again = client.post("/rank", json={"user_id": user, "item_ids": [top["item_id"]]}).json()
    assert again["items"][0]["score"] == pytest.approx(top["score"], abs=1e-6)


def test_rank_names_every_unknown_item_and_ranks_nothing(served):
    client, loaded = served
    user = list(loaded.user_index)[2]
    body = {"user_id": user, "item_ids": [loaded.item_ids[0], "nope-1", "nope-2"]}
    answer = client.post("/rank", json=body)
    assert answer.status_code == 404
    assert answer.json()["unknown_item_ids"] == ["nope-1", "nope-2"]
    assert "2 unknown item_id: 'nope-1', 'nope-2'" in answer.json()["detail"]


def test_rank_for_a_user_without_history_is_popularity_order_or_a_404(served):
    client, loaded = served
    counts = np.bincount(loaded.seen.indices, minlength=loaded.n_items)
    given = loaded.item_ids[:6]
    body = client.post("/rank", json={"user_id": "stranger", "item_ids": given}).json()
    want = sorted(range(6), key=lambda r: (-counts[r], r))
    assert body["source"] == "popular"
    assert [i["item_id"] for i in body["items"]] == [given[r] for r in want]
    strict = {"user_id": "stranger", "item_ids": given, "fallback": False}
    refused = client.post("/rank", json=strict)
    assert refused.status_code == 404 and refused.json()["unknown_user_ids"] == ["stranger"]


def test_popular_counts_raters_and_takes_the_filters(served):
    client, loaded = served
    counts = np.bincount(loaded.seen.indices, minlength=loaded.n_items).astype(float)
    body = client.get("/popular", params={"n": 5}).json()
    want = np.lexsort((np.arange(len(counts)), -counts))[:5]
    assert [i["item_id"] for i in body["items"]] == [loaded.item_ids[r] for r in want]
    assert [i["score"] for i in body["items"]] == counts[want].tolist()
    assert body["window"] is None and body["model"]["name"] == "both"
    drama = client.get("/popular", params={"n": 40, "genres": "Drama"}).json()["items"]
    rows = [r for r in range(loaded.n_items) if "Drama" in loaded.genres[r]]
    assert {i["item_id"] for i in drama} == {loaded.item_ids[r] for r in rows}


def test_a_popular_window_counts_only_recent_ratings_up_to_the_newest(served):
    client, loaded = served
    seen = loaded.seen
    end = int(seen.timestamps.max())
    start = end - 30 * 86400
    recent = np.bincount(seen.indices[seen.timestamps >= start], minlength=loaded.n_items)
    body = client.get("/popular", params={"n": 3, "window": "30d"}).json()
    want = np.lexsort((np.arange(len(recent)), -recent))[:3]
    assert body["window"] == {"start": start, "end": end}
    assert [i["item_id"] for i in body["items"]] == [loaded.item_ids[r] for r in want]
    assert [i["score"] for i in body["items"]] == recent[want].astype(float).tolist()
    for bad in ("30", "0d", "3y", "-1d"):
        answer = client.get("/popular", params={"window": bad})
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == [
            "query",
            "window",
        ]


def test_live_ratings_count_in_popular_at_once_and_in_a_window_at_their_time(served):
    client, loaded = served
    counts = np.bincount(loaded.seen.indices, minlength=loaded.n_items)
    least = int(np.argmin(counts))  # the item fewest rated: live raters lift it to the top
    item = loaded.item_ids[least]
    newest = int(loaded.seen.timestamps.max())
    raters = [f"fan-{k}" for k in range(int(counts.max()) + 1)]
    events = [
        {"user_id": u, "item_id": item, "rating": 5, "timestamp": newest + 60} for u in raters
    ]
    assert client.post("/events", json={"events": events}).status_code == 200
    top = client.get("/popular", params={"n": 1}).json()["items"][0]
    assert top["item_id"] == item and top["score"] == counts[least] + len(raters)
    hour = client.get("/popular", params={"n": 1, "window": "1h"}).json()
    assert hour["window"]["end"] == newest + 60
    assert hour["items"][0] == {**top, "score": float(len(raters))}
