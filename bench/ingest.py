"""Ingestion: POST /events under load, on SQLite and on PostgreSQL, side by side in one run.

    PYTHONPATH=. .venv/bin/python bench/ingest.py --models-dir models --name movielens

Cases, each against a fresh store, one worker, wrk on loopback:
- single-event requests at 32 connections (issue 13: >= 1,500 acknowledged events/s, p99 <= 30 ms)
- batches of 1,000 events at 4 connections (>= 50,000 events/s), the same body every time
- batches of 1,000 events from 200 users never seen before each (every event owes a fold-in)
for SQLite with synchronous=FULL (the default: an acknowledged event survives power loss),
SQLite with synchronous=NORMAL (survives a crash of the process), and PostgreSQL 15 with its
defaults (fsync on, synchronous_commit on: survives power loss). After each case the store must
hold at least every event acknowledged; wrk drops the requests in flight when its time is up, so
the store may hold up to one request per connection more.

Then two service processes on one SQLite store (two workers): the time from a write acknowledged
by one to its effect on the other (the rated item gone from the user's /recommend), median and
max over 20 writes, with RECSYS_SYNC_SECONDS=1.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from app.events.store import engine_url
from artifact.layout import ITEM_IDS, list_versions
from bench.serve import Server, percentiles_ms, run_wrk
from tests.postgres import PostgresServer, binaries

SINGLE_LUA = """
local items = {%s}
local n = 0
request = function()
  n = n + 1
  local body = string.format(
    '{"events":[{"user_id":"bench-%%d","item_id":"%%s","rating":%%d}]}',
    math.random(100000), items[math.random(#items)], math.random(5))
  return wrk.format("POST", "/events", {["Content-Type"] = "application/json"}, body)
end
"""

BATCH_LUA = """
local items = {%s}
local events = {}
for i = 1, %d do
  events[i] = string.format('{"user_id":"bench-%%d","item_id":"%%s","rating":%%d}',
    math.random(100000), items[math.random(#items)], math.random(5))
end
local body = '{"events":[' .. table.concat(events, ",") .. ']}'
request = function()
  return wrk.format("POST", "/events", {["Content-Type"] = "application/json"}, body)
end
"""


# Every request from 200 users never seen before (5 ratings each): every event owes a fold-in.
FRESH_LUA = """
local items = {%s}
local n = 0
local tid = tostring(math.random(1000000000))
request = function()
  n = n + 1
  local events = {}
  for i = 1, %d do
    events[i] = string.format('{"user_id":"f%%s-%%d-%%d","item_id":"%%s","rating":%%d}',
      tid, n, i %% 200, items[math.random(#items)], math.random(5))
  end
  local body = '{"events":[' .. table.concat(events, ",") .. ']}'
  return wrk.format("POST", "/events", {["Content-Type"] = "application/json"}, body)
end
"""


def stored_ratings(url: str) -> int:
    with create_engine(engine_url(url)).connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM log WHERE kind = 'rating'")).scalar())


def settled(url: str) -> int:
    """The store's rating count once the requests wrk left in flight have committed (it stops
    moving), so none of them is counted in the next case."""
    count = stored_ratings(url)
    while True:
        time.sleep(0.5)
        now = stored_ratings(url)
        if now == count:
            return count
        count = now


def load(base: str, lua: str, connections: int, duration: int, per_request: int) -> dict:
    out = run_wrk(base + "/events", connections, duration, lua)
    done = int(re.search(r"(\d+) requests in", out).group(1))
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(failed.group(1)) if failed else 0
    seconds = float(re.search(r"requests in ([\d.]+)s", out).group(1))
    p50, p95, p99 = percentiles_ms(out)
    acked = (done - errors) * per_request
    return {"acked": acked, "errors": errors, "eps": acked / seconds, "p50": p50, "p99": p99}


def case(label: str, store_url: str, env: dict, args, items: list[str], logs: Path) -> list[str]:
    rows = []
    listed = ",".join(json.dumps(i) for i in items)
    env = {**env, "RECSYS_STORE_URL": store_url, "RECSYS_ACCESS_LOG": "false"}
    argv = [sys.executable, "-m", "app"]
    with Server(argv, env, "/ready", logs / f"{label}.log") as server:
        before = stored_ratings(store_url)
        for name, lua, connections, per_request in (
            ("1 event/request", SINGLE_LUA % listed, 32, 1),
            ("1,000 events/request", BATCH_LUA % (listed, 1000), 4, 1000),
            ("1,000 events/request, 200 new users", FRESH_LUA % (listed, 1000), 4, 1000),
        ):
            got = load(server.base, lua, connections, args.duration, per_request)
            stored = settled(store_url) - before
            before += stored
            # Every acknowledged event stored; at most the requests in flight more.
            verdict = (
                "MISSING"
                if stored < got["acked"]
                else "ok"
                if stored - got["acked"] <= connections * per_request
                else "more than in flight"
            )
            rows.append(
                f"| {label} | {name} | {connections} | {got['eps']:,.0f} | {got['p50']:.1f} | "
                f"{got['p99']:.1f} | {got['errors']} | {got['acked']:,} | {stored:,} {verdict} |"
            )
            print(rows[-1], flush=True)
    return rows


def propagation(models_dir: str, name: str, items: list[str], logs: Path) -> str:
    """Write through one service process, watch the other drop the rated item."""
    store = f"sqlite:///{tempfile.mkdtemp(prefix='ingest-')}/events.sqlite3"
    env = {
        "RECSYS_MODELS_DIR": models_dir,
        "RECSYS_MODEL_NAME": name,
        "RECSYS_STORE_URL": store,
        "RECSYS_SYNC_SECONDS": "1",
        "RECSYS_ACCESS_LOG": "false",
    }
    argv = [sys.executable, "-m", "app"]
    delays = []
    with (
        Server(argv, env, "/ready", logs / "a.log") as a,
        Server(argv, env, "/ready", logs / "b.log") as b,
    ):
        for k in range(20):
            user = f"prop-{k}"
            top = httpx.get(f"{b.base}/recommend/{user}", params={"n": 1}).json()["items"][0]
            event = {"events": [{"user_id": user, "item_id": top["item_id"], "rating": 4}]}
            httpx.post(f"{a.base}/events", json=event).raise_for_status()
            acked = time.perf_counter()
            while True:
                shown = httpx.get(f"{b.base}/recommend/{user}", params={"n": 1}).json()
                if shown["items"][0]["item_id"] != top["item_id"]:
                    break
                time.sleep(0.005)
            delays.append(time.perf_counter() - acked)
    return (
        f"write on one worker -> effect on the other (RECSYS_SYNC_SECONDS=1, 20 writes): median "
        f"{statistics.median(delays) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models-dir", default="models")
    parser.add_argument("--name", default="movielens")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    args = parser.parse_args()
    version = list_versions(Path(args.models_dir) / args.name)[0]
    items = json.loads((Path(args.models_dir) / args.name / str(version) / ITEM_IDS).read_text())
    logs = Path(tempfile.mkdtemp(prefix="ingest-logs-"))
    env = {"RECSYS_MODELS_DIR": args.models_dir, "RECSYS_MODEL_NAME": args.name}
    print(f"model {args.name}/{version}, {len(items):,} items; wrk {args.duration}s per case")
    print(
        "| store | requests | connections | events/s | p50 ms | p99 ms | non-2xx | acked | stored |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for sync in ("full", "normal"):
        store = f"sqlite:///{tempfile.mkdtemp(prefix='ingest-')}/events.sqlite3"
        case(f"SQLite {sync}", store, {**env, "RECSYS_STORE_SYNCHRONOUS": sync}, args, items, logs)
    bin_dir = binaries()
    if bin_dir is None:
        print("PostgreSQL is not installed: its cases did not run")
    else:
        server = PostgresServer(bin_dir, fsync=True)
        server.start()
        try:
            case("PostgreSQL 15", server.url, env, args, items, logs)
        finally:
            server.remove()
    print(propagation(args.models_dir, args.name, items, logs))


if __name__ == "__main__":
    main()
