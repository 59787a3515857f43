"""The HTTP API on a real exported version, through the real app and its lifespan."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import MODEL_NAME, make_client


@pytest.fixture(scope="module")
def exported(version_dir):
    """The exported arrays, read independently of the service."""
    load = lambda name: np.load(version_dir / name)  # noqa: E731
    return {
        "manifest": json.loads((version_dir / "manifest.json").read_text()),
        "users": json.loads((version_dir / "user_ids.json").read_text()),
        "items": json.loads((version_dir / "item_ids.json").read_text()),
        "meta": json.loads((version_dir / "items.json").read_text()),
        **{
            n: load(f"{n}.npy")
            for n in (
                "user_factors",
                "item_factors",
                "user_bias",
                "item_bias",
                "seen_indptr",
                "seen_indices",
            )
        },
    }


def brute_force_top(exported, user: str, n: int):
    """Full sort of every unseen item by predicted rating: the reference for /recommend."""
    u = exported["users"].index(user)
    m = exported["manifest"]
    scores = (
        m["global_mean"]
        + exported["user_bias"][u]
        + exported["item_bias"]
        + exported["item_factors"] @ exported["user_factors"][u]
    )
    seen = exported["seen_indices"][exported["seen_indptr"][u] : exported["seen_indptr"][u + 1]]
    order = [i for i in np.argsort(-scores, kind="stable") if i not in set(seen)]
    return [(exported["items"][i], float(scores[i])) for i in order[:n]], seen


def models_dir_of(client):
    settings = client.app.state.service.settings
    return Path(settings.models_dir) / settings.model_name


def test_health_ready_and_models(client):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {
        "status": "ready",
        "model": {"name": MODEL_NAME, "version": 1},
        "store": {
            "status": "ok",
            "url": "sqlite:events.sqlite3",
            "id": client.app.state.service.events.store.identity.id,
            "applied_through": 0,
            "error": None,
        },
        "refused": {},
        "fold_in": [{"version": 1, "pending": 0, "folded": 0}],
        "problems": [],
    }
    info = client.get("/models").json()
    assert (info["name"], info["version"], info["kind"], info["factors"]) == (
        MODEL_NAME,
        1,
        "mf_bias",
        8,
    )
    assert set(info["metrics"]) == {"validation", "test"}
    # The training curves the manifest recorded (the session's model: no retrieval vectors).
    manifest = json.loads((models_dir_of(client) / "1" / "manifest.json").read_text())
    assert info["curves"] == {"rating": manifest["training"]["history"]}
    assert len(info["curves"]["rating"]["loss"]) == manifest["training"]["epochs_run"]
    assert info["versions_on_disk"] == [1]


def test_predict_equals_saved_model_and_factor_maths(client, exported, version_dir):
    users, items = exported["users"][:5] * 2, exported["items"][:10]
    body = {"instances": [{"user_id": u, "item_id": i} for u, i in zip(users, items, strict=True)]}
    response = client.post("/predict", json=body)
    assert response.status_code == 200
    got = np.array(response.json()["predictions"])
    assert response.json()["model"] == {"name": MODEL_NAME, "version": 1}
    signature = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    direct = signature(user_id=tf.constant(users), item_id=tf.constant(items))["rating"].numpy()
    np.testing.assert_allclose(got, direct, atol=1e-4)
    u = [exported["users"].index(x) for x in users]
    i = [exported["items"].index(x) for x in items]
    maths = (
        exported["manifest"]["global_mean"]
        + exported["user_bias"][u]
        + exported["item_bias"][i]
        + np.sum(exported["user_factors"][u] * exported["item_factors"][i], axis=1)
    )
    np.testing.assert_allclose(got, np.clip(maths, 1, 5), atol=1e-4)


def test_integer_and_string_ids_are_the_same(client, exported):
    user, item = exported["users"][0], exported["items"][0]
    assert user.isdigit() and item.isdigit()
    as_int = client.post(
        "/predict", json={"instances": [{"user_id": int(user), "item_id": int(item)}]}
    )
    as_str = client.post("/predict", json={"instances": [{"user_id": user, "item_id": item}]})
    # JSON Schema's integer includes 196.0 (some JSON encoders write every number that way)
    as_float = client.post(
        "/predict", json={"instances": [{"user_id": float(user), "item_id": float(item)}]}
    )
    assert as_int.status_code == as_str.status_code == as_float.status_code == 200
    assert as_int.json() == as_str.json() == as_float.json()


@pytest.mark.parametrize("too_big", [2**53, -(2**53), 1e300, 10**400])
def test_integer_ids_beyond_what_json_carries_exactly_are_refused(client, too_big):
    body = f'{{"instances": [{{"user_id": {too_big}, "item_id": "1"}}]}}'
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    (detail, *_) = response.json()["detail"]
    assert detail["loc"][:4] == ["body", "instances", 0, "user_id"]


def test_predict_unknown_ids_is_404_naming_them_and_predicts_nothing(client, exported):
    body = {
        "instances": [
            {"user_id": exported["users"][0], "item_id": exported["items"][0]},
            {"user_id": "ghost", "item_id": "9999"},
            {"user_id": "ghost", "item_id": exported["items"][1]},
        ]
    }
    response = client.post("/predict", json=body)
    assert response.status_code == 404
    assert response.json() == {
        "detail": "1 unknown user_id: 'ghost'; 1 unknown item_id: '9999'",
        "unknown_user_ids": ["ghost"],
        "unknown_item_ids": ["9999"],
    }


@pytest.mark.parametrize(
    "body, field",
    [
        ({"instances": []}, ["body", "instances"]),
        ({}, ["body", "instances"]),
        ({"instances": [{"user_id": 1}]}, ["body", "instances", 0, "item_id"]),
        ({"instances": [{"user_id": True, "item_id": 1}]}, ["body", "instances", 0, "user_id"]),
        ({"instances": [{"user_id": 1.5, "item_id": 1}]}, ["body", "instances", 0, "user_id"]),
        ({"instances": [{"user_id": "", "item_id": 1}]}, ["body", "instances", 0, "user_id"]),
    ],
)
def test_predict_bad_bodies_are_422_naming_the_field(client, body, field):
    response = client.post("/predict", json=body)
    assert response.status_code == 422
    assert field in [e["loc"][: len(field)] for e in response.json()["detail"]]


def test_predict_too_many_instances_is_422_naming_the_field(models_dir, exported):
    instance = {"user_id": exported["users"][0], "item_id": exported["items"][0]}
    with make_client(models_dir=models_dir, model_name=MODEL_NAME, max_predict_instances=3) as c:
        assert c.post("/predict", json={"instances": [instance] * 3}).status_code == 200
        response = c.post("/predict", json={"instances": [instance] * 4})
        schema = c.get("/openapi.json").json()["components"]["schemas"]["PredictRequest"]
    assert response.status_code == 422
    (detail,) = response.json()["detail"]
    assert detail["loc"] == ["body", "instances"]
    assert detail["msg"] == "List should have at most 3 items, not 4"
    assert schema["properties"]["instances"]["maxItems"] == 3  # the limit is in the schema


@pytest.mark.parametrize("user_index", [0, 7, 31])
def test_recommend_equals_brute_force_and_excludes_seen(client, exported, user_index):
    user = exported["users"][user_index]
    response = client.get(f"/recommend/{user}", params={"n": 5})
    assert response.status_code == 200
    body = response.json()
    expected, seen = brute_force_top(exported, user, 5)
    assert [i["item_id"] for i in body["items"]] == [item for item, _ in expected]
    np.testing.assert_allclose(
        [i["score"] for i in body["items"]], [s for _, s in expected], atol=1e-4
    )
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert not {i["item_id"] for i in body["items"]} & {exported["items"][s] for s in seen}
    assert body["user_id"] == user and body["model"] == {"name": MODEL_NAME, "version": 1}


def test_recommend_carries_titles_and_genres(client, exported):
    user = exported["users"][0]
    first = client.get(f"/recommend/{user}", params={"n": 1}).json()["items"][0]
    meta = exported["meta"][exported["items"].index(first["item_id"])]
    assert (first["title"], first["genres"]) == (meta["title"], meta["genres"])
    assert first["title"].startswith("Movie ")


def test_recommend_never_pads_beyond_the_unseen_items(client, exported):
    # The user with the most ratings: asking for everything returns exactly the unseen items.
    counts = np.diff(exported["seen_indptr"])
    u = int(np.argmax(counts))
    unseen = len(exported["items"]) - int(counts[u])
    body = client.get(f"/recommend/{exported['users'][u]}", params={"n": 20}).json()
    assert len(body["items"]) == min(20, unseen)
    everything = client.get(
        f"/recommend/{exported['users'][u]}", params={"n": 20, "exclude_seen": False}
    ).json()
    assert len(everything["items"]) == 20


def test_recommend_errors(client):
    strict = client.get("/recommend/ghost", params={"fallback": "false"})
    assert strict.status_code == 404 and strict.json() == {"detail": "unknown user_id 'ghost'"}
    for n, bound in (
        ("0", "greater than or equal to 1"),
        ("21", "less than or equal to 20"),
        ("-3", "greater than or equal to 1"),
    ):
        response = client.get("/recommend/1", params={"n": n})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", "n"]
        assert bound in response.json()["detail"][0]["msg"]
    assert client.get("/recommend/1", params={"n": "ten"}).status_code == 422


def test_not_ready_without_a_model(tmp_path):
    with make_client(models_dir=tmp_path, model_name="none") as c:
        assert c.get("/health").status_code == 200
        assert c.get("/ready").status_code == 503
        response = c.get("/recommend/1")
        assert response.status_code == 503
        assert "no model loaded" in response.json()["detail"]
        instance = {"user_id": 1, "item_id": 1}
        assert c.post("/predict", json={"instances": [instance]}).status_code == 503


def test_cors_is_off_by_default_and_on_when_configured(client, models_dir):
    headers = {"Origin": "http://shop.example", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in client.options("/predict", headers=headers).headers
    with make_client(
        models_dir=models_dir, model_name=MODEL_NAME, cors_origins="http://shop.example"
    ) as c:
        response = c.options("/predict", headers=headers)
    assert response.headers["access-control-allow-origin"] == "http://shop.example"
