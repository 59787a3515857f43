"""Ratings over HTTP: stored durably, counted at once, refused whole when wrong, forgotten on
request; on the default SQLite store, through the real app."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from tests.helpers import MODEL_NAME, fresh_store_url, make_client, served_view, wait_for


@pytest.fixture(scope="module")
def ids(version_dir) -> tuple[list[str], list[str]]:
    users = json.loads((version_dir / "user_ids.json").read_text())
    items = json.loads((version_dir / "item_ids.json").read_text())
    return users, items


@pytest.fixture
def store_url() -> str:
    return fresh_store_url()


@pytest.fixture
def app(models_dir, store_url):
    with make_client(models_dir=models_dir, model_name=MODEL_NAME, store_url=store_url) as c:
        yield c


def rows_in(store_url: str) -> list[tuple]:
    """The store's log as an independent reader sees it."""
    with create_engine(store_url).connect() as conn:
        return conn.execute(
            text("SELECT kind, user_id, item_id, rating FROM log ORDER BY id")
        ).all()


def recommended(client, user: str, n: int = 40, **params) -> list[str]:
    body = client.get(f"/recommend/{user}", params={"n": n, **params}).json()
    return [i["item_id"] for i in body["items"]]


def test_events_are_stored_and_acknowledged_once_durable(app, store_url, ids):
    users, items = ids
    events = [
        {"user_id": users[0], "item_id": items[0], "rating": 4.5, "event_id": "a"},
        {"user_id": "newcomer", "item_id": items[1], "rating": 2, "timestamp": 1700000000},
    ]
    response = app.post("/events", json={"events": events})
    assert response.status_code == 200 and response.json() == {
        "accepted": 2,
        "duplicates": 0,
        "attributed": 0,
    }
    # Already in the database when the answer came, as another reader sees it.
    assert rows_in(store_url) == [
        ("rating", users[0], items[0], 4.5),
        ("rating", "newcomer", items[1], 2.0),
    ]


def test_the_same_event_id_is_stored_once(app, store_url, ids):
    users, items = ids
    event = {"user_id": users[1], "item_id": items[2], "rating": 3, "event_id": "retry-me"}
    assert app.post("/events", json={"events": [event, event]}).json() == {
        "accepted": 1,
        "duplicates": 1,
        "attributed": 0,
    }
    assert app.post("/events", json={"events": [event]}).json() == {
        "accepted": 0,
        "duplicates": 1,
        "attributed": 0,
    }
    assert len(rows_in(store_url)) == 1


def test_a_rated_item_is_never_recommended_back_from_the_answer_on(app, ids):
    users, _ = ids
    user = users[3]
    before = recommended(app, user)
    top = before[:3]
    events = [{"user_id": user, "item_id": item, "rating": 5} for item in top]
    assert app.post("/events", json={"events": events}).status_code == 200
    after = recommended(app, user)
    assert not set(top) & set(after)
    batch = app.post("/recommend", json={"user_ids": [user], "n": 40}).json()["results"][0]
    assert [i["item_id"] for i in batch["items"]] == after and batch["source"] == "fold_in"


def test_a_user_without_history_gets_popular_items_minus_what_they_rated(app, ids, tiny_data):
    _, items = ids
    counts = tiny_data.ratings["item_id"].value_counts()
    body = app.get("/recommend/stranger", params={"n": 5}).json()
    assert body["source"] == "popular"
    shown = [i["item_id"] for i in body["items"]]
    assert [i["score"] for i in body["items"]] == sorted(counts.values, reverse=True)[:5]
    assert app.get("/recommend/stranger", params={"fallback": "false"}).status_code == 404
    # Rating the most popular item removes it from their list and adds them to its raters.
    app.post(
        "/events", json={"events": [{"user_id": "stranger", "item_id": shown[0], "rating": 4}]}
    )
    again = app.get("/recommend/stranger", params={"n": 5}).json()
    assert shown[0] not in [i["item_id"] for i in again["items"]]
    other = app.get("/recommend/someone-else", params={"n": 1}).json()["items"][0]
    assert (other["item_id"], other["score"]) == (shown[0], counts.iloc[0] + 1)


