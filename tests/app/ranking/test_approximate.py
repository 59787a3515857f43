"""/recommend through a version's approximate index answers what the exact path answers
(seen items, filters, diversity and folded-in new items included), and a version whose index is
broken is refused with a message naming the file."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from app.ranking import recommend as ranking
from app.ranking.filters import ItemFilter
from app.ranking.recommend import recommend
from app.serving.loader import load_version
from artifact import ann
from artifact.checksums import checksums_of
from artifact.errors import ArtifactError
from tests.helpers import make_client


@pytest.fixture(scope="module")
def indexed(trained, retrieval, tiny_data, tmp_path_factory):
    """A client on a version exported with an index (the threshold lowered to 1 item)."""
    from training.export import export_version

    root = tmp_path_factory.mktemp("indexed-models")
    path = export_version(
        trained, root, "indexed", tiny_data.ratings, tiny_data.items, retrieval, ann_min_items=1
    )
    with make_client(models_dir=root, model_name="indexed", max_n=60) as client:
        yield client, path


def post(client, user, item, rating):
    events = [{"user_id": user, "item_id": item, "rating": rating}]
    assert client.post("/events", json={"events": events}).status_code == 200


def test_the_index_answers_what_the_exact_path_answers(indexed, monkeypatch):
    client, _ = indexed
    service = client.app.state.service
    live = service.versions.served.live.view
    loaded = live.loaded
    assert loaded.ann is not None and loaded.manifest.ann.file == ann.ANN_FILE

    def exact(user: str, **ask):  # the same ranking with the index path turned off
        with monkeypatch.context() as patched:
            patched.setattr(ranking, "approximate", lambda *_: None)
            return recommend(live.user(user), **ask)

    users = list(loaded.user_index)
    # A new film, folded in from five known raters: it competes with the index's candidates.
    film = {"title": "A New Film (2026)", "genres": ["Drama"], "year": 2026}
    assert client.put("/items/premiere", json=film).status_code == 200
    for user in users[:5]:
        post(client, user, "premiere", 5)
    assert live.new_items is not None and "premiere" in live.new_items.ids
    searched = []
    search = ann.search
    monkeypatch.setattr(ann, "search", lambda *a: searched.append(1) or search(*a))
    asks = [
        {"n": 10},
        {"n": 3},
        {"n": loaded.n_items + 1},  # everything: the new film among them
        {"n": 10, "exclude_seen": False},
        {"n": 10, "where": ItemFilter.of(["Drama"], year_max=1995)},
        {"n": 5, "diversity": 0.4},
    ]
    shown_new = 0
    for user in users[5:]:
        for ask in asks:
            got, expected = recommend(live.user(user), **ask), exact(user, **ask)
            assert got.rows.tolist() == expected.rows.tolist(), (user, ask)
            assert np.allclose(got.scores, expected.scores, atol=1e-5)
            shown_new += int((got.rows >= loaded.n_items).any())
    assert len(searched) == len(users[5:]) * len(asks)  # all through the index
    assert shown_new > 0
    # Over HTTP, the same: no seen item, the version's scores.
    body = client.get(f"/recommend/{users[7]}?n=5").json()
    assert [i["item_id"] for i in body["items"]] == exact(users[7], n=5).item_ids(loaded)


def test_lists_that_run_dry_are_widened_before_the_exact_path_answers(indexed, monkeypatch):
    """The version's nprobe is chosen on recall without seen items; a user whose visited lists
    hold fewer candidates than asked gets four times the lists, then more, not the exact path."""
    import faiss

    from app.ranking.approximate import approximate

    client, _ = indexed
    live = client.app.state.service.versions.served.live.view
    loaded = live.loaded
    # The fixture's catalogue makes one list; these vectors in 16 lists, one visited at first.
    items = ann.augment_items(loaded.vectors.item_factors, loaded.vectors.item_bias)
    index = faiss.index_factory(items.shape[1], "IVF16,Flat", faiss.METRIC_L2)
    index.train(items)
    index.add(items)
    faiss.extract_index_ivf(index).nprobe = 1
    monkeypatch.setitem(loaded.__dict__, "ann", index)
    assert ann.probes(loaded.ann) == (1, 16)
    lists = 16
    visited: list[int] = []
    search = ann.search
    monkeypatch.setattr(
        ann, "search", lambda index, q, k, nprobe=None: visited.append(nprobe) or search(
            index, q, k, nprobe
        ),
    )  # fmt: skip
    users = [u for u in loaded.user_index if live.user(u).folded is None]
    widened = 0
    for user in users[:20]:
        visited.clear()
        got = approximate(live.user(user), 10, True, None)
        with monkeypatch.context() as patched:
            patched.setattr(ranking, "approximate", lambda *_: None)
            expected = recommend(live.user(user), n=10)
        assert got is not None and got.rows.tolist() == expected.rows.tolist(), user
        assert visited[0] == 1 and visited[1:] == [min(4**j, lists) for j in range(1, len(visited))]
        widened += len(visited) > 1
    assert widened > 0  # one list ran dry for these users, and the index still answered


def test_users_with_live_ratings_and_by_rating_stay_exact(indexed, monkeypatch):
    client, _ = indexed
    loaded = client.app.state.service.versions.served.loaded
    monkeypatch.setattr(ann, "search", lambda *a: pytest.fail("searched the index"))
    users = list(loaded.user_index)
    post(client, users[-1], loaded.item_ids[0], 4)  # folded in now
    assert client.get(f"/recommend/{users[-1]}").status_code == 200
    assert client.get(f"/recommend/{users[-2]}?by=rating").status_code == 200
    assert client.get("/recommend/someone-new").json()["source"] == "popular"


def test_a_broken_index_refuses_the_version_naming_the_file(indexed, tmp_path):
    _, path = indexed
    broken = tmp_path / "indexed" / "1"
    shutil.copytree(path, broken)
    index = broken / ann.ANN_FILE
    index.write_bytes(index.read_bytes()[:-600])
    with pytest.raises(ArtifactError, match=f"{index}: SHA-256"):
        load_version(broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    # With checksums that agree, faiss's own reading must refuse it.
    manifest["files"] = {f: h for f, h in checksums_of(broken).items() if f != "manifest.json"}
    (broken / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=f"{index}: .*not a readable faiss index"):
        load_version(broken)
    assert load_version(broken, approximate=False).ann is None  # RECSYS_ANN=false: not read
