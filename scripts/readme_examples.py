"""Run the README's `$ curl` examples against a fresh service and write their real output back
into the README, so the examples stay what the service answers.

    PYTHONPATH=. .venv/bin/python scripts/readme_examples.py [--readme README.md] [--check]

The service serves a copy of the newest version under models/movielens (`make run`'s, trained
on ml-100k by `recsys train`'s defaults), on http://127.0.0.1:8000 (stop anything else there
first), with a fresh event store. Each ```sh block of the README runs in order in one service
of its profile, chosen by what its commands carry:

- `k3y-for-the-app`: RECSYS_API_KEY=k3y-for-the-app RECSYS_WRITE_TOKEN=wr1te
  RECSYS_WRITE_RATE=10 RECSYS_WRITE_BURST=20 (`/tmp/bulk.json` holds 25 events);
- `Bearer adm1n`: RECSYS_ADMIN_TOKEN=adm1n, version 1 pinned at start (RECSYS_MODEL_VERSION),
  and a version 2 beside it (`recsys train --epochs 1 --no-item-item --retrieval-epochs 1`);
- anything else: the defaults.

A profile's service keeps its state from block to block; a block of another profile stops it,
and a later block of the first profile restarts it on the same store. Commands other than curl
run too, in the work directory (`.venv`, `data/ml-100k` and `models` there are the service's),
but their output in the README is left as written (often shortened with `...`); after one, the
script waits until the service serves the newest version on disk. A block without a curl
command, or whose commands need a restart (`rm`), is left alone. `--check` writes nothing and
fails when an output differs in more than ids, timestamps and the store's identity.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BASE = "http://127.0.0.1:8000"
PROFILES = {
    "keys": {
        "RECSYS_API_KEY": "k3y-for-the-app",
        "RECSYS_WRITE_TOKEN": "wr1te",
        "RECSYS_WRITE_RATE": "10",
        "RECSYS_WRITE_BURST": "20",
    },
    "admin": {"RECSYS_ADMIN_TOKEN": "adm1n", "RECSYS_MODEL_VERSION": "1"},
    "default": {},
}
VOLATILE = re.compile(
    r'"(recommendation_id|timestamp|at|started|id|created|seconds)":("[^"]*"|[0-9.e+-]+)'
    r"|r[0-9a-f]{22}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)


def profile_of(block: list[str]) -> str:
    text = "\n".join(block)
    if "k3y-for-the-app" in text:
        return "keys"
    if "Bearer adm1n" in text:
        return "admin"
    return "default"


def blocks(lines: list[str]) -> list[tuple[int, int]]:
    """(first, end) line indexes of each ```sh block's body."""
    found, start = [], None
    for k, line in enumerate(lines):
        if line.strip() == "```sh" and start is None:
            start = k + 1
        elif line.strip() == "```" and start is not None:
            found.append((start, k))
            start = None
    return found


class Service:
    def __init__(self, work: Path, profile: str) -> None:
        self.work, self.profile = work, profile
        data = work / ("data" if profile == "default" else f"data-{profile}")
        data.mkdir(exist_ok=True)
        env = {
            **os.environ,
            "RECSYS_MODELS_DIR": str(work / ("models-admin" if profile == "admin" else "models")),
            "RECSYS_DATA_DIR": str(data),
            "RECSYS_PORT": "8000",
            "OPENBLAS_NUM_THREADS": "1",
            **PROFILES[profile],
        }
        self.log = open(work / f"service-{profile}.log", "a")  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(ROOT / ".venv/bin/python"), "-m", "app"], cwd=ROOT, env=env,
            stdout=self.log, stderr=self.log,
        )  # fmt: skip
        self.wait(lambda ready: ready.get("status") == "ready", "ready")

    def wait(self, condition, what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"the service exited; see {self.log.name}")
            try:
                ready = httpx.get(BASE + "/ready", timeout=2).json()
                if condition(ready):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        sys.exit(f"the service never got {what}; see {self.log.name}")

    def newest(self) -> None:
        root = self.work / "models" / "movielens"
        newest = max(int(p.name) for p in root.iterdir() if p.name.isdigit())
        self.wait(
            lambda r: (r.get("model") or {}).get("version") == newest
            and all(f["pending"] == 0 for f in r.get("fold_in", [])),
            f"to version {newest}",
        )  # fmt: skip

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def prepare(work: Path) -> None:
    source = ROOT / "models" / "movielens"
    newest = max((p for p in source.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    for models in ("models", "models-admin"):
        shutil.copytree(newest, work / models / "movielens" / "1")
    (work / "data").mkdir()
    (work / "data" / "ml-100k").symlink_to(ROOT / "data" / "ml-100k")
    (work / ".venv").symlink_to(ROOT / ".venv")
    subprocess.run(
        [str(ROOT / ".venv/bin/recsys"), "train", "--dataset", "ml-100k", "--data-dir",
         str(work / "data"), "--models-dir", str(work / "models-admin"), "--epochs", "1",
         "--no-item-item", "--retrieval-epochs", "1"],
        check=True, capture_output=True,
    )  # fmt: skip
    events = [{"user_id": "bulk", "item_id": str(i), "rating": 4} for i in range(1, 26)]
    Path("/tmp/bulk.json").write_text(json.dumps({"events": events}))


def run_command(command: str, work: Path) -> list[str]:
    done = subprocess.run(
        ["bash", "-c", command], cwd=work, capture_output=True, text=True, timeout=600
    )
    return done.stdout.rstrip("\n").split("\n") if done.stdout else []


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--readme", default=str(ROOT / "README.md"))
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    path = Path(args.readme)
    lines = path.read_text().split("\n")
    work = Path(tempfile.mkdtemp(prefix="readme-examples-"))
    prepare(work)
    service: Service | None = None
    out: list[str] = []
    cursor = 0
    differ = 0
    try:
        for start, end in blocks(lines):
            body = lines[start:end]
            if not any(b.startswith("$ curl") for b in body) or any(
                b.startswith("$ rm ") for b in body
            ):
                continue
            profile = profile_of(body)
            if service is None or service.profile != profile:
                if service is not None:
                    service.stop()
                service = Service(work, profile)
            out.extend(lines[cursor:start])
            k = 0
            while k < len(body):
                line = body[k]
                k += 1
                if not line.startswith("$ "):
                    out.append(line)
                    continue
                out.append(line)
                old = []
                while k < len(body) and not body[k].startswith("$ "):
                    old.append(body[k])
                    k += 1
                command = line[2:]
                new = run_command(command, work)
                if not command.startswith("curl"):
                    print(f"ran: {command}\n" + "\n".join(new), file=sys.stderr)
                    out.extend(old)
                    service.newest()
                    continue
                if [VOLATILE.sub("", x) for x in new] != [VOLATILE.sub("", x) for x in old]:
                    differ += 1
                    print(f"changed: {command}\n  - {old}\n  + {new}", file=sys.stderr)
                out.extend(new)
            cursor = end
    finally:
        if service is not None:
            service.stop()
    out.extend(lines[cursor:])
    print(f"{differ} outputs changed beyond ids and times; work in {work}")
    if args.check:
        return 1 if differ else 0
    path.write_text("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
