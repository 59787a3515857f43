"""GET /metrics, request ids and the JSON access log, on a fresh app so the counts are exact."""

from __future__ import annotations

import json
import logging
import os
import re

import pytest

from app.http.observability import AccessLog
from tests.helpers import MODEL_NAME, make_client, sample, wait_for


@pytest.fixture()
def fresh(models_dir):
    with make_client(models_dir=models_dir, model_name=MODEL_NAME) as client:
        yield client


def test_metrics_count_requests_by_route_template_and_status(fresh, version_dir):
    user = json.loads((version_dir / "user_ids.json").read_text())[0]
    item = json.loads((version_dir / "item_ids.json").read_text())[0]
    for _ in range(3):
        assert fresh.get(f"/recommend/{user}").status_code == 200
    assert fresh.get("/recommend/ghost?fallback=false").status_code == 404
    assert fresh.get("/no/such/path").status_code == 404
    body = {"instances": [{"user_id": user, "item_id": item}] * 5}
    assert fresh.post("/predict", json=body).status_code == 200

    response = fresh.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    text = response.text
    route = "/recommend/{user_id}"
    count = "recsys_requests_total"
    assert sample(text, count, method="GET", route=route, status="200") == 3
    assert sample(text, count, method="GET", route=route, status="404") == 1
    assert sample(text, count, method="GET", route="unmatched", status="404") == 1
    assert sample(text, count, method="POST", route="/predict", status="200") == 1
    latency = "recsys_request_duration_seconds_count"
    assert sample(text, latency, method="GET", route=route) == 4
    assert sample(text, "recsys_model_version", name=MODEL_NAME) == 1
    assert sample(text, "recsys_predict_batch_instances_count") == 1
    assert sample(text, "recsys_predict_batch_instances_sum") == 5
    assert sample(text, "recsys_predict_batch_requests_sum") == 1


def test_request_ids_are_echoed_when_safe_and_made_otherwise(fresh):
    given = fresh.get("/health", headers={"X-Request-ID": "abc-123.x"})
    assert given.headers["x-request-id"] == "abc-123.x"
    made = fresh.get("/health")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    unsafe = fresh.get("/health", headers={"X-Request-ID": "a b<script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["x-request-id"])
    errors = fresh.get("/recommend/ghost?fallback=false", headers={"X-Request-ID": "r-404"})
    assert errors.status_code == 404 and errors.headers["x-request-id"] == "r-404"


def access_lines(caplog) -> list[dict]:
    return [
        json.loads(line)
        for r in caplog.records
        if r.name == "app.access"
        for line in r.getMessage().splitlines()
    ]


def test_each_request_writes_one_json_access_line(fresh, caplog):
    with caplog.at_level(logging.INFO, logger="app.access"):
        fresh.get("/recommend/ghost?fallback=false", headers={"X-Request-ID": "trace-7"})
        for n in range(3):
            fresh.get(f"/recommend/{n}", headers={"X-Request-ID": f"plain-{n}"})
        # Written in batches, within AccessLog.FLUSH_SECONDS.
        wait_for(lambda: len(access_lines(caplog)) == 4, timeout=5)
    line, *plain = access_lines(caplog)
    assert line["request_id"] == "trace-7" and line["status"] == 404
    assert line["route"] == "/recommend/{user_id}" and line["path"] == "/recommend/ghost"
    assert line["method"] == "GET" and line["ms"] >= 0 and line["pid"] == os.getpid()
    assert [p["request_id"] for p in plain] == ["plain-0", "plain-1", "plain-2"]
    assert {p["route"] for p in plain} == {"/recommend/{user_id}"}


def test_a_shutdown_writes_the_lines_not_yet_flushed(models_dir, caplog, monkeypatch):
    monkeypatch.setattr(AccessLog, "FLUSH_SECONDS", 3600)
    with caplog.at_level(logging.INFO, logger="app.access"):
        with make_client(models_dir=models_dir, model_name=MODEL_NAME) as c:
            c.get("/health")
            assert access_lines(caplog) == []
        assert [line["path"] for line in access_lines(caplog)] == ["/health"]


def test_the_access_log_can_be_turned_off(models_dir, caplog):
    with make_client(models_dir=models_dir, model_name=MODEL_NAME, access_log=False) as c:
        with caplog.at_level(logging.INFO, logger="app.access"):
            c.get("/health")
    assert not [r for r in caplog.records if r.name == "app.access"]
