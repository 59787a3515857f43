"""Per-client rate limits: a token bucket per API key (or address), 429 with Retry-After over
it, nothing stored, counted in /metrics; reads unlimited unless RECSYS_READ_RATE is set."""

from __future__ import annotations

import pytest

from app.errors import RateLimited
from app.quotas import Quota, is_write
from tests.helpers import MODEL_NAME, make_client, sample


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_refills_at_its_rate_up_to_its_burst():
    clock = Clock()
    quota = Quota(rate=10, burst=20, clock=clock)
    quota.take("a", 20)  # the whole burst at once
    with pytest.raises(RateLimited) as refused:
        quota.take("a", 5)
    assert refused.value.retry_after == 1  # 5 tokens at 10/s: half a second, rounded up
    quota.take("b", 20)  # another client: a bucket of its own
    clock.now = 0.5
    quota.take("a", 5)
    clock.now = 100.0
    quota.take("a", 20)  # refilled to the burst, not beyond
    with pytest.raises(RateLimited):
        quota.take("a", 1)


def test_a_request_over_the_burst_waits_for_a_full_bucket_and_leaves_debt():
    clock = Clock()
    quota = Quota(rate=100, burst=50, clock=clock)
    quota.take("a", 500)  # a full bucket lets it through
    clock.now = 1.0  # 100 tokens back: still 350 short of the debt being paid
    with pytest.raises(RateLimited) as refused:
        quota.take("a", 1)
    assert refused.value.retry_after == 4


def test_writes_are_told_from_reads():
    assert is_write({"method": "POST", "path": "/events"})
    assert is_write({"method": "PUT", "path": "/items/tt1"})
    assert is_write({"method": "DELETE", "path": "/users/u1"})
    assert not is_write({"method": "GET", "path": "/users/u1/ratings"})
    assert not is_write({"method": "POST", "path": "/recommend"})


def test_over_the_write_rate_a_client_gets_429_and_nothing_is_stored(models_dir):
    with make_client(models_dir=models_dir, model_name=MODEL_NAME, write_rate=0.01,
                     write_burst=3, api_key="alice,bob") as c:  # fmt: skip
        user = next(iter(c.app.state.service.versions.served.loaded.user_index))
        alice, bob = {"X-API-Key": "alice"}, {"X-API-Key": "bob"}

        def post(n, headers):
            events = [{"user_id": user, "item_id": str(i), "rating": 4} for i in range(1, n + 1)]
            return c.post("/events", json={"events": events}, headers=headers)

        assert post(3, alice).json()["accepted"] == 3
        refused = post(1, alice)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) == refused.json()["retry_after"] >= 99
        assert "rate limit" in refused.json()["detail"]
        assert c.put("/items/x", json={"title": "X"}, headers=alice).status_code == 429
        assert post(2, bob).status_code == 200  # bob has a bucket of his own
        assert c.get(f"/recommend/{user}", headers=alice).status_code == 200  # reads: no limit
        log = c.get(f"/users/{user}/ratings", headers=bob).json()
        assert log["total"] > 0
        metrics = c.get("/metrics").text
        assert sample(metrics, "recsys_rate_limited_total", kind="write") == 2
        assert sample(metrics, "recsys_events_total", outcome="accepted") == 5


def test_a_read_rate_holds_reads_back_but_never_the_probes(models_dir):
    with make_client(models_dir=models_dir, model_name=MODEL_NAME, read_rate=0.01,
                     read_burst=2) as c:  # fmt: skip
        assert c.get("/popular").status_code == 200
        assert c.get("/popular").status_code == 200
        held = c.get("/popular")
        assert held.status_code == 429 and "retry-after" in held.headers
        for path in ("/health", "/ready", "/metrics", "/"):
            assert c.get(path).status_code == 200
        assert sample(c.get("/metrics").text, "recsys_rate_limited_total", kind="read") == 1
