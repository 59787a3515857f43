"""Training from the event store: the base data plus the store's ratings, forgotten users gone
(base data included), registered items' metadata added; the version records the last event it
learned, and the service serving it drops exactly those from its live state."""

from __future__ import annotations

import numpy as np
import pytest

from app.events.changes import Item, Rating
from app.events.store import EventStore
from artifact.manifest import read_manifest
from tests.helpers import fresh_store_url, make_client, served_view
from training.config import TrainConfig
from training.data.events import with_events
from training.pipeline import train_version


@pytest.fixture
def store_url(tiny_data):
    """A store holding: a new user's ratings, a base user's re-rating, a base user forgotten
    (then rating again), and a registered film rated by a new user."""
    url = fresh_store_url()
    store = EventStore(url)
    store.open()
    base = tiny_data.ratings
    first, second = base["user_id"].unique()[:2]
    pair = base[base["user_id"] == first].iloc[0]
    store.write(
        [
            [
                Rating("newcomer", "1", 5.0, 2_000_000_000),
                Rating("newcomer", "2", 3.0, 2_000_000_001),
            ],
            [Rating(first, pair["item_id"], 1.0, 2_000_000_002)],
            Item("premiere", "A New Film (2026)", ["Drama"], 2026),
            [Rating("newcomer", "premiere", 4.0, 2_000_000_003)],
            second,
            [Rating(second, "3", 2.0, 2_000_000_004)],
        ]
    )
    store.close()
    return url, first, second, pair["item_id"]


def test_the_store_adds_replaces_and_forgets(tiny_data, store_url):
    url, first, second, item = store_url
    data = with_events(tiny_data, url)
    ratings = data.ratings
    assert data.store.through == 7 and data.store.ratings == 5 and data.store.forgotten == 1
    newcomer = ratings[ratings["user_id"] == "newcomer"].set_index("item_id")["rating"]
    assert newcomer.to_dict() == {"1": 5.0, "2": 3.0, "premiere": 4.0}
    # The store's later rating replaced the file's for the same pair; nothing else of theirs.
    mine = ratings[ratings["user_id"] == first]
    assert mine.set_index("item_id").loc[item, "rating"] == 1.0
    assert len(mine) == (tiny_data.ratings["user_id"] == first).sum()
    # The forgotten user's file ratings are gone; what they rated after the forget stays.
    assert ratings[ratings["user_id"] == second][["item_id", "rating"]].values.tolist() == [
        ["3", 2.0]
    ]
    premiere = data.items.set_index("item_id").loc["premiere"]
    assert (premiere["title"], premiere["year"]) == ("A New Film (2026)", 2026)


def test_an_unreadable_store_is_named(tiny_data, tmp_path):
    with pytest.raises(ValueError, match="event store sqlite:nothing.sqlite3"):
        with_events(tiny_data, f"sqlite:///{tmp_path}/nothing.sqlite3")


def test_a_version_trained_from_the_store_replaces_the_live_state_it_learned(
    tiny_data, store_url, tmp_path
):
    url, first, second, _ = store_url
    data = with_events(tiny_data, url)
    config = TrainConfig(factors=4, epochs=2, batch_size=128)
    path = train_version(data, tmp_path, "live", config, None, log=lambda *_: None).path
    manifest = read_manifest(path)
    assert manifest.events is not None and manifest.events.through == 7
    assert manifest.events.store == "sqlite:events.sqlite3"
    with make_client(models_dir=tmp_path, model_name="live", store_url=url) as client:
        live = served_view(client)
        # Everything in the store was learned: no live ratings, no fold-in; the newcomer and the
        # new film are trained ids now, and the forgotten user is known again by what they
        # rated after the forget.
        assert live.log.ratings == {} and live.learned == 7
        assert client.get("/recommend/newcomer").json()["source"] == "model"
        pair = {"instances": [{"user_id": second, "item_id": "premiere"}]}
        answer = client.post("/predict", json=pair)
        assert answer.status_code == 200, answer.text
        assert answer.json()["sources"] == ["model"]
        # A later event is live again, folded in against this version.
        client.post(
            "/events", json={"events": [{"user_id": "newcomer", "item_id": "4", "rating": 2}]}
        )
        body = client.get("/recommend/newcomer").json()
        assert body["source"] == "fold_in" and "4" not in [i["item_id"] for i in body["items"]]
        assert list(served_view(client).live_ratings("newcomer")) == ["4"]
    assert np.isfinite(manifest.metrics["test"]["rmse"])


def test_reading_a_store_whose_identity_changes_midway_is_refused(store_url, tmp_path):
    """A backup restored over the store while training reads it would mix two logs' ids."""
    from app.events.backup import backup, restore
    from artifact.eventlog import read_log

    url = store_url[0]
    backup(url, tmp_path / "events.backup")
    identity, rows = read_log(url, batch=2)
    assert identity is not None
    first = next(rows)
    assert first["id"] == 1
    restore(tmp_path / "events.backup", url, replace=True)  # same rows, another identity
    with pytest.raises(ValueError, match="its identity changed while it was read"):
        list(rows)


def test_impressions_are_read_as_exposure_never_as_ratings(tiny_data, store_url):
    from app.events.changes import Impression, Shown

    url = store_url[0]
    store = EventStore(url)
    store.open()
    shown = [
        Impression("r1", "newcomer", "recommend", 1, ("7", "8"), 1.0),
        Impression("r2", None, "popular", 1, ("9",), 2.0),  # nobody's: no exposure of a user
    ]
    store.write([Shown(shown)])
    store.close()
    data = with_events(tiny_data, url)
    assert data.store.impressions == 1
    assert data.exposures[["user_id", "item_id", "position"]].values.tolist() == [
        ["newcomer", "7", 0],
        ["newcomer", "8", 1],
    ]
    newcomer = data.ratings[data.ratings["user_id"] == "newcomer"]
    assert set(newcomer["item_id"]) == {"1", "2", "premiere"}  # the store's ratings only
