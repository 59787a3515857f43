"""POST /recommend: many users in one call, equal to calling GET /recommend/{user} for each."""

from __future__ import annotations

import json

import pytest

from app.ranking import recommend as recommender
from tests.helpers import MODEL_NAME, make_client


@pytest.fixture(scope="module")
def users(version_dir) -> list[str]:
    return json.loads((version_dir / "user_ids.json").read_text())


@pytest.mark.parametrize("exclude_seen", [True, False])
@pytest.mark.parametrize("by", ["default", "rating"])
def test_batch_equals_single_calls_in_request_order(client, users, exclude_seen, by, monkeypatch):
    monkeypatch.setattr(recommender, "BLOCK_USERS", 7)  # several blocks, a partial last one
    asked = list(reversed(users)) + users[:3]  # every user, a repeat or three
    body = {"user_ids": asked, "n": 20, "exclude_seen": exclude_seen, "by": by}
    response = client.post("/recommend", json=body)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["user_id"] for r in results] == asked
    for result in results:
        single = client.get(
            f"/recommend/{result['user_id']}",
            params={"n": 20, "exclude_seen": exclude_seen, "by": by},
        ).json()
        assert [i["item_id"] for i in result["items"]] == [i["item_id"] for i in single["items"]]
        assert [i["score"] for i in result["items"]] == pytest.approx(
            [i["score"] for i in single["items"]], abs=1e-5
        )
        assert result["items"][0]["title"] == single["items"][0]["title"]
    # the heaviest raters have fewer than 20 unseen items: never padded with seen ones
    if exclude_seen:
        assert min(len(r["items"]) for r in results) < 20
    assert response.json()["model"] == {"name": MODEL_NAME, "version": 1}


def test_integer_ids_and_defaults(client, users):
    numeric = next(u for u in users if u.isdigit())
    body = client.post("/recommend", json={"user_ids": [int(numeric)]}).json()
    assert body["results"][0]["user_id"] == numeric and len(body["results"][0]["items"]) == 10


def test_unknown_users_are_404_naming_them_all(client, users):
    body = {"user_ids": [users[0], "ghost", "phantom"], "fallback": False}
    response = client.post("/recommend", json=body)
    assert response.status_code == 404
    assert response.json() == {
        "detail": "2 unknown user_id: 'ghost', 'phantom'",
        "unknown_user_ids": ["ghost", "phantom"],
        "unknown_item_ids": [],
    }


@pytest.mark.parametrize(
    "body, loc, message",
    [
        ({"user_ids": []}, ["body", "user_ids"], "at least 1 item"),
        ({"user_ids": ["1"], "n": 0}, ["body", "n"], "greater than or equal to 1"),
        ({"user_ids": ["1"], "n": 21}, ["body", "n"], "less than or equal to 20"),
        ({"user_ids": ["1"], "by": "popularity"}, ["body", "by"], "'default' or 'rating'"),
        ({"user_ids": [True]}, ["body", "user_ids", 0], "string"),
        ({"user_ids": ["1"], "extra": 1}, ["body", "extra"], "Extra inputs"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(client, body, loc, message):
    response = client.post("/recommend", json=body)
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == loc and message in detail["msg"]


def test_too_many_users_is_422_naming_the_field(models_dir, users):
    with make_client(models_dir=models_dir, model_name=MODEL_NAME, max_batch_users=3) as c:
        assert c.post("/recommend", json={"user_ids": users[:3]}).status_code == 200
        response = c.post("/recommend", json={"user_ids": users[:4]})
        schema = c.get("/openapi.json").json()["components"]["schemas"]
    assert response.status_code == 422
    (detail,) = response.json()["detail"]
    assert detail["loc"] == ["body", "user_ids"]
    assert detail["msg"] == "List should have at most 3 items, not 4"
    assert schema["RecommendBatchRequest"]["properties"]["user_ids"]["maxItems"] == 3
