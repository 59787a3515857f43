"""Swaps and the event store's identity: a swap to an older or a newer version leaves the live
state a restart serving that version builds (the ratings the newer version had learned come
back for the older one); a version learned from another store skips none of this store's
events; the users of a new version are folded in while the service already answers."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest

from app.events.changes import Item, Rating
from app.events.store import EventStore
from app.events.view import VersionView
from tests.helpers import fresh_store_url, make_client, served_view, wait_for
from training.config import TrainConfig
from training.data.events import with_events
from training.pipeline import train_version

TS = 2_000_000_000


def write(url: str, *writes) -> None:
    store = EventStore(url)
    store.open()
    store.write(list(writes))
    store.close()


@pytest.fixture(scope="module")
def two_versions(tiny_data, tmp_path_factory):
    """A store and two versions trained from it: version 1 learned its first events, version 2
    also the next ones (re-ratings, a forget, a new film rated by five known users); then more
    events neither learned."""
    url = fresh_store_url()
    models = tmp_path_factory.mktemp("swap-models")
    users = list(tiny_data.ratings["user_id"].unique())
    config = TrainConfig(factors=4, epochs=2, batch_size=128)
    write(
        url,
        [Rating("newcomer", "1", 5.0, TS), Rating("newcomer", "2", 3.0, TS + 1)],
        [Rating(users[0], "3", 1.0, TS + 2), Rating(users[1], "4", 4.0, TS + 3)],
        Item("premiere", "A New Film (2026)", ["Drama"], 2026),
        users[2],
    )
    train_version(with_events(tiny_data, url), models, "swap", config, None, log=lambda *_: None)
    write(
        url,
        [Rating("newcomer", "1", 2.0, TS + 10), Rating("second", "5", 4.0, TS + 11)],
        [Rating(u, "premiere", 5.0 - k % 2, TS + 12) for k, u in enumerate(users[3:9])],
        users[1],  # forgotten: their live rating and their training ratings
        [Rating(users[1], "6", 3.0, TS + 13)],  # a fresh start
    )
    train_version(with_events(tiny_data, url), models, "swap", config, None, log=lambda *_: None)
    write(
        url,
        [Rating("third", "7", 5.0, TS + 20), Rating(users[0], "8", 2.0, TS + 21)],
        [Rating(users[9], "premiere", 4.0, TS + 22)],
    )
    return url, models, users


def settled(client) -> bool:
    """Every served version's users folded in."""
    events = client.app.state.service.events
    return not events.refolds and not any(view.pending for view in events.live.views)


def snapshot(view: VersionView) -> dict:
    """Everything a view serves from, comparable across processes."""
    log = view.log
    users = sorted(set(log.ratings) | set(log.forgotten) | set(view.loaded.user_index))
    new = view.new_items
    return {
        "version": view.version,
        "learned": view.learned,
        "log": (log.floor, log.ratings, log.forgotten, log.items),
        "live": {u: mine for u in users if (mine := view.live_ratings(u))},
        "rows": {u: view.base_row(u) for u in users},
        "popularity": view.popularity.tolist(),
        "log_popularity": np.round(view.log_popularity, 6).tolist(),
        "raters": view.raters,
        "years": np.nan_to_num(view.attributes.years, nan=-1).tolist(),
        "genres": {g: np.flatnonzero(c).tolist() for g, c in view.attributes.columns.items()},
        "new_items": None if new is None else (new.ids, np.round(new.vectors, 5).tolist()),
        "folded": {
            u: (np.round(f.vector, 5).tolist(), f.popularity) for u, f in view.folded.items()
        },
    }


def test_a_swap_either_way_leaves_what_a_restart_builds(two_versions):
    url, models, users = two_versions
    settings = {"models_dir": models, "model_name": "swap", "store_url": url, "poll_seconds": 0}
    with make_client(**settings) as running:
        assert served_view(running).version == 2
        wait_for(lambda: settled(running), 10)
        events = [{"user_id": "fourth", "item_id": "9", "rating": 4}]
        assert running.post("/events", json={"events": events}).status_code == 200
        newest = served_view(running)
        assert newest.live_ratings("second") == {}  # version 2 learned it
        versions = running.app.state.service.versions
        for version in (1, 2):  # back to the older version, then forward again
            running.portal.call(versions.serve_version, version, True)
            wait_for(lambda: settled(running), 10)
            swapped = snapshot(served_view(running))
            with make_client(**settings, model_version=version) as restarted:
                wait_for(lambda: settled(restarted), 10)  # noqa: B023
                fresh = snapshot(served_view(restarted))
            assert swapped == fresh, version
        older = running.portal.call(versions.serve_version, 1, True).version
        assert older == 1
        wait_for(lambda: settled(running), 10)
        back = served_view(running)
        # What version 2 had learned is live again for version 1: nothing waits for a restart.
        assert set(back.live_ratings("second")) == {"5"}
        assert back.live_ratings("newcomer")["1"][0] == 2.0
        assert back.base_row(users[1]) is None  # forgotten after version 1 was trained
        assert running.get("/recommend/second").json()["source"] == "fold_in"


def test_a_version_learned_from_another_store_skips_none_of_this_ones(two_versions, caplog):
    _, models, users = two_versions
    other = fresh_store_url()
    write(other, [Rating(users[0], "3", 5.0, TS), Rating("stranger", "2", 4.0, TS)])
    with caplog.at_level(logging.WARNING, logger="app.events"):
        with make_client(models_dir=models, model_name="swap", store_url=other) as client:
            view = served_view(client)
            # Version 2 learned 14 events of its own store; these two have ids 1 and 2 here.
            assert view.learned == 0
            assert set(view.live_ratings(users[0])) == {"3"}
            assert set(view.live_ratings("stranger")) == {"2"}
            wait_for(lambda: settled(client), 10)
            assert client.get("/recommend/stranger").json()["source"] == "fold_in"
    (warning,) = [r.getMessage() for r in caplog.records if "none skipped" in r.getMessage()]
    assert "learned the events of store sqlite:events.sqlite3" in warning
    assert "from log id 1 on are applied" in warning


def test_a_new_versions_users_are_folded_in_while_it_already_answers(two_versions, monkeypatch):
    url, models, _ = two_versions
    release = threading.Event()
    solve = VersionView.refold_users

    def held(self, users):  # the fold-in thread waits until the test lets it go
        release.wait(20)
        return solve(self, users)

    monkeypatch.setattr(VersionView, "refold_users", held)
    with make_client(models_dir=models, model_name="swap", store_url=url) as client:
        try:
            ready = client.get("/ready").json()
            assert ready["status"] == "ready"
            (progress,) = ready["fold_in"]
            assert progress["version"] == 2 and progress["pending"] >= 3
            body = client.get("/recommend/third").json()  # a new user with a live rating
            assert (body["source"], body["fold_in"]) == ("popular", "pending")
            pair = {"instances": [{"user_id": "third", "item_id": "1"}]}
            predicted = client.post("/predict", json=pair).json()
            assert predicted["sources"] == ["popular"] and predicted["fold_in_pending"] == ["third"]
        finally:
            release.set()
        wait_for(lambda: settled(client), 10)
        body = client.get("/recommend/third").json()
        assert body["source"] == "fold_in" and "fold_in" not in body
        assert client.get("/ready").json()["fold_in"][0]["pending"] == 0
