"""POST /events' raw ASGI path answers exactly what the declared FastAPI route answers, stores
the same rows, takes the plain bodies itself and leaves everything else to FastAPI."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, text

from app import fast_events, routes
from tests.helpers import MODEL_NAME, fresh_store_url, make_client

JSON = {"content-type": "application/json"}


def bodies(users: list[str], items: list[str]) -> list[tuple[bytes, dict[str, str]]]:
    """Request bodies and headers, sent in this order to a fresh store."""
    one = {"user_id": users[0], "item_id": items[0], "rating": 4}
    plain = [
        {"events": [one]},
        {"events": [{**one, "rating": 2.5, "timestamp": 1700000000, "event_id": "e1"}]},
        {"events": [{**one, "event_id": "e1"}]},  # stored before: a duplicate
        {"events": [{**one, "event_id": "e2"}, {**one, "event_id": "e2", "rating": 1}]},
        {"events": [{"user_id": 196, "item_id": float(items[2]), "rating": 3}]},  # numbers as ids
        {"events": [{**one, "user_id": "newcomer", "recommendation_id": "nothing-shown"}]},
        {"events": [{**one, "item_id": items[k], "user_id": f"u{k}"} for k in range(1, 40)]},
    ]
    refused = [
        {"events": []},
        {"events": [{**one, "rating": 9}]},  # off the model's scale
        {"events": [{**one, "item_id": "no-such-item"}]},
        {"events": [{**one, "extra": 1}]},
        {"events": [{**one, "user_id": True}]},
        {"events": [{**one, "user_id": "x" * 300}]},
        {"events": [{**one, "user_id": 2**60}]},
        {"events": [{**one, "rating": "4"}]},  # lax: a numeric string is a number to both
        {"events": [{**one, "timestamp": -1}]},
        {"event": [one]},
        [one],
    ]
    sent = [(json.dumps(b).encode(), JSON) for b in plain + refused]
    single = json.dumps({"events": [one]}).encode()
    nan = b'{"events": [{"user_id": "a", "item_id": "%s", "rating": NaN}]}' % items[0].encode()
    return sent + [
        (single, {}),  # no content type
        (single, {"content-type": "application/json; charset=utf-8"}),
        (single, {"content-type": "text/plain"}),
        (nan, JSON),
        (b'{"events": [', JSON),
        (b"", JSON),
    ]


def exchange(models_dir, sent, **settings) -> tuple[list[tuple[int, bytes]], list[tuple]]:
    """Each body's status and answer on a fresh app and store, and the rows stored."""
    store = fresh_store_url()
    with make_client(
        models_dir=models_dir, model_name=MODEL_NAME, store_url=store, **settings
    ) as client:
        answers = [
            (r.status_code, r.content)
            for r in (client.post("/events", content=body, headers=h) for body, h in sent)
        ]
    with create_engine(store).connect() as conn:
        rows = conn.execute(
            text("SELECT kind, event_id, user_id, item_id, rating FROM log ORDER BY id")
        ).all()
    return answers, [tuple(r) for r in rows]


@pytest.fixture(scope="module")
def sent(version_dir) -> list[tuple[bytes, dict[str, str]]]:
    users = json.loads((version_dir / "user_ids.json").read_text())
    items = json.loads((version_dir / "item_ids.json").read_text())
    return bodies(users, items)


@pytest.mark.parametrize("token", [None, "secret"])
def test_both_paths_answer_the_same_bytes_and_store_the_same_rows(
    models_dir, sent, token, monkeypatch
):
    settings = {} if token is None else {"write_token": token}
    fast, fast_rows = exchange(models_dir, sent, **settings)
    with monkeypatch.context() as patched:
        patched.setattr(fast_events, "plain_json", lambda scope: False)  # all to FastAPI
        declared, declared_rows = exchange(models_dir, sent, **settings)
    for (body, headers), got, expected in zip(sent, fast, declared, strict=True):
        assert got == expected, (body[:80], headers)
    assert fast_rows == declared_rows
    if token is None:
        assert {status for status, _ in fast} == {200, 404, 422}
        # The plain bodies' rows (e1 once, e2 once), the numeric string's and the charset's.
        assert len(fast_rows) == 1 + 1 + 1 + 1 + 1 + 39 + 1 + 1
    else:
        # FastAPI answers a body it cannot parse before it checks the token.
        assert {status for status, _ in fast} == {401, 422} and fast_rows == []


def test_plain_bodies_never_reach_fastapi_and_its_refusals_do(models_dir, sent, monkeypatch):
    reached: list[int] = []
    checked = routes.events.checked  # the raw path holds its own reference to it

    def counting(request, body):
        reached.append(len(body.events))
        return checked(request, body)

    monkeypatch.setattr(routes.events, "checked", counting)
    answers, _ = exchange(models_dir, sent)
    handed_on = [status for status, _ in answers if status != 200]
    # Only a body the route refuses in FastAPI's words after pydantic passed it (off the
    # scale) reaches its `checked`; every 200 and 404 was answered by the raw path.
    assert reached == [1] and 200 not in handed_on
    assert answers[0] == (200, b'{"accepted":1,"duplicates":0,"attributed":0}')


def test_a_token_holder_takes_the_raw_path(models_dir, sent, monkeypatch):
    reached: list[int] = []
    checked = routes.events.checked
    monkeypatch.setattr(routes.events, "checked", lambda r, b: reached.append(1) or checked(r, b))
    body, headers = sent[0]
    with make_client(models_dir=models_dir, model_name=MODEL_NAME, write_token="s") as client:
        ok = client.post("/events", content=body, headers={**headers, "Authorization": "Bearer s"})
        wrong = client.post("/events", content=body, headers={**headers, "Authorization": "x"})
    assert ok.status_code == 200 and ok.json()["accepted"] == 1
    assert wrong.status_code == 401 and reached == []
