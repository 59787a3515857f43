"""RECSYS_API_KEY: every route but the probes, the metrics, the page and the API's description
needs a key, in either header, checked before anything answers (the raw /recommend path too);
user histories need a credential even when only the write token is set."""

from __future__ import annotations

import pytest

from tests.helpers import MODEL_NAME, make_client

KEYS = "k-one,k-two"


@pytest.fixture(scope="module")
def keyed(models_dir):
    settings = {"models_dir": models_dir, "model_name": MODEL_NAME, "api_key": KEYS}
    with make_client(**settings, write_token="w-token", admin_token="a-token") as client:
        yield client


def user_of(client) -> str:
    return next(iter(client.app.state.service.versions.served.loaded.user_index))


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("GET", "/recommend/{user}", None),
        ("GET", "/recommend/{user}?n=3&explain=true", None),
        ("POST", "/recommend", {"user_ids": ["{user}"]}),
        ("POST", "/predict", {"instances": [{"user_id": "{user}", "item_id": "1"}]}),
        ("GET", "/users/{user}/ratings", None),
        ("GET", "/popular", None),
        ("GET", "/items?q=a", None),
        ("GET", "/models", None),
        ("POST", "/events", {"events": [{"user_id": "{user}", "item_id": "1", "rating": 4}]}),
        ("DELETE", "/users/{user}", None),
        ("POST", "/admin/reload", None),
    ],
)
def test_without_a_key_nothing_answers_but_401(keyed, method, path, body):
    user = user_of(keyed)
    url = path.replace("{user}", user)
    payload = None if body is None else _fill(body, user)
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"},
                    {"Authorization": "Basic azpvbmU="}):  # fmt: skip
        answer = keyed.request(method, url, json=payload, headers=headers)
        assert answer.status_code == 401, (url, headers)
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.headers["x-auth-required"] == "api-key"
        assert "API key" in answer.json()["detail"]


def _fill(body, user):
    if isinstance(body, dict):
        return {k: _fill(v, user) for k, v in body.items()}
    if isinstance(body, list):
        return [_fill(v, user) for v in body]
    return body.replace("{user}", user) if isinstance(body, str) else body


def test_either_header_with_any_key_answers(keyed):
    user = user_of(keyed)
    for headers in ({"X-API-Key": "k-one"}, {"Authorization": "Bearer k-two"},
                    {"authorization": "bearer k-one"}):  # fmt: skip
        answer = keyed.get(f"/recommend/{user}?n=2", headers=headers)
        assert answer.status_code == 200 and len(answer.json()["items"]) == 2
    # The write and admin tokens are keys too: who may write may read.
    assert keyed.get("/models", headers={"Authorization": "Bearer w-token"}).status_code == 200
    assert keyed.get("/models", headers={"Authorization": "Bearer a-token"}).status_code == 200
    # A write takes both: the key, and the write token where one is set.
    event = {"events": [{"user_id": user, "item_id": "1", "rating": 4}]}
    assert keyed.post("/events", json=event, headers={"X-API-Key": "k-one"}).status_code == 401
    both = {"X-API-Key": "k-one", "Authorization": "Bearer w-token"}
    assert keyed.post("/events", json=event, headers=both).status_code == 200


def test_the_probes_metrics_page_and_description_need_no_key(keyed):
    for path in ("/health", "/ready", "/metrics", "/", "/static/app.js", "/openapi.json", "/docs"):
        assert keyed.get(path).status_code == 200, path
    schema = keyed.get("/openapi.json").json()
    assert set(schema["components"]["securitySchemes"]) == {"ApiKey", "Bearer"}
    operation = schema["paths"]["/recommend/{user_id}"]["get"]
    assert "401" in operation["responses"] and operation["security"]
    assert "security" not in schema["paths"]["/health"]["get"]


def test_user_histories_need_the_write_token_when_it_is_the_only_credential(models_dir):
    with make_client(models_dir=models_dir, model_name=MODEL_NAME, write_token="w-token") as c:
        user = user_of(c)
        assert c.get(f"/users/{user}/ratings").status_code == 401
        assert (
            c.get(f"/users/{user}/ratings", headers={"Authorization": "Bearer no"}).status_code
            == 401
        )
        mine = c.get(f"/users/{user}/ratings", headers={"Authorization": "Bearer w-token"})
        assert mine.status_code == 200 and mine.json()["total"] > 0
        assert c.get(f"/recommend/{user}").status_code == 200  # reads stay open


def test_with_no_credential_set_everything_is_open_and_start_up_says_so(models_dir, caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="app"):
        with make_client(models_dir=models_dir, model_name=MODEL_NAME) as c:
            assert c.get(f"/users/{user_of(c)}/ratings").status_code == 200
    assert any("no RECSYS_API_KEY: every route answers anyone" in r.getMessage()
               for r in caplog.records)  # fmt: skip
