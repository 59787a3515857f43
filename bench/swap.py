"""A swap with many live users: does the service keep answering while it folds them in again?

    PYTHONPATH=. .venv/bin/python bench/swap.py --models-dir models --name movielens \\
        --users 200000 [--checkout /path/to/another/tree]

A store is filled with `--users` new users of 5 ratings each (written straight to the store),
the service starts on a copy of the newest version (every user folded in at start), then a
renumbered copy of that version appears and the service swaps to it: every live user is folded
in again against it. Meanwhile a client asks GET /health and GET /recommend/<trained user>
back to back; the table reports the longest wait for an answer and the p99 before, during
and after the swap, the swap's length (the new version served), and how long until every user
was folded in again (/ready's fold_in; the old code has no such report: until its swap ended).

With `--checkout`, the same run on another tree of this project (for example the commit before
the live state's rewrite, `git worktree add /tmp/old af7c9bb`), on a store of its own with the
same events, side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import create_engine, text

from artifact.layout import ITEM_IDS, USER_IDS, list_versions
from tests.helpers import free_port, wait_for

RATINGS_PER_USER = 5


def fill(url: str, users: int, items: list[str], tree: Path) -> None:
    """`users` new users with 5 ratings each, written by `tree`'s own store code (its schema)."""
    code = f"""
import sys, numpy as np
sys.path.insert(0, {str(tree)!r})
from app.events.store import EventStore
try:
    from app.events.changes import Rating
except ImportError:
    from app.events.store import Rating
items = {items!r}
rng = np.random.default_rng(0)
store = EventStore({url!r}, "normal")
store.open()
for start in range(0, {users}, 10000):
    batch = [Rating(f"live-{{u}}", items[int(i)], float(r), 1_800_000_000)
             for u in range(start, min(start + 10000, {users}))
             for i, r in zip(rng.choice(len(items), {RATINGS_PER_USER}, replace=False),
                             rng.integers(1, 6, {RATINGS_PER_USER}))]
    store.write([batch])
store.close()
"""
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tree)


def watch(base: str, user: str, stop: threading.Event, out: list[tuple[float, float, int]]):
    """(time, seconds waited, status) of back-to-back requests until `stop`."""
    with httpx.Client(base_url=base, timeout=120) as client:
        k = 0
        while not stop.is_set():
            path = "/health" if k % 2 else f"/recommend/{user}?n=10"
            k += 1
            started = time.perf_counter()
            try:
                status = client.get(path).status_code
            except httpx.HTTPError:
                status = 0
            out.append((started, time.perf_counter() - started, status))


def run(tree: Path, models: Path, name: str, users: int, label: str, work: Path) -> str:
    version = list_versions(models / name)[0]
    slug = label.replace(" ", "-")
    root = work / f"models-{slug}"
    shutil.copytree(models / name / str(version), root / name / "1")
    items = json.loads((root / name / "1" / ITEM_IDS).read_text())
    trained = json.loads((root / name / "1" / USER_IDS).read_text())[0]
    url = f"sqlite:///{work}/events-{slug}.sqlite3"
    fill(url, users, items, tree)
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "RECSYS_MODELS_DIR": str(root),
        "RECSYS_MODEL_NAME": name,
        "RECSYS_STORE_URL": url,
        "RECSYS_PORT": str(port),
        "RECSYS_POLL_SECONDS": "1",
        "RECSYS_ACCESS_LOG": "false",
    }
    log = open(work / f"server-{slug}.log", "w")
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "app"], cwd=tree, env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"

    def status(path: str) -> int:
        try:
            return httpx.get(base + path, timeout=300).status_code
        except httpx.HTTPError:
            return 0

    try:
        wait_for(lambda: status("/ready") == 200, 1800)
        ready = time.perf_counter() - started

        def folded() -> bool:
            body = httpx.get(base + "/ready", timeout=300).json()
            return all(p["pending"] == 0 for p in body.get("fold_in", []))

        wait_for(folded, 1800)
        settled = time.perf_counter() - started
        samples: list[tuple[float, float, int]] = []
        stop = threading.Event()
        client = threading.Thread(target=watch, args=(base, trained, stop, samples))
        client.start()
        time.sleep(3)
        # The new version: a renumbered copy, staged and renamed in as training exports it.
        staged = root / name / ".staging-2"
        shutil.copytree(root / name / "1", staged)
        manifest = json.loads((staged / "manifest.json").read_text())
        manifest["version"] = 2
        (staged / "manifest.json").write_text(json.dumps(manifest))
        swap_started = time.perf_counter()
        staged.rename(root / name / "2")

        def serving_two() -> bool:
            body = httpx.get(base + "/models", timeout=300).json()
            return body.get("version") == 2

        wait_for(serving_two, 1800)
        swapped = time.perf_counter() - swap_started
        wait_for(folded, 1800)
        refolded = time.perf_counter() - swap_started
        time.sleep(3)
        stop.set()
        client.join()
    finally:
        server.terminate()
        server.wait(timeout=60)
    before = [w for t, w, _ in samples if t < swap_started]
    during = [w for t, w, _ in samples if swap_started <= t < swap_started + refolded]
    failed = sum(1 for _, _, s in samples if s != 200)
    ms = lambda values, q: 1000 * float(np.percentile(values, q)) if values else float("nan")  # noqa: E731
    return (
        f"| {label} | {users:,} | {ready:.1f} s (all folded {settled:.1f} s) | {swapped:.1f} s | "
        f"{refolded:.1f} s | {ms(before, 99):.1f} / {1000 * max(before):.0f} ms | "
        f"{ms(during, 99):.1f} / {1000 * max(during, default=0):.0f} ms | {len(during):,} | "
        f"{failed} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--name", default="movielens")
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--checkout", type=Path, help="another tree of this project, side by side")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="swap-"))
    here = Path(__file__).resolve().parent.parent
    print(f"{args.users:,} live users x {RATINGS_PER_USER} ratings; logs in {work}")
    print(
        "| code | live users | start to ready | swap (new version served) | until all "
        "folded again | before: p99 / longest wait | during: p99 / longest wait | requests "
        "during | not 200 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    trees = [(here, "this tree")]
    if args.checkout:
        trees.append((args.checkout.resolve(), f"checkout {args.checkout.name}"))
    for tree, label in trees:
        print(run(tree, args.models_dir.resolve(), args.name, args.users, label, work), flush=True)
    with create_engine(f"sqlite:///{work}/events-this-tree.sqlite3").connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM log")).scalar()
    print(f"({rows:,} events in the store)")


if __name__ == "__main__":
    main()