@pytest.mark.parametrize(
    "event, status, message",
    [
        ({"rating": 6}, 422, "rating scale, 1 to 5"),
        ({"rating": 0.5}, 422, "rating scale, 1 to 5"),
        ({"item_id": "no-such-film"}, 404, "1 unknown item_id: 'no-such-film'"),
        ({"rating": "NaN"}, 422, "finite number"),
        ({"timestamp": -1}, 422, "greater than or equal to 0"),
        ({"surprise": 1}, 422, "Extra inputs"),
    ],
)
def test_a_bad_event_stores_nothing_of_its_request(app, store_url, ids, event, status, message):
    users, items = ids
    good = {"user_id": users[0], "item_id": items[0], "rating": 4}
    response = app.post("/events", json={"events": [good, {**good, **event}]})
    assert response.status_code == status, response.text
    assert message in json.dumps(response.json())
    if status == 422 and "scale" in message:
        assert response.json()["detail"][0]["loc"] == ["body", "events", 1, "rating"]
    assert rows_in(store_url) == []


def test_a_registered_item_can_be_rated_before_any_training_knows_it(app, ids):
    users, _ = ids
    event = {"events": [{"user_id": users[0], "item_id": "new-film", "rating": 5}]}
    assert app.post("/events", json=event).status_code == 404
    film = {"title": "A New Film (2026)", "genres": ["Drama"], "year": 2026}
    put = app.put("/items/new-film", json=film)
    assert put.status_code == 200 and put.json() == {
        **film,
        "item_id": "new-film",
        "in_model": False,
    }
    assert app.post("/events", json=event).json() == {
        "accepted": 1,
        "duplicates": 0,
        "attributed": 0,
    }
    ratings = app.get(f"/users/{users[0]}/ratings", params={"limit": 1}).json()["ratings"]
    assert ratings[0]["item_id"] == "new-film" and ratings[0]["title"] == "A New Film (2026)"


def test_a_users_ratings_merge_training_and_events_newest_first(app, ids, tiny_data):
    users, _ = ids
    user = users[4]
    trained = tiny_data.ratings[tiny_data.ratings["user_id"] == user]
    first = trained.sort_values("timestamp").iloc[0]  # the oldest training rating, re-rated now
    now = int(time.time())
    app.post(
        "/events",
        json={
            "events": [
                {"user_id": user, "item_id": first["item_id"], "rating": 1, "timestamp": now}
            ]
        },
    )
    body = app.get(f"/users/{user}/ratings", params={"limit": 3, "offset": 0}).json()
    assert body["total"] == len(trained)  # replaced, not added
    assert body["ratings"][0] == {
        "item_id": first["item_id"],
        "rating": 1.0,
        "timestamp": now,
        "source": "event",
        "title": body["ratings"][0]["title"],
    }
    every = app.get(f"/users/{user}/ratings", params={"limit": 1000}).json()["ratings"]
    stamps = [r["timestamp"] for r in every]
    assert stamps == sorted(stamps, reverse=True)
    expected = trained.set_index("item_id")["rating"].to_dict() | {first["item_id"]: 1.0}
    assert {r["item_id"]: r["rating"] for r in every} == pytest.approx(expected)
    assert app.get("/users/nobody/ratings").status_code == 404


def test_a_forgotten_user_is_answered_like_an_unknown_one(app, store_url, ids):
    users, items = ids
    user = users[5]
    app.post("/events", json={"events": [{"user_id": user, "item_id": items[0], "rating": 4}]})
    forgotten = app.delete(f"/users/{user}")
    assert forgotten.status_code == 200
    assert forgotten.json() == {"user_id": user, "events_deleted": 1}
    assert app.get(f"/recommend/{user}").json()["source"] == "popular"
    pair = {"instances": [{"user_id": user, "item_id": items[0]}]}
    assert app.post("/predict", json=pair).status_code == 404
    assert app.get(f"/users/{user}/ratings").status_code == 404
    assert app.delete(f"/users/{user}").status_code == 404
    assert rows_in(store_url) == [("forget", user, None, None)]  # their ratings are gone


