"""Soak and fault tests over loopback, bounded in time: mixed traffic against the real service,
then the same with two workers while one is killed mid-load, then SIGTERM under load.

1. One worker, `--seconds` (default 60) at `--connections` (default 64): a random mix of
   GET /recommend/{user}, POST /predict (1 instance), POST /recommend (10 users) and GET /health.
   Reports requests/s, p50/p99, non-2xx answers, socket errors, and the RSS at start and end.
2. Two workers, the same mix for `--kill-seconds` (default 30); halfway, SIGKILL one worker.
   Reports what was lost (socket errors, non-2xx), and whether uvicorn replaced the worker.
3. The same mix from `--connections` keep-alive clients for `--term-seconds` (default 10);
   halfway, SIGTERM (what a container stop sends): one worker without the drain
   (RECSYS_DRAIN_SECONDS=0), with it, and two workers with it. Reports requests answered, lost
   after sending and refused before sending, and how long SIGTERM to exit took.

    PYTHONPATH=. .venv/bin/python bench/soak.py --models-dir models --name movielens
    PYTHONPATH=. .venv/bin/python bench/soak.py --models-dir models --name movielens --only-sigterm
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

from artifact.layout import list_versions
from bench.serve import Server, percentiles_ms, rss_mb, run_wrk


def mixed_lua(users: list[str], items: list[str]) -> str:
    rows = ",\n".join(
        f"wrk.format({json.dumps(m)}, {json.dumps(p)}, headers, {json.dumps(b) if b else 'nil'})"
        for m, p, b in mixed_requests(users, items)
    )
    return (
        'local headers = {["Content-Type"] = "application/json"}\n'
        "local reqs = nil\n"
        "math.randomseed(7)\n"
        "request = function()\n"
        f"  if reqs == nil then reqs = {{{rows}}} end\n"
        "  return reqs[math.random(#reqs)]\n"
        "end\n"
    )


def mixed_requests(users: list[str], items: list[str]) -> list[tuple[str, str, str]]:
    """400 (method, path, JSON body) drawn from the mix, seeded."""
    rng = np.random.default_rng(3)
    requests = []
    for _ in range(400):
        kind = rng.integers(0, 4)
        user = users[rng.integers(0, len(users))]
        if kind == 0:
            requests.append(("GET", f"/recommend/{user}?n=10", ""))
        elif kind == 1:
            item = items[rng.integers(0, len(items))]
            body = json.dumps({"instances": [{"user_id": user, "item_id": item}]})
            requests.append(("POST", "/predict", body))
        elif kind == 2:
            group = [users[i] for i in rng.integers(0, len(users), 10)]
            requests.append(("POST", "/recommend", json.dumps({"user_ids": group, "n": 10})))
        else:
            requests.append(("GET", "/health", ""))
    return requests


def soak_wrk(url: str, connections: int, seconds: int, lua: str) -> dict:
    out = run_wrk(url, connections, seconds, lua, "--timeout", "10s")
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    p50, _, p99 = percentiles_ms(out)
    kinds = (
        dict(zip(("connect", "read", "write", "timeout"), socket.groups(), strict=True))
        if socket
        else {}
    )
    return {
        "requests": total,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(v) for v in socket.groups()) if socket else 0,
        "by_kind": {k: int(v) for k, v in kinds.items()},
        "p50": p50,
        "p99": p99,
    }


def workers_of(server: Server) -> list[int]:
    out = subprocess.run(
        ["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True
    ).stdout
    return [int(p) for p in out.split() if rss_mb(int(p)) > 50]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models-dir", default="models")
    parser.add_argument("--name", default="movielens")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--kill-seconds", type=int, default=30)
    parser.add_argument("--term-seconds", type=int, default=10)
    parser.add_argument("--only-sigterm", action="store_true", help="run only the SIGTERM case")
    args = parser.parse_args()
    base_dir = Path(args.models_dir) / args.name
    version = list_versions(base_dir)[0]  # the newest, as the service picks it
    users = json.loads((base_dir / str(version) / "user_ids.json").read_text())
    items = json.loads((base_dir / str(version) / "item_ids.json").read_text())
    requests = mixed_requests(users, items)
    lua = mixed_lua(users, items)
    env = {
        "RECSYS_MODELS_DIR": str(Path(args.models_dir).resolve()),
        "RECSYS_MODEL_NAME": args.name,
        "RECSYS_LOG_LEVEL": "warning",
    }
    logs = Path(tempfile.mkdtemp(prefix="soak-"))
    service = [sys.executable, "-m", "app"]
    if not args.only_sigterm:
        soak_and_kill(service, env, logs, lua, args)
    sigterm_under_load(service, env, logs, requests, args)
    print(f"server logs in {logs}")


def soak_and_kill(service: list[str], env: dict, logs: Path, lua: str, args) -> None:
    with Server(service, {**env, "RECSYS_WORKERS": "1"}, "/ready", logs / "one.log") as server:
        start_rss = rss_mb(server.process.pid)
        result = soak_wrk(server.base, args.connections, args.seconds, lua)
        end_rss = rss_mb(server.process.pid)
    print(
        f"soak, 1 worker, {args.seconds}s at {args.connections} connections, mixed traffic: "
        f"{result['requests']:,} requests, {result['rps']:,.0f} req/s, p50 {result['p50']:.1f} "
        f"ms, p99 {result['p99']:.1f} ms, non-2xx {result['non2xx']}, socket errors "
        f"{result['socket_errors']}; RSS {start_rss:,.0f} MB at start, {end_rss:,.0f} MB at end"
    )

    with Server(service, {**env, "RECSYS_WORKERS": "2"}, "/ready", logs / "two.log") as server:
        before = workers_of(server)
        victim = before[0]

        def kill() -> None:
            time.sleep(args.kill_seconds / 2)
            os.kill(victim, signal.SIGKILL)

        killer = threading.Thread(target=kill)
        killer.start()
        result = soak_wrk(server.base, args.connections, args.kill_seconds, lua)
        killer.join()
        after = workers_of(server)
    replaced = len(after) == len(before) and victim not in after
    print(
        f"kill one of 2 workers after {args.kill_seconds / 2:.0f}s of {args.kill_seconds}s: "
        f"{result['requests']:,} requests, non-2xx {result['non2xx']}, socket errors "
        f"{result['socket_errors']} ({100 * result['socket_errors'] / result['requests']:.3f}%), "
        f"p99 {result['p99']:.1f} ms; worker replaced by uvicorn: {replaced} "
        f"(workers {before} -> {after})"
    )


def _terminate_after(process: subprocess.Popen, wait: float, timing: dict[str, float]) -> None:
    time.sleep(wait)
    timing["sent"] = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    process.wait()
    timing["exited"] = time.perf_counter()


async def _keep_alive_client(
    port: int, requests: list[tuple[str, str, str]], start: int, until: float, tally: Counter
) -> None:
    """One HTTP/1.1 keep-alive connection sending the mix back to back. Each request ends as
    `answered` (2xx), `non2xx`, `lost` (written, then the connection closed with no answer) or
    `refused` (no connection: never sent, safe to retry elsewhere; the client then stops)."""
    reader = writer = None
    turn = start
    while time.perf_counter() < until:
        if writer is None:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                tally["refused"] += 1
                return
        assert reader is not None
        method, path, body = requests[turn % len(requests)]
        turn += 1
        payload = body.encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        )
        try:
            writer.write(head.encode() + payload)
            await writer.drain()
            answer = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
            length = int(re.search(r"content-length: (\d+)", answer).group(1))
            await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError):
            tally["lost"] += 1
            writer.close()
            writer = None
            continue
        status = int(answer.split(" ", 2)[1])
        tally["answered" if 200 <= status < 300 else "non2xx"] += 1
        if "connection: close" in answer:
            writer.close()
            writer = None
    if writer is not None:
        writer.close()


async def _load(port: int, requests, connections: int, seconds: float) -> Counter:
    tally: Counter = Counter()
    until = time.perf_counter() + seconds
    await asyncio.gather(
        *(_keep_alive_client(port, requests, 7 * c, until, tally) for c in range(connections))
    )
    return tally


def sigterm_under_load(service: list[str], env: dict, logs: Path, requests, args) -> None:
    """SIGTERM one worker halfway through `--term-seconds` of load from `--connections`
    keep-alive clients (a Python asyncio client: wrk's error counts cannot tell a request lost
    after it was sent from a reconnect refused before anything was sent). Without and with the
    drain (RECSYS_DRAIN_SECONDS), and with two workers, side by side: what the clients lost,
    what the app answered (its access log), how long SIGTERM to exit took, how it ended."""
    env = {**env, "RECSYS_LOG_LEVEL": "info", "RECSYS_ACCESS_LOG": "true"}
    seconds = args.term_seconds
    for workers, drain in (("1", "0"), ("1", "5"), ("2", "5")):
        timing: dict[str, float] = {}
        log_path = logs / f"term-{workers}-{drain}.log"
        settings = {**env, "RECSYS_WORKERS": workers, "RECSYS_DRAIN_SECONDS": drain}
        with Server(service, settings, "/ready", log_path) as server:
            stopper = threading.Thread(
                target=_terminate_after, args=(server.process, seconds / 2, timing)
            )
            stopper.start()
            tally = asyncio.run(_load(server.port, requests, args.connections, seconds))
            stopper.join()
            code = server.process.returncode
        log = log_path.read_text()
        # every access line but the start-up readiness probes (the mix never asks for /ready)
        app_answered = log.count('"event":"request"') - log.count('"path":"/ready"')
        print(
            f"SIGTERM, {workers} worker(s), drain {drain} s, after {seconds / 2:.0f}s of "
            f"{seconds}s at {args.connections} keep-alive connections: "
            f"{tally['answered']:,} answered 2xx (the app logged {app_answered:,}), "
            f"non-2xx {tally['non2xx']}, lost after sending {tally['lost']}, "
            f"refused before sending {tally['refused']}; SIGTERM to exit "
            f"{timing['exited'] - timing['sent']:.2f} s, exit code {code}, clean exit: "
            f"{'Finished server process' in log}, requests cancelled: {'Cancel ' in log}"
        )


if __name__ == "__main__":
    main()
