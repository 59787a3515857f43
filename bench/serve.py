"""Serving speed: the real service under wrk over loopback, against the HTTP floor, in one run.

For one exported model (`--models-dir`, `--name`) this:

1. measures in-process `compute`: one user's top-10 (matvec + seen mask + argpartition + sort of
   10) with one BLAS thread, averaged over random users;
2. starts a bare FastAPI app (`bench/floor_app.py`: one `async def` returning a tiny JSON) under
   the same uvicorn settings and drives it with wrk: `floor` requests/s;
3. starts the service (`python -m app`, one or more workers) and times start to ready, reads the
   RSS of every worker, times the first /predict after ready (warm-up), then drives with wrk:
   GET /health, GET /recommend/{user} (a random user per request), POST /predict with 1 and with
   1,000 instances (batching on, then off in a second server), POST /recommend for 100 users;
4. prints requests/s, p50/p95/p99 per case and connections, and for /recommend its ratio to the
   physical limit `1 / (1/floor + compute)`.

wrk comes from Debian's packages (`apt-get install wrk`): a C load generator with a Lua hook for
random users and POST bodies, so the driver itself is never the bottleneck the way a Python
driver on the same 2 cores would be. It shares the machine's cores with the server; so does the
floor measurement, which keeps the ratio fair.

    PYTHONPATH=. .venv/bin/python bench/serve.py --models-dir models --name movielens \\
        [--workers 1] [--duration 5] [--connections 1,32,128]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from threadpoolctl import threadpool_limits

from artifact.layout import list_versions

ROOT = Path(__file__).resolve().parent.parent
DONE_LUA = """
done = function(summary, latency, requests)
  io.write(string.format("PCT %d %d %d\\n", latency:percentile(50), latency:percentile(95),
                         latency:percentile(99)))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 120.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {timeout:.0f}s")


class Server:
    """A uvicorn process on a free loopback port, stopped on exit."""

    def __init__(
        self, argv: list[str], env: dict[str, str], ready_path: str, log: Path, cwd: Path = ROOT
    ):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, **env, "RECSYS_PORT": str(self.port), "RECSYS_HOST": "127.0.0.1"}
        argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.log = log.open("w")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT
        )
        wait_ready(self.base + ready_path, self.process)
        self.start_to_ready = time.perf_counter() - started

    def worker_pids(self) -> list[int]:
        """The processes serving requests: the workers, or the master when alone."""
        children = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        ).stdout.split()
        return [int(p) for p in children] or [self.process.pid]

    def worker_memory(self) -> str:
        """RSS and PSS of each process serving requests (the workers; the master when alone).
        PSS charges each shared page to its sharers in equal parts: memory-mapped factors
        and the libraries two workers share count half in each."""
        pids = self.worker_pids()
        sizes = [
            (memory_mb(p, "VmRSS:", "status"), memory_mb(p, "Pss:"), *mapped_files_mb(p))
            for p in pids
        ]
        # uvicorn with workers > 1 forks a multiprocessing helper too; keep the big ones
        sizes = [s for s in sizes if s[0] > 50] or sizes
        return ", ".join(
            f"RSS {rss:,.0f} MB / PSS {pss:,.0f} MB (the version's mapped files: RSS "
            f"{file_rss:,.0f} / PSS {file_pss:,.0f} MB)"
            for rss, pss, file_rss, file_pss in sizes
        )

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def mapped_files_mb(pid: int) -> tuple[float, float]:
    """RSS and PSS of the process's mappings of a version's arrays and index (.npy, .faiss):
    PSS at half the RSS with two workers means each page is shared by both."""
    rss = pss = 0.0
    current = False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if not line[:1].isupper() or line.split()[0].count("-") == 1:  # a mapping's header
            fields = line.split()
            current = len(fields) >= 6 and fields[-1].endswith((".npy", ".faiss"))
        elif current and line.startswith("Rss:"):
            rss += int(line.split()[1]) / 1024
        elif current and line.startswith("Pss:"):
            pss += int(line.split()[1]) / 1024
    return rss, pss


def memory_mb(pid: int, field: str, source: str = "smaps_rollup") -> float:
    """One kB field of /proc/<pid>/status or smaps_rollup, in MB."""
    for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return 0.0