def test_with_a_write_token_writes_and_histories_need_it_and_reads_do_not(models_dir, ids):
    users, items = ids
    event = {"events": [{"user_id": users[0], "item_id": items[0], "rating": 4}]}
    with make_client(models_dir=models_dir, model_name=MODEL_NAME, write_token="w") as c:
        refused = c.post("/events", json=event)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        # The token is checked before the body is read: a bad body still answers 401.
        assert c.post("/events", json={"nonsense": 1}).status_code == 401
        assert c.put("/items/x", json={}).status_code == 401
        assert c.delete(f"/users/{users[0]}").status_code == 401
        auth = {"Authorization": "Bearer w"}
        assert c.post("/events", json=event, headers=auth).status_code == 200
        assert c.get(f"/recommend/{users[0]}").status_code == 200
        # A rating history is personal data: with the write token the only credential, it
        # takes the token too.
        assert c.get(f"/users/{users[0]}/ratings").status_code == 401
        assert c.get(f"/users/{users[0]}/ratings", headers=auth).status_code == 200


def test_events_outlive_the_process_and_reach_other_workers(models_dir, store_url, ids):
    users, _ = ids
    user = users[6]
    settings = {"models_dir": models_dir, "model_name": MODEL_NAME, "store_url": store_url}
    with make_client(**settings, sync_seconds=0.1) as other, make_client(**settings) as writer:
        top = recommended(writer, user, n=3)
        assert recommended(other, user, n=3) == top
        events = [{"user_id": user, "item_id": item, "rating": 4} for item in top]
        assert writer.post("/events", json={"events": events}).status_code == 200
        waited = wait_for(lambda: not set(top) & set(recommended(other, user, n=3)), 5)
        assert waited < 2
        assert other.get("/ready").json()["store"]["applied_through"] == 3
        # The writer applied its own writes at once; its poller then moves its cursor past them.
        wait_for(lambda: writer.get("/ready").json()["store"]["applied_through"] == 3, 5)
    with make_client(**settings) as restarted:  # a new process on the same store
        assert not set(top) & set(recommended(restarted, user))


def test_metrics_count_events_and_commits(app, ids):
    from tests.helpers import sample

    users, items = ids
    events = [{"user_id": users[0], "item_id": i, "rating": 3, "event_id": i} for i in items[:4]]
    app.post("/events", json={"events": events})
    app.post("/events", json={"events": events[:1]})
    text_ = app.get("/metrics").text
    assert sample(text_, "recsys_events_total", outcome="accepted") == 4
    assert sample(text_, "recsys_events_total", outcome="duplicate") == 1
    assert sample(text_, "recsys_store_commit_events_sum") == 5
    assert sample(text_, "recsys_store_up") == 1
    assert 0 < sample(text_, "recsys_store_last_sync_timestamp_seconds") <= time.time()
    assert "\nrecsys_fold_in_pending_users 0.0\n" in text_


def test_popularity_counts_training_raters_once(app, ids, tiny_data):
    """A user re-rating an item they rated in training adds no rater."""
    users, _ = ids
    trained = tiny_data.ratings[tiny_data.ratings["user_id"] == users[7]]
    item = trained["item_id"].iloc[0]
    counts = tiny_data.ratings["item_id"].value_counts()
    live = served_view(app)
    col = live.loaded.item_index[item]
    assert live.popularity[col] == counts[item]
    app.post("/events", json={"events": [{"user_id": users[7], "item_id": item, "rating": 2}]})
    assert live.popularity[col] == counts[item]
    np.testing.assert_array_equal(
        live.popularity[[live.loaded.item_index[i] for i in counts.index]], counts.values
    )


