"""GET /similar/{item_id}: the nearest items by cosine between the version's item vectors,
never the item itself, through the running app."""

from __future__ import annotations

import numpy as np
import pytest

from app.serving.loader import load_version
from tests.helpers import make_client, served_view


@pytest.fixture(scope="module")
def served(default_version):
    models_dir, path = default_version
    with make_client(models_dir=models_dir, model_name="both", max_n=20) as client:
        yield client, load_version(path)


def test_similar_items_are_the_nearest_by_cosine_never_the_item_itself(served):
    client, loaded = served
    item = loaded.item_ids[7]
    body = client.get(f"/similar/{item}", params={"n": 5}).json()
    # The reference: cosine between the retrieval vectors, computed here from the files.
    q = np.asarray(loaded.vectors.item_factors, np.float64)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    cosine = q @ q[7]
    cosine[7] = -np.inf
    best = np.argsort(-cosine, kind="stable")[:5]
    assert body["item_id"] == item and body["model"] == {"name": "both", "version": 1}
    assert [i["item_id"] for i in body["items"]] == [loaded.item_ids[r] for r in best]
    assert [i["score"] for i in body["items"]] == pytest.approx(cosine[best], abs=1e-5)
    assert all(-1 <= i["score"] <= 1 for i in body["items"])
    assert body["items"][0]["title"] == loaded.titles[best[0]]


def test_an_unknown_item_is_a_404_naming_it_and_n_is_bounded(served):
    client, _ = served
    missing = client.get("/similar/no-such-film")
    assert missing.status_code == 404
    assert missing.json()["unknown_item_ids"] == ["no-such-film"]
    too_many = client.get(f"/similar/{served[1].item_ids[0]}", params={"n": 21})
    assert too_many.status_code == 422 and "less than or equal to 20" in too_many.text


def test_a_folded_in_new_item_has_neighbours_and_is_one(served):
    client, loaded = served
    film = {"title": "A New Film (2026)", "genres": ["Drama"], "year": 2026}
    assert client.put("/items/newcomer-film", json=film).status_code == 200
    raters = list(loaded.user_index)[:5]
    events = [{"user_id": u, "item_id": "newcomer-film", "rating": 5} for u in raters]
    assert client.post("/events", json={"events": events}).status_code == 200
    mine = client.get("/similar/newcomer-film", params={"n": 3}).json()["items"]
    assert len(mine) == 3 and "newcomer-film" not in [i["item_id"] for i in mine]
    # As a candidate: the reference ranks the catalogue and the folded film together.
    new = served_view(client).new_items
    vectors = np.vstack([loaded.vectors.item_factors, new.vectors]).astype(np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [*loaded.item_ids, *new.ids]
    query = ids.index(mine[0]["item_id"])
    cosine = vectors @ vectors[query]
    cosine[query] = -np.inf
    best = np.argsort(-cosine, kind="stable")[:20]
    others = client.get(f"/similar/{ids[query]}", params={"n": 20}).json()["items"]
    assert [i["item_id"] for i in others] == [ids[r] for r in best]
    assert "newcomer-film" in [i["item_id"] for i in others]
    shown = next(i for i in others if i["item_id"] == "newcomer-film")
    assert shown["title"] == "A New Film (2026)" and shown["score"] == pytest.approx(
        mine[0]["score"], abs=1e-5
    )


def test_a_large_catalogue_takes_its_cosines_from_the_norms_to_the_same_answers(
    served, default_version, monkeypatch
):
    _, loaded = served
    assert loaded.unit_items is not None  # 40 items: the unit-length copy
    models_dir, _ = default_version
    items = [loaded.item_ids[row] for row in (0, 7, 39)]
    with make_client(models_dir=models_dir, model_name="both", max_n=20) as small:
        wanted = [small.get(f"/similar/{i}", params={"n": 20}).json()["items"] for i in items]
    monkeypatch.setattr("app.serving.loader.UNIT_COPY_BELOW", 40)  # as if 40 were many
    with make_client(models_dir=models_dir, model_name="both", max_n=20) as large:
        assert served_view(large).loaded.unit_items is None
        for item, want in zip(items, wanted, strict=True):
            got = large.get(f"/similar/{item}", params={"n": 20}).json()["items"]
            assert [i["item_id"] for i in got] == [i["item_id"] for i in want]
            assert [i["score"] for i in got] == pytest.approx([i["score"] for i in want], abs=2e-6)
    rows = np.array([3, 0, 39])
    unit = np.asarray(loaded.vectors.item_factors)[rows]
    unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), np.float32(1e-12))
    assert np.array_equal(loaded.unit_rows(rows), unit)  # diversity's rows: the same bytes