def run_wrk(url: str, connections: int, duration: int, lua: str, *options: str) -> str:
    """wrk's report for `lua` (plus DONE_LUA's percentile line) against `url`."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as f:
        f.write(lua + DONE_LUA)
        f.flush()
        threads = min(2, connections)
        return subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", *options]
            + ["-s", f.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout


def percentiles_ms(out: str) -> tuple[float, float, float]:
    """p50, p95, p99 from DONE_LUA's line of a wrk report."""
    p50, p95, p99 = (int(v) / 1000 for v in re.search(r"PCT (\d+) (\d+) (\d+)", out).groups())
    return p50, p95, p99


def wrk(url: str, connections: int, duration: int, lua: str) -> dict[str, float]:
    out = run_wrk(url, connections, duration, lua)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50, p95, p99 = percentiles_ms(out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} error responses under load:\n{out}")
    return {"rps": rps, "p50": p50, "p95": p95, "p99": p99}


def lua_get_random(users: list[str], prefix: str, suffix: str) -> str:
    listed = ",".join(json.dumps(u) for u in users)
    return (
        f"local users = {{{listed}}}\n"
        "math.randomseed(42)\n"
        "request = function()\n"
        f'  return wrk.format("GET", "{prefix}" .. users[math.random(#users)] .. "{suffix}")\n'
        "end\n"
    )


def lua_post(body: dict) -> str:
    text = json.dumps(body).replace("\\", "\\\\").replace("'", "\\'")
    return (
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = '{text}'\n"
    )


FEATURE = "feature: "


def feature_cases(
    version_dir: Path, users: list[str], items: list[str], pairs: list[dict]
) -> list[tuple[str, str, str]]:
    """The product features' requests (issue 14) as (name, path, wrk script): filters,
    diversity, explanations, similar items, re-ranking, the popular list, a /predict interval."""
    metadata = json.loads((version_dir / "items.json").read_text())
    genres: dict[str, int] = {}
    for row in metadata:
        for g in row.get("genres") or []:
            genres[g] = genres.get(g, 0) + 1
    common = max(genres, key=genres.get) if genres else None  # the widest genre filter
    filters = f"&genres={common}&year_min=1990" if common else "&year_min=1990"
    rng = np.random.default_rng(2)
    shelf = [items[i] for i in rng.integers(0, len(items), 50)]
    return [
        (
            f"{FEATURE}GET /recommend {filters[1:]}",
            "",
            lua_get_random(users, "/recommend/", f"?n=10{filters}"),
        ),
        (
            f"{FEATURE}GET /recommend diversity=0.3",
            "",
            lua_get_random(users, "/recommend/", "?n=10&diversity=0.3"),
        ),
        (
            f"{FEATURE}GET /recommend explain=true",
            "",
            lua_get_random(users, "/recommend/", "?n=10&explain=true"),
        ),
        (f"{FEATURE}GET /similar/{{item}} n=10", "", lua_get_random(items, "/similar/", "?n=10")),
        (
            f"{FEATURE}POST /rank 50 items",
            "/rank",
            lua_post({"user_id": users[0], "item_ids": shelf}),
        ),
        (f"{FEATURE}GET /popular n=10", "/popular?n=10", ""),
        (
            f"{FEATURE}POST /predict 1 interval=0.9",
            "/predict",
            lua_post({"instances": pairs[:1], "interval": 0.9}),
        ),
    ]


def compute_seconds(version_dir: Path, samples: int = 3000) -> tuple[float, dict]:
    """Mean in-process seconds of one user's top-10, one BLAS thread, random users."""
    from app.events.view import VersionView
    from app.ranking.recommend import recommend
    from app.serving.loader import load_version

    loaded = load_version(version_dir)
    live = VersionView.empty(loaded)  # no live events: the path a trained user takes
    users = list(loaded.user_index)
    rng = np.random.default_rng(0)
    chosen = [users[i] for i in rng.integers(0, len(users), samples)]
    with threadpool_limits(1, "blas"):
        for user in chosen[:100]:
            recommend(live.user(user), 10)
        started = time.perf_counter()
        for user in chosen:
            recommend(live.user(user), 10)
        seconds = (time.perf_counter() - started) / samples
    shape = {
        "users": len(users),
        "items": loaded.n_items,
        "factors": int(loaded.vectors.item_factors.shape[1]),
        "source": loaded.vectors.source,
    }
    return seconds, shape


def first_predict_ms(base: str, user: str, item: str) -> float:
    started = time.perf_counter()
    response = httpx.post(
        base + "/predict", json={"instances": [{"user_id": user, "item_id": item}]}
    )
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000


PLAIN_USERS, PLAIN_SECONDS, PLAIN_CONNECTIONS = 500, 10, 32


