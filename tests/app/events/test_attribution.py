"""Every answer an impression, and ratings attributed to them: named by their recommendation id,
or found as the user's most recent impression of the item within the window; a hit counts for
the version that made the answer; a forgotten user's impressions go with them."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from tests.helpers import MODEL_NAME, fresh_store_url, make_client, sample, wait_for


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store_url(request):
    if request.param == "sqlite":
        return fresh_store_url()
    return request.getfixturevalue("postgres").new_database()  # a store of its own per test


@pytest.fixture
def client(models_dir, store_url):
    settings = {"models_dir": models_dir, "model_name": MODEL_NAME, "store_url": store_url}
    with make_client(**settings, attribution_window=3600) as c:
        yield c


def rows(url: str, sql: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).all()
    finally:
        engine.dispose()


def impressions_of(url: str) -> dict[str, tuple]:
    found = rows(url, "SELECT recommendation_id, user_id, route, version, items FROM impressions")
    return {r[0]: r[1:] for r in found}


def rate(client, user, item, rating=5.0, rid=None, **more) -> dict:
    event = {"user_id": user, "item_id": item, "rating": rating, **more}
    if rid is not None:
        event["recommendation_id"] = rid
    answer = client.post("/events", json={"events": [event]})
    assert answer.status_code == 200, answer.text
    return answer.json()


def user_of(client) -> str:
    return next(iter(client.app.state.service.versions.served.loaded.user_index))


def test_every_answer_is_an_impression_with_an_id_of_its_own(client, store_url):
    user = user_of(client)
    answers = {
        "recommend": client.get(f"/recommend/{user}?n=3").json(),
        "recommend-batch": client.post("/recommend", json={"user_ids": [user, "x"], "n": 2}).json()[
            "results"
        ][1],
        "rank": client.post("/rank", json={"user_id": user, "item_ids": ["1", "2", "3"]}).json(),
        "similar": client.get("/similar/1?n=2&user_id=" + user).json(),
        "popular": client.get("/popular?n=2").json(),
    }
    ids = {name: a["recommendation_id"] for name, a in answers.items()}
    assert len(set(ids.values())) == len(ids)  # unique per answer
    assert {a["version"] for a in answers.values()} == {1}
    wait_for(lambda: set(ids.values()) <= set(impressions_of(store_url)), 5)
    stored = impressions_of(store_url)
    shown = [i["item_id"] for i in answers["recommend"]["items"]]
    assert stored[ids["recommend"]] == (
        user,
        "recommend",
        1,
        f'["{shown[0]}","{shown[1]}","{shown[2]}"]',
    )
    assert stored[ids["recommend-batch"]][:2] == ("x", "recommend")
    assert stored[ids["rank"]][1] == "rank" and stored[ids["similar"]][:2] == (user, "similar")
    assert stored[ids["popular"]][:2] == (None, "popular")
    metrics = client.get("/metrics").text
    assert (
        sample(metrics, "recsys_impressions_total", route="recommend", version="1", variant="") == 3
    )


def test_a_rating_naming_an_impression_that_showed_it_is_a_hit(client, store_url):
    user = user_of(client)
    answer = client.get(f"/recommend/{user}?n=3").json()
    rid, item = answer["recommendation_id"], answer["items"][1]["item_id"]
    assert rate(client, user, item, 4.0, rid)["attributed"] == 1
    (hit,) = rows(
        store_url, "SELECT user_id, item_id, position, version, explicit, rating FROM attributions"
    )
    assert hit == (user, item, 1, 1, 1, 4.0)
    # Named, but not shown there: no hit (and no fall back to the window either).
    other = next(
        i for i in ["1", "2", "3", "4", "5"] if i not in {x["item_id"] for x in answer["items"]}
    )
    assert rate(client, user, other, 4.0, rid)["attributed"] == 0
    # Another user's answer: not theirs to claim.
    assert rate(client, "someone-else", answer["items"][0]["item_id"], 5.0, rid)["attributed"] == 0
    metrics = client.get("/metrics").text
    assert sample(metrics, "recsys_hits_total", version="1", variant="") == 1


def test_a_rating_naming_nothing_answers_the_most_recent_impression_of_the_item(client, store_url):
    user = "window-user"
    first = client.get(f"/recommend/{user}?n=5").json()  # popular items for a new user
    time.sleep(0.01)
    second = client.get(f"/recommend/{user}?n=5").json()
    common = [
        i["item_id"]
        for i in second["items"]
        if i["item_id"] in {x["item_id"] for x in first["items"]}
    ]
    assert common
    assert rate(client, user, common[0])["attributed"] == 1
    (impression,) = rows(
        store_url,
        "SELECT i.recommendation_id FROM attributions a "
        "JOIN impressions i ON i.id = a.impression_id",
    )
    assert impression[0] == second["recommendation_id"]
    assert rows(store_url, "SELECT explicit FROM attributions")[0][0] in (0, False)
    never_shown = next(
        i
        for i in map(str, range(1, 41))
        if i not in {x["item_id"] for x in second["items"]} | {x["item_id"] for x in first["items"]}
    )
    assert rate(client, user, never_shown)["attributed"] == 0


def test_outside_the_window_a_rating_is_not_attributed(models_dir):
    with make_client(models_dir=models_dir, model_name=MODEL_NAME, attribution_window="1s") as c:
        answer = c.get("/recommend/late-user?n=3").json()
        time.sleep(1.5)
        assert rate(c, "late-user", answer["items"][0]["item_id"])["attributed"] == 0
        # Named explicitly, it still counts: the caller says what it answers.
        named = rate(c, "late-user", answer["items"][1]["item_id"], rid=answer["recommendation_id"])
        assert named["attributed"] == 1


def test_a_forgotten_user_leaves_no_impression_or_attribution(client, store_url):
    user = "leaving-user"
    answer = client.get(f"/recommend/{user}?n=3").json()
    rate(client, user, answer["items"][0]["item_id"], rid=answer["recommendation_id"])
    assert rows(store_url, f"SELECT count(*) FROM impressions WHERE user_id = '{user}'")[0][0] == 1
    assert client.delete(f"/users/{user}").status_code == 200
    assert rows(store_url, f"SELECT count(*) FROM impressions WHERE user_id = '{user}'")[0][0] == 0
    assert rows(store_url, f"SELECT count(*) FROM attributions WHERE user_id = '{user}'")[0][0] == 0


@pytest.mark.parametrize(
    "rid, where",
    [("x" * 65, "recommendation_id"), (123, "recommendation_id"), ("", "recommendation_id")],
)
def test_a_bad_recommendation_id_is_a_422_naming_it_and_stores_nothing(
    client, store_url, rid, where
):
    event = {"user_id": "u", "item_id": "1", "rating": 4, "recommendation_id": rid}
    answer = client.post("/events", json={"events": [event]})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "events", 0, where]
    assert rows(store_url, "SELECT count(*) FROM log")[0][0] == 0
