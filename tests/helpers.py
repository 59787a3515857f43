"""What many tests use: the repository root, the tiny model's name, an app client with its own
settings, a free loopback port, polling, and reading one Prometheus sample."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings

# Small retrieval vectors for the tiny data (the `retrieval` fixture and its tests).
RETRIEVAL_SETTINGS = {
    "factors": 8, "epochs": 4, "batch_users": 16, "learning_rate": 0.05, "patience": 2
}  # fmt: skip
MODEL_NAME = "tiny"
ROOT = Path(__file__).resolve().parent.parent


def make_client(**settings: Any) -> TestClient:
    """A TestClient on its own app, with its own empty event store unless `store_url` is given
    and its own data directory unless `data_dir` is;
    use as a context manager so the lifespan loads the model."""
    settings.setdefault("store_url", fresh_store_url())
    # Its own data directory too: what an admin persists there (a pin) stays with this app.
    settings.setdefault("data_dir", tempfile.mkdtemp(prefix="recsys-data-"))
    return TestClient(create_app(Settings(**settings)))


def fresh_store_url() -> str:
    """An SQLite event store in a new temporary directory (removed when the tests end)."""
    return f"sqlite:///{tempfile.mkdtemp(prefix='recsys-store-')}/events.sqlite3"


def free_port() -> int:
    """A loopback port nobody listens on right now (for a server started in a subprocess)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], object], timeout: float) -> float:
    """Poll `predicate` until true; the seconds it took. Fails the test after `timeout`."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if predicate():
            return time.perf_counter() - started
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s")


def sample(text: str, metric_name: str, **labels: str) -> float:
    """The value of one Prometheus sample in /metrics' text, labels matched exactly; 0 when
    absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, value = line.rsplit(" ", 1)
        metric, _, rest = key.partition("{")
        got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if metric == metric_name and got == wanted:
            return float(value)
    return 0.0


def two_versions_of(models_dir: Path, root: Path) -> Path:
    """`root` holding versions 1 and 2 of the tiny model, identical but for their number."""
    shutil.copytree(models_dir / MODEL_NAME / "1", root / MODEL_NAME / "1")
    shutil.copytree(models_dir / MODEL_NAME / "1", root / MODEL_NAME / "2")
    manifest_path = root / MODEL_NAME / "2" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["version"] = 2
    manifest_path.write_text(json.dumps(manifest))
    return root


def served_view(client: TestClient) -> Any:
    """The live state of the version `client`'s app serves (`app.events.view.VersionView`)."""
    return client.app.state.service.versions.served.live.view  # type: ignore[attr-defined]


def corrupt_copy(source: Path, target: Path) -> None:
    """A complete-looking version whose item factors no longer match their checksum."""
    staging = target.parent / f".staging-{target.name}"
    shutil.copytree(source, staging)
    manifest = json.loads((staging / "manifest.json").read_text())
    manifest["version"] = int(target.name)
    (staging / "manifest.json").write_text(json.dumps(manifest))
    with open(staging / "item_factors.npy", "r+b") as f:
        f.seek(-8, os.SEEK_END)
        f.write(b"\x00\x00\xc0\x7f" * 2)  # NaN bytes
    staging.rename(target)


@contextmanager
def running_site(
    models_dir: Path, log: Path, command: tuple[str, ...] = ("-m", "app"), **settings: str
) -> Iterator[str]:
    """`python -m app` (or `command`) on a free port serving the default-shaped version
    ("both"), with `settings` as RECSYS_ variables; its base URL, stopped on leaving."""
    port = free_port()
    env = {
        **os.environ,
        "RECSYS_MODELS_DIR": str(models_dir),
        "RECSYS_MODEL_NAME": "both",
        "RECSYS_PORT": str(port),
        "RECSYS_STORE_URL": fresh_store_url(),
        "RECSYS_MAX_N": "40",
        **{f"RECSYS_{k.upper()}": v for k, v in settings.items()},
    }
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, *command], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(base + "/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return process.poll() is not None

    try:
        wait_for(ready, 60)
        assert process.poll() is None, log.read_text()
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