def plain_measurement(args: argparse.Namespace, logs: Path) -> None:
    """The measurement a newcomer makes (issue 29): `recsys serve` with its defaults (one
    worker, the event store and the JSON access log on) against a bare FastAPI app on uvicorn's
    own defaults (its access log on), wrk at 32 connections for 10 s over 500 random known
    users; beside it, in the same run, each difference from this script's usual measurement
    switched one at a time (the floor's uvicorn flags and request stream, the access log, the
    item-item blend, the user sample and run length), so every step between the two figures
    has its own row."""
    base_dir = Path(args.models_dir) / args.name
    version = args.version or list_versions(base_dir)[0]
    users = json.loads((base_dir / str(version) / "user_ids.json").read_text())
    rng = np.random.default_rng(0)
    five_hundred = [users[i] for i in rng.choice(len(users), PLAIN_USERS, replace=False)]
    two_thousand = [users[i] for i in np.random.default_rng(1).integers(0, len(users), 2000)]
    floor = "-m uvicorn bench.floor_app:app --host 127.0.0.1 --port {port}".split()
    trimmed = [*floor, "--no-access-log", "--log-level", "warning"]
    serve = [
        "-m",
        "cli",
        "serve",
        "--models-dir",
        str(Path(args.models_dir).resolve()),
        "--name",
        args.name,
    ]
    pinned = {"RECSYS_MODEL_VERSION": str(version)}
    quiet = {**pinned, "RECSYS_ACCESS_LOG": "false"}
    # (label, server argv, its environment, users for /recommend/{user} or None for GET /,
    # seconds); the first two are the floors the ratios are taken against.
    cases = [
        ("floor: GET /, uvicorn's defaults (its access log on)", floor, {}, None, PLAIN_SECONDS),
        ("floor: GET /, bench/serve.py's flags (no access log)", trimmed, {}, None, PLAIN_SECONDS),
        (
            "floor: /recommend's requests, bench/serve.py's flags",
            trimmed,
            {},
            five_hundred,
            PLAIN_SECONDS,
        ),
        (
            "recsys serve, defaults: the plain measurement",
            serve,
            pinned,
            five_hundred,
            PLAIN_SECONDS,
        ),
        ("recsys serve, access log off", serve, quiet, five_hundred, PLAIN_SECONDS),
        (
            "recsys serve, trained users' blend scores not kept (RECSYS_BLEND_CACHE_MB=0)",
            serve,
            {**pinned, "RECSYS_BLEND_CACHE_MB": "0"},
            five_hundred,
            PLAIN_SECONDS,
        ),
        (
            "recsys serve, defaults, bench/serve.py's sample (2,000 users, 5 s)",
            serve,
            pinned,
            two_thousand,
            5,
        ),
    ]
    if args.plain_no_blend:
        other = {"RECSYS_MODEL_VERSION": str(args.plain_no_blend)}
        cases += [
            (
                f"recsys serve, no item-item blend (version {args.plain_no_blend})",
                serve,
                other,
                five_hundred,
                PLAIN_SECONDS,
            ),
            (
                "recsys serve, no blend, access log off",
                serve,
                {**other, "RECSYS_ACCESS_LOG": "false"},
                five_hundred,
                PLAIN_SECONDS,
            ),
        ]
    print(f"plain measurement: {args.name}/{version}, {PLAIN_CONNECTIONS} connections, one worker")
    rows = []
    for n, (label, argv, env, sample, seconds) in enumerate(cases):
        env = {"RECSYS_DATA_DIR": tempfile.mkdtemp(prefix="plain-store-"), **env}
        ready = "/ready" if argv is serve else "/"
        with Server([sys.executable, *argv], env, ready, logs / f"plain-{n}.log") as server:
            url, lua = (
                (server.base + "/", "")
                if sample is None
                else (server.base, lua_get_random(sample, "/recommend/", ""))
            )
            wrk(url, PLAIN_CONNECTIONS, 2, lua)  # warm-up, not counted
            result = wrk(url, PLAIN_CONNECTIONS, seconds, lua)
        rows.append((label, result))
        print(
            f"  {label:<70} {result['rps']:>7,.0f} req/s  p50 {result['p50']:6.2f}  "
            f"p99 {result['p99']:6.2f} ms",
            flush=True,
        )
    default, bare, like = (rows[k][1]["rps"] for k in range(3))
    # What this script's usual table reports instead: the ratio to the "physical limit"
    # 1 / (1/floor + compute), which credits the in-process ranking as irreducible.
    compute, _ = compute_seconds(base_dir / str(version))
    limit = 1 / (1 / like + compute)
    print(
        f"\ncompute (one user's top-10 in process, version {version}): {compute * 1e3:.3f} ms; "
        f"limit 1 / (1/like-for-like floor + compute) = {limit:,.0f} req/s"
    )
    print(
        "\n| case | req/s | p99 ms | ratio to uvicorn's defaults | ratio to the trimmed floor "
        "| ratio to the limit (bench/serve.py's figure) |"
    )
    print("|---|---|---|---|---|---|")
    for label, r in rows:
        to_limit = f"{r['rps'] / limit:.2f}" if label.startswith("recsys") else "-"
        print(
            f"| {label} | {r['rps']:,.0f} | {r['p99']:.1f} | {r['rps'] / default:.2f} | "
            f"{r['rps'] / bare:.2f} | {to_limit} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models-dir", default="models")
    parser.add_argument("--name", default="movielens")
    parser.add_argument("--version", type=int, help="default: the newest")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", default="1,32,128")
    parser.add_argument("--log-dir", default=None, help="server logs (default: a temp dir)")
    parser.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the service's JSON access log (default on, as the service runs by default)",
    )
    parser.add_argument("--only", default="", help="run only the cases whose name has this text")
    parser.add_argument(
        "--plain",
        action="store_true",
        help="the plain measurement (recsys serve's defaults against uvicorn's) and each "
        "difference from this script's own, one at a time",
    )
    parser.add_argument(
        "--plain-no-blend",
        type=int,
        metavar="VERSION",
        help="with --plain: a version of the same model without item-item",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk (Debian's package)")
    base_dir = Path(args.models_dir) / args.name
    version = args.version or list_versions(base_dir)[0]  # the newest, as the service picks it
    version_dir = base_dir / str(version)
    connections = [int(c) for c in args.connections.split(",")]
    logs = Path(args.log_dir or tempfile.mkdtemp(prefix="serve-bench-"))
    logs.mkdir(parents=True, exist_ok=True)
    if args.plain:
        plain_measurement(args, logs)
        return

    compute, shape = compute_seconds(version_dir)
    print(
        f"model {args.name}/{version}: {shape['users']:,} users x {shape['items']:,} items, "
        f"K {shape['factors']}, /recommend from {shape['source']}; workers {args.workers}; "
        f"wrk {args.duration}s per case"
    )
    print(f"compute (one user's top-10, in process, 1 BLAS thread): {compute * 1e3:.3f} ms")

    users = json.loads((version_dir / "user_ids.json").read_text())
    items = json.loads((version_dir / "item_ids.json").read_text())
    rng = np.random.default_rng(1)
    sample_users = [users[i] for i in rng.integers(0, len(users), 2000)]
    pairs = [
        {"user_id": users[u], "item_id": items[i]}
        for u, i in zip(
            rng.integers(0, len(users), 1000), rng.integers(0, len(items), 1000), strict=True
        )
    ]
    batch_users = [users[i] for i in rng.integers(0, len(users), 100)]
    uvicorn = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.floor_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        str(args.workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    service = [sys.executable, "-m", "app"]
    env = {
        "RECSYS_MODELS_DIR": str(Path(args.models_dir).resolve()),
        "RECSYS_MODEL_NAME": args.name,
        "RECSYS_MODEL_VERSION": str(version),
        "RECSYS_WORKERS": str(args.workers),
        # The JSON access log stays on (the default), written to the server's log file.
        "RECSYS_ACCESS_LOG": "true" if args.access_log else "false",
    }
    rows: list[tuple[str, int, dict[str, float]]] = []

    def run(name: str, url: str, lua: str) -> None:
        if args.only not in name and not name.startswith("floor"):
            return
        for c in connections:
            result = wrk(url, c, args.duration, lua)
            rows.append((name, c, result))
            print(
                f"  {name:<34} c={c:<4} {result['rps']:>9,.0f} req/s  p50 {result['p50']:7.2f}"
                f"  p95 {result['p95']:7.2f}  p99 {result['p99']:7.2f} ms",
                flush=True,
            )

    def run_predicts(base: str, batching: str) -> None:
        for size in (1, 1000):
            body = lua_post({"instances": pairs[:size]})
            run(f"POST /predict {size} (batching {batching})", base + "/predict", body)

    recommend_lua = lua_get_random(sample_users, "/recommend/", "?n=10")
    with Server(uvicorn, {}, "/", logs / "floor.log") as floor_server:
        run("floor (bare FastAPI async JSON)", floor_server.base + "/", "")
        # The same endpoint under the request stream /recommend gets (wrk's Lua picks a user
        # per request, which costs wrk CPU on the shared cores): the like-for-like floor.
        run("floor, /recommend's requests", floor_server.base, recommend_lua)
    floor = {c: r["rps"] for name, c, r in rows if name.startswith("floor (")}
    same = {c: r["rps"] for name, c, r in rows if name.startswith("floor,")}

    with Server(service, env, "/ready", logs / "service.log") as server:
        print(f"start to ready: {server.start_to_ready:.2f} s")
        first = first_predict_ms(server.base, pairs[0]["user_id"], pairs[0]["item_id"])
        print(f"first /predict after ready: {first:.1f} ms")
        print(f"memory per serving process: {server.worker_memory()}")
        run("GET /health", server.base + "/health", "")
        run("GET /recommend/{user} n=10", server.base, recommend_lua)
        for name, path, lua in feature_cases(version_dir, sample_users, items, pairs):
            run(name, server.base + path, lua)
        run_predicts(server.base, "on")
        run(
            "POST /recommend 100 users n=10",
            server.base + "/recommend",
            lua_post({"user_ids": batch_users, "n": 10}),
        )
        memory_after = server.worker_memory()
    with Server(
        service, {**env, "RECSYS_PREDICT_BATCHING": "false"}, "/ready", logs / "off.log"
    ) as server:
        run_predicts(server.base, "off")

    print(f"memory per serving process after the load: {memory_after}")
    print(
        "\n/recommend against its physical limit 1 / (1/floor + compute), with the floor at `/`"
        " and driven by /recommend's own requests (same wrk script):"
    )
    print(
        "| connections | floor / same-requests floor req/s | limit req/s | /recommend req/s | "
        "ratio to limit (same-requests) | p50 ms | p99 ms |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, c, r in rows:
        if name.startswith("GET /recommend"):
            limit = 1 / (1 / floor[c] + compute)  # noqa: B023
            like = 1 / (1 / same[c] + compute)  # noqa: B023
            print(
                f"| {c} | {floor[c]:,.0f} / {same[c]:,.0f} | {limit:,.0f} / {like:,.0f} | "
                f"{r['rps']:,.0f} | {r['rps'] / limit:.2f} (**{r['rps'] / like:.2f}**) | "
                f"{r['p50']:.2f} | {r['p99']:.1f} |"
            )
    plain = {c: r for name, c, r in rows if name.startswith("GET /recommend/{user} n=10")}
    print("\nEach feature against a plain /recommend in the same run (cost = plain / feature):")
    print("| case | connections | req/s | p99 ms | cost | met (<= 1.5x) |")
    print("|---|---|---|---|---|---|")
    for name, c, r in rows:
        if name.startswith(FEATURE) and c in plain:
            cost = plain[c]["rps"] / r["rps"]
            target = 1.0 if "/similar" in name else 1.5  # /similar: at least as fast
            print(
                f"| {name[len(FEATURE) :]} | {c} | {r['rps']:,.0f} | {r['p99']:.1f} | "
                f"{cost:.2f}x | {'yes' if cost <= target else 'NO'} (<= {target}x) |"
            )
    single = {c: r["rps"] for name, c, r in rows if name.startswith("GET /recommend")}
    print("\nbatch recommend, users/s (100 users a call) against one call per user:")
    for name, c, r in rows:
        if name.startswith("POST /recommend") and c in single:
            print(
                f"  c={c}: {r['rps'] * 100:,.0f} users/s vs {single[c]:,.0f} "
                f"({r['rps'] * 100 / single[c]:.1f}x)"
            )
    print("\ndynamic batching, /predict req/s on / off:")
    by = {(name, c): r for name, c, r in rows}
    for size in (1, 1000):
        for c in connections:
            on = by.get((f"POST /predict {size} (batching on)", c))
            off = by.get((f"POST /predict {size} (batching off)", c))
            if on is None or off is None:
                continue
            print(
                f"  {size:>4} instances c={c:<4} {on['rps']:>8,.0f} / {off['rps']:>8,.0f} "
                f"({on['rps'] / off['rps']:.2f}x); p50 {on['p50']:.2f} / {off['p50']:.2f} ms"
            )


if __name__ == "__main__":
    main()
