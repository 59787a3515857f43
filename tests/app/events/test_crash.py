"""kill -9 while 32 connections write: after a restart every acknowledged event is in the store
exactly once, and the SQLite file passes its integrity check."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.helpers import MODEL_NAME, ROOT, free_port, fresh_store_url, wait_for

pytestmark = pytest.mark.integration


def start(models_dir, store_url: str, port: int, log) -> subprocess.Popen:
    env = {
        **os.environ,
        "RECSYS_MODELS_DIR": str(models_dir),
        "RECSYS_MODEL_NAME": MODEL_NAME,
        "RECSYS_STORE_URL": store_url,
        "RECSYS_PORT": str(port),
        "RECSYS_ACCESS_LOG": "false",
        "RECSYS_POLL_SECONDS": "0",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=log, stderr=log
    )


def ready(base: str) -> bool:
    try:
        return httpx.get(base + "/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_every_acknowledged_event_survives_a_kill_9_exactly_once(models_dir, version_dir, tmp_path):
    items = json.loads((version_dir / "item_ids.json").read_text())
    store_url, port = fresh_store_url(), free_port()
    base = f"http://127.0.0.1:{port}"
    acked: list[str] = []
    stop = threading.Event()

    def writer(k: int) -> None:
        with httpx.Client(base_url=base, timeout=5) as client:
            n = 0
            while not stop.is_set():
                key = f"w{k}-{n}"
                event = {"user_id": f"crash-{k}", "item_id": items[n % len(items)], "rating": 3,
                         "event_id": key}  # fmt: skip
                try:
                    if client.post("/events", json={"events": [event]}).status_code == 200:
                        acked.append(key)
                except httpx.HTTPError:
                    pass  # the server died under us: not acknowledged
                n += 1

    with open(tmp_path / "server.log", "w") as log:
        server = start(models_dir, store_url, port, log)
        try:
            wait_for(lambda: ready(base), 60)
            threads = [threading.Thread(target=writer, args=(k,)) for k in range(32)]
            for t in threads:
                t.start()
            wait_for(lambda: len(acked) > 300, 30)
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=10)
            time.sleep(0.5)
            stop.set()
            for t in threads:
                t.join()
            restarted = start(models_dir, store_url, port, log)
            try:
                wait_for(lambda: ready(base), 60)
                assert httpx.get(base + "/ready").json()["store"]["status"] == "ok"
            finally:
                restarted.terminate()
                restarted.wait(timeout=30)
        finally:
            if server.poll() is None:
                server.kill()
    engine = create_engine(store_url)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        keys = [r[0] for r in conn.execute(text("SELECT event_id FROM log WHERE kind = 'rating'"))]
    assert len(keys) == len(set(keys))  # never twice
    missing = set(acked) - set(keys)
    assert not missing, f"{len(missing)} acknowledged events lost"
    assert len(acked) > 300
