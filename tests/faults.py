"""What the fault tests (tests/app/events/test_faults.py) and bench/faults.py share: the service
as a real process, a write load from many connections that records what was acknowledged and
what the clients saw, and a reading of the store that says what of it is there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from artifact.eventlog import engine_url
from tests.helpers import ROOT, free_port, wait_for


class Service:
    """`python -m app` serving `models_dir`/`model_name` on a free port, its log in `log`."""

    def __init__(
        self,
        models_dir: Path,
        model_name: str,
        store_url: str,
        log: Path,
        port: int | None = None,
        **settings,
    ):
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "RECSYS_MODELS_DIR": str(models_dir),
            "RECSYS_MODEL_NAME": model_name,
            "RECSYS_STORE_URL": store_url,
            "RECSYS_PORT": str(self.port),
            "RECSYS_ACCESS_LOG": "false",
            "RECSYS_POLL_SECONDS": "0",
            **{f"RECSYS_{k.upper()}": str(v) for k, v in settings.items()},
        }
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> Service:
        with open(self.log, "a") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app"], cwd=ROOT, env=self.env, stdout=out, stderr=out
            )
        wait_for(self.ready, timeout)
        return self

    def ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the service exited:\n{self.log.read_text()[-3000:]}")
        try:
            return httpx.get(self.base + "/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass
class WriteLoad:
    """`connections` threads writing to `bases` (thread k to bases[k % len]) until `stop`: odd
    threads post batches of `batch` events, even ones single events, each event with an id of
    its own (so a retry would be stored once). Writer k's n-th event is user `<prefix>k-<j>`
    rating item `items[n % len(items)]` (j = n // len(items): a user never rates an item
    twice). Records every acknowledged event id and every status the clients saw."""

    bases: list[str]
    items: list[str]
    connections: int = 32
    batch: int = 20
    prefix: str = "w"
    acked: set[str] = field(default_factory=set)
    statuses: Counter = field(default_factory=Counter)
    without_retry_after: int = 0  # 503s and 429s that did not say when to come back
    threads: list[threading.Thread] = field(default_factory=list)
    halt: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> WriteLoad:
        self.threads = [
            threading.Thread(target=self._write, args=(k,), daemon=True)
            for k in range(self.connections)
        ]
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> WriteLoad:
        self.halt.set()
        for thread in self.threads:
            thread.join(timeout=30)
        return self

    def _event(self, k: int, n: int) -> dict:
        user = f"{self.prefix}{k}-{n // len(self.items)}"
        item = self.items[n % len(self.items)]
        return {"user_id": user, "item_id": item, "rating": 3, "event_id": f"{self.prefix}{k}-{n}"}

    def _write(self, k: int) -> None:
        size = self.batch if k % 2 else 1
        with httpx.Client(base_url=self.bases[k % len(self.bases)], timeout=10) as client:
            n = 0
            while not self.halt.is_set():
                events = [self._event(k, n + i) for i in range(size)]
                n += size
                try:
                    answer = client.post("/events", json={"events": events})
                except httpx.HTTPError:
                    with self.lock:
                        self.statuses["no answer"] += 1
                    time.sleep(0.05)  # the server is gone; do not spin
                    continue
                with self.lock:
                    self.statuses[answer.status_code] += 1
                    if answer.status_code == 200:
                        self.acked.update(e["event_id"] for e in events)
                    elif answer.status_code in (429, 503):
                        self.without_retry_after += "retry-after" not in answer.headers
                if answer.status_code != 200:
                    time.sleep(0.05)

    def acked_by_user(self) -> dict[str, set[str]]:
        """user -> the items of their acknowledged events."""
        by_user: dict[str, set[str]] = {}
        for key in self.acked:
            k, n = (int(part) for part in key.removeprefix(self.prefix).split("-"))
            user = f"{self.prefix}{k}-{n // len(self.items)}"
            by_user.setdefault(user, set()).add(self.items[n % len(self.items)])
        return by_user


def stored_event_ids(url: str) -> list[str]:
    """The event ids of every rating in the store's log (a reader of its own)."""
    engine = create_engine(engine_url(url))
    try:
        with engine.connect() as conn:
            return [
                r[0] for r in conn.execute(text("SELECT event_id FROM log WHERE kind = 'rating'"))
            ]
    finally:
        engine.dispose()


def verdict(load: WriteLoad, url: str) -> dict:
    """What the store holds of what the clients were told was stored."""
    stored = stored_event_ids(url)
    return {
        "acknowledged": len(load.acked),
        "found": len(load.acked & set(stored)),
        "lost": len(load.acked - set(stored)),
        "duplicates": len(stored) - len(set(stored)),
        "statuses": dict(load.statuses),
    }