@pytest.mark.integration
def test_on_postgresql_workers_share_the_store_and_writes_fail_cleanly_while_it_is_down(
    models_dir, postgres, ids
):
    users, items = ids
    url = postgres.new_database()
    settings = {"models_dir": models_dir, "model_name": MODEL_NAME, "store_url": url}
    with make_client(**settings, sync_seconds=0.1) as a, make_client(**settings) as b:
        user = users[8]
        top = recommended(a, user, n=2)
        events = {"events": [{"user_id": user, "item_id": i, "rating": 4} for i in top]}
        stored = b.post("/events", json=events).json()
        # (Attributed to a's answer when a had written its impression by then: a's business.)
        assert (stored["accepted"], stored["duplicates"]) == (2, 0)
        wait_for(lambda: not set(top) & set(recommended(a, user, n=2)), 5)
        postgres.stop()
        try:
            down = b.post(
                "/events", json={"events": [{"user_id": user, "item_id": items[9], "rating": 3}]}
            )
            assert down.status_code == 503
            assert down.json()["detail"].startswith("event store postgresql+psycopg://postgres@")
            assert "unavailable" in down.json()["detail"]
            assert b.get(f"/recommend/{user}").status_code == 200  # reads keep serving
            assert b.get("/ready").json()["store"]["status"] == "unavailable"
        finally:
            postgres.resume()
        again = b.post(
            "/events", json={"events": [{"user_id": user, "item_id": items[9], "rating": 3}]}
        )
        assert again.status_code == 200
        assert b.get("/ready").json()["store"]["status"] == "ok"


@pytest.mark.integration
def test_on_sqlite_a_read_only_store_fails_writes_cleanly_and_recovers_by_itself(
    app, store_url, ids
):
    """Read-only as root: file permissions do not stop root, the immutable attribute does
    (chattr +i, also through file descriptors already open)."""
    import shutil
    import subprocess
    from pathlib import Path

    if shutil.which("chattr") is None:
        pytest.skip("chattr is missing: the read-only SQLite store is NOT TESTED")
    users, items = ids
    user = users[9]
    event = {"events": [{"user_id": user, "item_id": items[3], "rating": 4}]}
    assert app.post("/events", json=event).status_code == 200
    database = Path(store_url.removeprefix("sqlite:///"))
    # The database and its WAL, not the -shm file: SQLite maps that into memory, and a write to
    # an immutable mapping is a SIGBUS, not an error.
    files = [str(p) for p in (database, database.with_name(database.name + "-wal")) if p.exists()]
    if subprocess.run(["chattr", "+i", *files], capture_output=True).returncode != 0:
        pytest.skip("this file system has no immutable attribute: NOT TESTED")
    try:
        down = app.post(
            "/events", json={"events": [{"user_id": user, "item_id": items[4], "rating": 2}]}
        )
        assert down.status_code == 503, down.text
        assert down.json()["detail"].startswith("event store sqlite:events.sqlite3")
        assert app.get(f"/recommend/{user}").status_code == 200  # reads keep serving
        assert app.get("/ready").json()["store"]["status"] == "unavailable"
    finally:
        subprocess.run(["chattr", "-i", *files], check=True)
    again = app.post(
        "/events", json={"events": [{"user_id": user, "item_id": items[4], "rating": 2}]}
    )
    assert again.status_code == 200 and again.json()["accepted"] == 1
    assert app.get("/ready").json()["store"]["status"] == "ok"
    assert [r[2:] for r in rows_in(store_url)] == [(items[3], 4.0), (items[4], 2.0)]


def test_the_schema_states_the_served_models_rating_scale_and_the_event_limit(app):
    schemas = app.get("/openapi.json").json()["components"]["schemas"]
    rating = schemas["Event"]["properties"]["rating"]
    assert (rating["minimum"], rating["maximum"]) == (1.0, 5.0)
    assert schemas["EventsRequest"]["properties"]["events"]["maxItems"] == 10_000
