"""Several uvicorn workers behave as one service: a scrape of /metrics sums every worker's
counts (and keeps a restarted worker's), and an admin's pin reaches every worker and survives a
restart. The real thing: `python -m app` with two workers in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.helpers import ROOT, free_port, sample, two_versions_of, wait_for

pytestmark = pytest.mark.integration
AUTH = {"Authorization": "Bearer s3cret"}


@contextmanager
def serving(models: Path, tmp_path: Path, workers: int) -> Iterator[tuple[str, Path]]:
    """(base url, log file) of `python -m app` with `workers` workers, stopped at the end."""
    port = free_port()
    env = {
        **os.environ,
        "RECSYS_MODELS_DIR": str(models),
        "RECSYS_MODEL_NAME": "tiny",
        "RECSYS_PORT": str(port),
        "RECSYS_WORKERS": str(workers),
        "RECSYS_POLL_SECONDS": "0.2",
        "RECSYS_ADMIN_TOKEN": "s3cret",
        "RECSYS_DATA_DIR": str(tmp_path / "data"),
        "RECSYS_METRICS_DIR": str(tmp_path / "metrics"),
    }
    log = tmp_path / f"server-{port}.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: ready(base), timeout=90)
        yield base, log
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def ready(base: str) -> bool:
    try:
        return httpx.get(base + "/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def versions_by_worker(base: str) -> dict[str, float]:
    """pid -> the version it serves, from the per-worker gauge of one scrape."""
    text = httpx.get(base + "/metrics", timeout=5).text
    return {
        pid: float(value)
        for pid, value in (
            line.split('pid="')[1].split('"}')
            for line in text.splitlines()
            if line.startswith("recsys_model_version{")
        )
    }


def answering_pids(log: Path) -> set[int]:
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith('{"ts"')]
    return {line["pid"] for line in lines}


def test_a_scrape_sums_every_worker_and_keeps_a_restarted_workers_counts(models_dir, tmp_path):
    models = two_versions_of(models_dir, tmp_path / "models")
    with serving(models, tmp_path, workers=2) as (base, log):
        wait_for(lambda: len(versions_by_worker(base)) == 2, timeout=30)
        for _ in range(60):  # a new connection each: the kernel spreads them over the workers
            assert httpx.get(base + "/health", timeout=5).status_code == 200
        wait_for(lambda: len(answering_pids(log)) == 2, timeout=10)  # both answered some
        text = httpx.get(base + "/metrics", timeout=5).text
        assert (
            sample(text, "recsys_requests_total", method="GET", route="/health", status="200") == 60
        )

        # A worker killed outright is restarted by uvicorn; its counts stay in the sums, folded
        # into the archive file, and its own files are gone.
        victim = int(next(iter(versions_by_worker(base))))
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: (
                len(versions_by_worker(base)) == 2 and str(victim) not in versions_by_worker(base)
            ),
            timeout=60,
        )
        text = httpx.get(base + "/metrics", timeout=5).text
        assert (
            sample(text, "recsys_requests_total", method="GET", route="/health", status="200") == 60
        )
        files = {f.name for f in (tmp_path / "metrics").glob("*.db")}
        assert "counter_archive.db" in files and "histogram_archive.db" in files
        assert not [f for f in files if f.endswith(f"_{victim}.db")]


def test_an_admin_pin_reaches_every_worker_and_survives_a_restart(models_dir, tmp_path):
    models = two_versions_of(models_dir, tmp_path / "models")
    with serving(models, tmp_path, workers=2) as (base, _):
        wait_for(lambda: list(versions_by_worker(base).values()) == [2.0, 2.0], timeout=30)
        pinned = httpx.post(base + "/admin/models/1", headers=AUTH, timeout=30)
        assert pinned.status_code == 200 and pinned.json()["pinned"] == 1
        waited = wait_for(lambda: list(versions_by_worker(base).values()) == [1.0, 1.0], 10)
        assert waited < 5  # the other worker follows at its next poll (0.2 s)
        assert {httpx.get(base + "/models", timeout=5).json()["version"] for _ in range(20)} == {1}
    with serving(models, tmp_path, workers=2) as (base, _):
        assert {httpx.get(base + "/models", timeout=5).json()["version"] for _ in range(10)} == {1}
        reloaded = httpx.post(base + "/admin/reload", headers=AUTH, timeout=30)
        assert reloaded.json()["pinned"] is None and reloaded.json()["model"]["version"] == 2
        wait_for(lambda: list(versions_by_worker(base).values()) == [2.0, 2.0], timeout=10)
