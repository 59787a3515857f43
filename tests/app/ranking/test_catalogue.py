"""GET /items?q= (search by title) and GET /items/{item_id} (one film's card)."""

from __future__ import annotations

import numpy as np


def test_search_finds_titles_case_insensitively_most_raters_first(served):
    client, loaded = served
    counts = np.bincount(loaded.seen.indices, minlength=loaded.n_items)
    body = client.get("/items", params={"q": "MOVIE 1", "n": 40}).json()
    rows = [r for r, t in enumerate(loaded.titles) if "movie 1" in t.lower()]
    want = sorted(rows, key=lambda r: (-counts[r], loaded.titles[r]))
    assert [i["item_id"] for i in body["items"]] == [loaded.item_ids[r] for r in want]
    first = body["items"][0]
    row = loaded.item_index[first["item_id"]]
    assert first == {
        "item_id": loaded.item_ids[row],
        "title": loaded.titles[row],
        "genres": loaded.genres[row],
        "year": loaded.years[row],
        "raters": int(counts[row]),
        "in_model": True,
    }
    assert client.get("/items", params={"q": "no such film"}).json()["items"] == []
    assert client.get("/items", params={"q": ""}).status_code == 422


def test_one_card_and_a_registered_film_is_found_too(served):
    client, loaded = served
    card = client.get(f"/items/{loaded.item_ids[2]}").json()
    assert card["title"] == loaded.titles[2] and card["in_model"] is True
    missing = client.get("/items/nope")
    assert missing.status_code == 404 and missing.json()["unknown_item_ids"] == ["nope"]
    film = {"title": "Zebra Crossing (2026)", "genres": ["Drama"], "year": 2026}
    assert client.put("/items/zebra", json=film).status_code == 200
    found = client.get("/items", params={"q": "zebra"}).json()["items"]
    assert found == [
        {
            "item_id": "zebra",
            "title": "Zebra Crossing (2026)",
            "genres": ["Drama"],
            "year": 2026,
            "raters": 0,
            "in_model": False,
        }
    ]
