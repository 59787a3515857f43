"""Faults, on purpose, each while clients write (bench/faults.py runs them longer and reports the
figures): kill -9 on SQLite and on PostgreSQL, PostgreSQL stopped and its connections
terminated, the disk under the SQLite store full, the served version's directory deleted and
the models directory unreadable, two replicas with one killed mid-batch. Every time: what was
acknowledged is in the store exactly once, and the service recovers without a restart."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import httpx
import pytest
from sqlalchemy import create_engine, text

from artifact.eventlog import engine_url
from tests.faults import Service, WriteLoad, verdict
from tests.helpers import MODEL_NAME, fresh_store_url, make_client, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def items(version_dir) -> list[str]:
    return json.loads((version_dir / "item_ids.json").read_text())


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request):
    if request.param == "sqlite":
        return fresh_store_url()
    return request.getfixturevalue("postgres").new_database()


def wait_acked(load: WriteLoad, more: int, timeout: float = 30) -> None:
    start = len(load.acked)
    wait_for(lambda: len(load.acked) >= start + more, timeout)


def test_every_acknowledged_event_survives_a_kill_9_exactly_once(
    models_dir, items, store_url, tmp_path
):
    service = Service(models_dir, MODEL_NAME, store_url, tmp_path / "server.log").start()
    load = WriteLoad([service.base], items).start()
    try:
        wait_acked(load, 500)
        service.kill9()  # single events and batches of 20 in flight on 32 connections
        time.sleep(0.3)
    finally:
        load.stop()
        service.stop()
    restarted = Service(models_dir, MODEL_NAME, store_url, tmp_path / "server.log").start()
    try:
        assert httpx.get(restarted.base + "/ready").json()["store"]["status"] == "ok"
    finally:
        restarted.stop()
    found = verdict(load, store_url)
    assert found["lost"] == 0 and found["duplicates"] == 0, found
    assert found["acknowledged"] > 500 and "no answer" in found["statuses"]
    if store_url.startswith("sqlite"):
        with create_engine(store_url).connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"


def test_postgresql_stopped_and_its_connections_cut_under_load(
    models_dir, items, postgres, tmp_path
):
    url = postgres.new_database()
    service = Service(models_dir, MODEL_NAME, url, tmp_path / "server.log").start()
    user = next(iter(json.loads((models_dir / MODEL_NAME / "1" / "user_ids.json").read_text())))
    load = WriteLoad([service.base], items, connections=8).start()
    try:
        wait_acked(load, 200)
        postgres.stop()
        try:
            time.sleep(3)
            # Reads keep serving from memory while writes are told to come back.
            assert httpx.get(f"{service.base}/recommend/{user}").status_code == 200
            ready = httpx.get(service.base + "/ready").json()
            assert ready["status"] == "ready" and ready["store"]["status"] == "unavailable"
        finally:
            postgres.resume()
        wait_acked(load, 200)  # recovered without a restart
        with create_engine(engine_url(url)).connect() as conn:  # cut every connection it has
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        wait_acked(load, 200)
    finally:
        load.stop()
        service.stop()
    found = verdict(load, url)
    assert found["lost"] == 0 and found["duplicates"] == 0, found
    assert found["statuses"].get(503, 0) > 0 and load.without_retry_after == 0
    assert set(found["statuses"]) <= {200, 503}, found  # never a 500


def test_a_full_disk_under_the_sqlite_store_answers_503_and_recovers(models_dir, items, tmp_path):
    disk = tmp_path / "small-disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: NOT TESTED ({mounted.stderr!r})")
    url = f"sqlite:///{disk}/events.sqlite3"
    try:
        settings = {"models_dir": models_dir, "model_name": MODEL_NAME, "store_url": url}
        with make_client(**settings, sync_seconds=0.2) as client:
            acked, refused, n = set(), None, 0
            while refused is None and n < 200_000:
                events = [
                    {
                        "user_id": f"disk-{n + i}",
                        "item_id": items[i % len(items)],
                        "rating": 4,
                        "event_id": f"d{n + i}",
                    }  # fmt: skip
                    for i in range(200)
                ]
                n += 200
                answer = client.post("/events", json={"events": events})
                if answer.status_code == 200:
                    acked |= {e["event_id"] for e in events}
                else:
                    refused = answer
            assert refused is not None and refused.status_code == 503
            assert refused.json()["detail"].startswith("event store sqlite:events.sqlite3")
            assert "full" in refused.json()["detail"] and "retry-after" in refused.headers
            assert client.get("/recommend/disk-1").status_code == 200  # reads keep serving
            subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
            again = [{"user_id": "after", "item_id": items[0], "rating": 5, "event_id": "after"}]
            assert client.post("/events", json={"events": again}).status_code == 200
        with create_engine(url).connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            stored = {r[0] for r in conn.execute(text("SELECT event_id FROM log"))}
        assert acked and acked <= stored and "after" in stored
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_deleted_version_and_an_unreadable_models_directory_keep_serving(models_dir, tmp_path):
    root = tmp_path / "models"
    shutil.copytree(models_dir / MODEL_NAME, root / MODEL_NAME)
    user = next(iter(json.loads((root / MODEL_NAME / "1" / "user_ids.json").read_text())))
    with make_client(models_dir=root, model_name=MODEL_NAME) as client:
        shutil.rmtree(root / MODEL_NAME / "1")  # the served version's files, mapped in memory
        assert client.get(f"/recommend/{user}").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 200
        (problem,) = ready.json()["problems"]
        assert problem.startswith("version 1 is served from memory: its directory")
        assert f"{MODEL_NAME}/1 is gone" in problem and str(tmp_path) not in problem
        shutil.rmtree(root / MODEL_NAME)
        (root / MODEL_NAME).write_text("not a directory")  # unreadable, even for root
        problems = client.get("/ready").json()["problems"]
        assert any(p.startswith(f"models directory {MODEL_NAME} cannot be read") for p in problems)
        assert (
            client.post(
                "/predict", json={"instances": [{"user_id": user, "item_id": "1"}]}
            ).status_code
            == 200
        )


def test_two_replicas_on_postgresql_one_killed_mid_batch(models_dir, items, postgres, tmp_path):
    url = postgres.new_database()
    replicas = [
        Service(models_dir, MODEL_NAME, url, tmp_path / f"replica-{k}.log", sync_seconds=0.2)
        for k in range(2)
    ]
    for replica in replicas:
        replica.start()
    load = WriteLoad([r.base for r in replicas], items).start()
    try:
        wait_acked(load, 600)
        replicas[0].kill9()  # its half of the connections had batches in flight
        wait_acked(load, 300)
    finally:
        load.stop()
    survivor = replicas[1]
    try:
        found = verdict(load, url)
        assert found["lost"] == 0 and found["duplicates"] == 0, found
        # The survivor's live state holds every acknowledged event, its own and the dead one's
        # (and maybe more: a batch the dead one committed but never answered).
        expected = load.acked_by_user()

        def holds(user: str, acked: set[str]) -> bool:
            answer = httpx.get(f"{survivor.base}/users/{user}/ratings", params={"limit": 1000})
            return acked <= {r["item_id"] for r in answer.json().get("ratings", [])}

        wait_for(lambda: all(holds(u, acked) for u, acked in expected.items()), 20)
    finally:
        survivor.stop()
    ids = _log_ids(url)
    assert ids == sorted(set(ids))  # one row per id, in order


def _log_ids(url: str) -> list[int]:
    engine = create_engine(engine_url(url))
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(text("SELECT id FROM log ORDER BY id"))]
    finally:
        engine.dispose()
