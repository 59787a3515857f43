"""Garbage in, a clear 4xx JSON out: never a 5xx, never internals in the answer."""

from __future__ import annotations

import json

import pytest

from tests.helpers import MODEL_NAME, make_client

INTERNALS = ("Traceback", "/work", "/tmp", "site-packages", ".py", "numpy", "tensorflow")


@pytest.fixture(scope="module")
def ids(version_dir) -> tuple[str, str]:
    users = json.loads((version_dir / "user_ids.json").read_text())
    items = json.loads((version_dir / "item_ids.json").read_text())
    return users[0], items[0]


def assert_clean_4xx(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert "detail" in body
    assert not any(marker in response.text for marker in INTERNALS), response.text
    return body


@pytest.mark.parametrize(
    "content, content_type, status",
    [
        (b'{"instances": [', "application/json", 422),  # malformed JSON
        (b'{"instances": [{"user_id": "\xff\xfe", "item_id": "1"}]}', "application/json", 400),
        (b"instances=1", "application/x-www-form-urlencoded", 422),  # wrong content type
        (b"", "application/json", 422),  # no body
        (b"null", "application/json", 422),
        (b"[]", "application/json", 422),
    ],
)
def test_unparseable_predict_bodies(client, content, content_type, status):
    response = client.post("/predict", content=content, headers={"content-type": content_type})
    assert_clean_4xx(response, status)


@pytest.mark.parametrize(
    "number, status",
    [("NaN", 422), ("Infinity", 422), ("-Infinity", 422), ("1e999", 422), ("9" * 5000, 400)],
)
@pytest.mark.parametrize("path", ["/predict", "/recommend"])
def test_numbers_strict_json_lacks_are_refused(client, path, number, status):
    """Python's json reads NaN, Infinity and 1e999 (as inf); echoing them back in the 422 must
    not fail (it did: a 500). A 5000-digit integer is past Python's int-parsing limit."""
    body = (
        f'{{"instances": [{{"user_id": {number}, "item_id": "1"}}]}}'
        if path == "/predict"
        else f'{{"user_ids": [{number}]}}'
    )
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert_clean_4xx(response, status)


@pytest.mark.parametrize(
    "instance",
    [
        {"user_id": None, "item_id": "1"},
        {"item_id": "1"},
        {"user_id": "1", "item_id": ["1"]},
        {"user_id": 1.5, "item_id": "1"},
        {"user_id": "x" * 129, "item_id": "1"},
        {"user_id": "", "item_id": "1"},
    ],
)
def test_wrong_instances_name_the_field(client, instance):
    body = assert_clean_4xx(client.post("/predict", json={"instances": [instance]}), 422)
    assert body["detail"][0]["loc"][:3] == ["body", "instances", 0]


@pytest.mark.parametrize("weird", ["../../etc/passwd", "a\x00b", "a\nb", "é🎬", "%2e%2e", " "])
def test_odd_ids_are_just_unknown(client, ids, weird):
    _, item = ids
    body = assert_clean_4xx(
        client.post("/predict", json={"instances": [{"user_id": weird, "item_id": item}]}), 404
    )
    assert body["unknown_user_ids"] == [weird]
    strict = {"user_ids": [weird], "fallback": False}
    assert_clean_4xx(client.post("/recommend", json=strict), 404)
    popular = client.post("/recommend", json={"user_ids": [weird]})  # no history: popular items
    assert popular.status_code == 200 and popular.json()["results"][0]["source"] == "popular"


def test_odd_ids_in_the_path(client):
    for path in ("/recommend/%00", "/recommend/..%2F..%2Fetc", "/recommend/" + "x" * 129):
        response = client.get(path, params={"fallback": "false"})
        assert response.status_code in (404, 422)
        assert_clean_4xx(response, response.status_code)


def test_duplicate_instances_are_answered_in_order(client, ids):
    user, item = ids
    body = client.post("/predict", json={"instances": [{"user_id": user, "item_id": item}] * 3})
    assert body.status_code == 200
    predictions = body.json()["predictions"]
    assert len(predictions) == 3 and len(set(predictions)) == 1


@pytest.mark.parametrize("n", ["0", "-1", "1e3", "ten", "99999999999999999999", ""])
def test_bad_n(client, ids, n):
    assert_clean_4xx(client.get(f"/recommend/{ids[0]}", params={"n": n}), 422)


def test_wrong_method_is_405(client):
    assert_clean_4xx(client.get("/predict"), 405)
    assert_clean_4xx(client.delete("/recommend/1"), 405)


def test_oversized_bodies_are_413_before_parsing(models_dir, ids):
    user, item = ids
    big = {"instances": [{"user_id": user, "item_id": item}] * 200}
    with make_client(models_dir=models_dir, model_name=MODEL_NAME, max_body_bytes=2048) as c:
        declared = c.post("/predict", json=big)
        body = assert_clean_4xx(declared, 413)
        assert "over the 2,048-byte limit" in body["detail"]
        assert declared.headers["x-request-id"]

        def chunks():  # no Content-Length: counted as it arrives
            yield b'{"instances": ['
            for _ in range(200):
                yield json.dumps({"user_id": user, "item_id": item}).encode() + b","
            yield b"]}"

        chunked = c.post("/predict", content=chunks(), headers={"content-type": "application/json"})
        assert_clean_4xx(chunked, 413)
        small = {"instances": [{"user_id": user, "item_id": item}]}
        assert c.post("/predict", json=small).status_code == 200  # the limit is not a wall
