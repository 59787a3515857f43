"""The client's rules against `httpx.MockTransport`: which calls are retried and how long it
waits, typed errors with the service's fields, and how event batches are cut, retried and
trimmed."""

from __future__ import annotations

import asyncio
import json
import random

import httpx
import pytest

from recsys_client import (
    AsyncClient,
    Client,
    Invalid,
    NotFound,
    Retry,
    Unauthorized,
    Unavailable,
)

ANSWER = {
    "user_id": "196",
    "recommendation_id": "r1",
    "version": 1,
    "items": [{"item_id": "50", "score": 4.5}],
    "source": "model",
    "model": {"name": "movielens", "version": 1},
}
SCHEMA = {"components": {"schemas": {"EventsRequest": {"properties": {"events": {"maxItems": 3}}}}}}


def scripted(*answers):
    """A transport answering each request with the next of `answers` (a status and body, a
    (status, body, headers) triple, or an exception to raise); `seen` holds the requests."""
    queue = list(answers)
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/openapi.json":
            return httpx.Response(200, json=SCHEMA)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body, *headers = answer
        return httpx.Response(status, json=body, headers=headers[0] if headers else None)

    return httpx.MockTransport(handle), seen


def client(transport, waits, **kw):
    retry = Retry(rng=random.Random(0), **kw)
    return Client("http://recsys", transport=transport, retry=retry, sleep=waits.append)


def test_a_read_is_retried_on_503_with_jittered_backoff_then_answers():
    transport, seen = scripted((503, {"detail": "no model"}), (503, {"detail": "no model"}),
                               (200, ANSWER))  # fmt: skip
    waits: list[float] = []
    got = client(transport, waits, base=0.5).recommend(196, n=1)
    assert got.items[0].item_id == "50" and got.recommendation_id == "r1"
    assert len(seen) == 3 and seen[0].url.params["n"] == "1"
    assert len(waits) == 2 and 0 <= waits[0] <= 0.5 and 0 <= waits[1] <= 1.0
    assert waits[0] != waits[1]  # jitter


def test_429_waits_what_retry_after_says():
    limited = (429, {"detail": "slow down", "retry_after": 2}, {"Retry-After": "2"})
    transport, seen = scripted(limited, (200, ANSWER))
    waits: list[float] = []
    client(transport, waits, base=0.1).recommend(196)
    assert len(seen) == 2 and 2.0 <= waits[0] <= 2.1


def test_a_failed_connection_is_retried_for_a_read():
    transport, seen = scripted(httpx.ConnectError("refused"), (200, ANSWER))
    waits: list[float] = []
    assert client(transport, waits).recommend(196).version == 1
    assert len(seen) == 2


def test_attempts_run_out_and_the_last_error_is_raised():
    transport, seen = scripted(*[(503, {"detail": "store down"}, {"Retry-After": "1"})] * 4)
    waits: list[float] = []
    with pytest.raises(Unavailable) as err:
        client(transport, waits, attempts=4).recommend(196)
    assert err.value.status == 503 and err.value.detail == "store down"
    assert err.value.retry_after == 1.0 and len(seen) == 4 and len(waits) == 3


def test_a_call_that_is_not_safe_to_repeat_is_not_retried():
    transport, seen = scripted((503, {"detail": "store down"}), httpx.ConnectError("x"))
    waits: list[float] = []
    c = client(transport, waits)
    with pytest.raises(Unavailable):
        c.forget_user("u1")  # DELETE: a second one may answer 404 for a user the first forgot
    with pytest.raises(Unavailable) as err:
        c.put_experiment("e", "ab", {"control": 1, "treatment": 2})
    assert err.value.status == 0 and "ConnectError" in err.value.detail
    assert len(seen) == 2 and waits == []


@pytest.mark.parametrize(
    "status, body, kind, check",
    [
        (404, {"detail": "unknown ids", "unknown_user_ids": ["x"], "unknown_item_ids": []},
         NotFound, lambda e: e.unknown_user_ids == ["x"]),
        (422, {"detail": [{"loc": ["query", "n"], "type": "greater_than_equal",
                           "msg": "Input should be greater than or equal to 1"}]},
         Invalid, lambda e: e.field == "n" and "n: Input should be" in e.detail),
        (401, {"detail": "missing or wrong API key"}, Unauthorized,
         lambda e: e.detail == "missing or wrong API key"),
    ],
)  # fmt: skip
def test_errors_are_typed_with_the_services_fields(status, body, kind, check):
    transport, _ = scripted((status, body))
    with pytest.raises(kind) as err:
        client(transport, []).recommend("x")
    assert err.value.status == status and check(err.value)


def test_a_request_the_service_would_refuse_is_refused_before_sending():
    transport, seen = scripted()
    with pytest.raises(Invalid) as err:
        client(transport, []).recommend_many([196], n=0)
    assert err.value.field == "n" and seen == []


def events(n):
    return [{"user_id": "u", "item_id": str(i), "rating": 4} for i in range(n)]


def accepted(n, duplicates=0):
    return (200, {"accepted": n, "duplicates": duplicates, "attributed": 0})


def bodies(seen):
    return [json.loads(r.content)["events"] for r in seen if r.url.path == "/events"]


def test_events_go_in_batches_of_the_services_limit_with_progress():
    transport, seen = scripted(accepted(3), accepted(3), accepted(1))
    reports = []
    summary = client(transport, []).send_events(
        iter(events(7)), progress=lambda s: reports.append(s.sent)
    )
    assert [len(b) for b in bodies(seen)] == [3, 3, 1]  # maxItems 3 in the served description
    assert (summary.accepted, summary.batches, reports) == (7, 3, [3, 6, 7])
    ids = [e["event_id"] for b in bodies(seen) for e in b]
    assert len(set(ids)) == 7  # every event given an id


def test_a_retried_batch_carries_the_same_event_ids():
    transport, seen = scripted((503, {"detail": "store down"}, {"Retry-After": "0"}),
                               accepted(0, duplicates=2))  # fmt: skip
    given = [{**e, "event_id": None} for e in events(2)]
    summary = client(transport, []).send_events(given, batch_size=10)
    first, again = bodies(seen)
    assert first == again and all(e["event_id"] for e in first)
    assert summary.duplicates == 2


def test_a_batch_too_large_for_the_body_limit_is_halved():
    transport, seen = scripted((413, {"detail": "too large"}), accepted(2), accepted(2))
    summary = client(transport, []).send_events(events(4), batch_size=4)
    assert [len(b) for b in bodies(seen)] == [4, 2, 2] and summary.accepted == 4


def test_with_skip_invalid_a_refused_event_is_counted_and_the_rest_sent():
    refusal = {"detail": [{"loc": ["body", "events", 1, "rating"], "type": "value_error",
                           "msg": "rating 9 is outside the model's scale 1..5"}]}  # fmt: skip
    bad = {"user_id": "u", "item_id": "x"}  # no rating: refused by the client itself
    transport, seen = scripted((422, refusal), accepted(2))
    summary = client(transport, []).send_events([*events(3), bad], batch_size=10, skip_invalid=True)
    assert [len(b) for b in bodies(seen)] == [3, 2]
    assert [(r.index, r.field) for r in summary.refused] == [(3, "rating"), (1, "rating")]
    assert summary.accepted == 2 and summary.sent == 4
    transport, _ = scripted((422, refusal))
    with pytest.raises(Invalid) as err:
        client(transport, []).send_events(events(3), batch_size=10)
    assert err.value.field == "events.1.rating"


def test_the_async_client_follows_the_same_rules():
    transport, seen = scripted((503, {"detail": "x"}), (200, ANSWER), accepted(3), accepted(1))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def go():
        async with AsyncClient("http://recsys", transport=transport, sleep=sleep) as c:
            top = await c.recommend(196)
            summary = await c.send_events(events(4))
            return top, summary

    top, summary = asyncio.run(go())
    assert top.version == 1 and len(waits) == 1 and summary.batches == 2
    assert [len(b) for b in bodies(seen)] == [3, 1]
