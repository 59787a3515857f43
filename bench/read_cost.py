"""What recording every answer as an impression costs a read: GET /recommend/{user} under wrk
against this tree and another tree of this project (the code before impressions), alternated
round by round in one run, same version, same users, one worker each.

    git worktree add /tmp/before <commit>
    PYTHONPATH=. .venv/bin/python bench/read_cost.py --models-dir models --name movielens \\
        --checkout /tmp/before [--rounds 3] [--duration 10] [--connections 32]

Each round starts both services afresh (their own empty stores) and drives each for
`--duration` seconds; the table gives every round and the ratio of the medians (the issue's
bound: reads within 1.1x of the cost before, that is a ratio of requests/s of at least 0.91).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from artifact.layout import USER_IDS, list_versions
from bench.serve import ROOT, Server, lua_get_random, wrk


def measure(tree: Path, args, users: list[str], logs: Path, label: str) -> dict[str, float]:
    env = {
        "PYTHONPATH": str(tree),
        "RECSYS_MODELS_DIR": str(args.models_dir.resolve()),
        "RECSYS_MODEL_NAME": args.name,
        "RECSYS_STORE_URL": f"sqlite:///{tempfile.mkdtemp(prefix='read-cost-')}/events.sqlite3",
        "RECSYS_POLL_SECONDS": "0",
    }
    with Server([sys.executable, "-m", "app"], env, "/ready", logs / f"{label}.log", tree) as s:
        lua = lua_get_random(users, "/recommend/", "?n=10")
        wrk(s.base + "/recommend/1", args.connections, 2, lua)  # warm
        return wrk(s.base + "/recommend/1", args.connections, args.duration, lua)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--name", default="movielens")
    parser.add_argument("--checkout", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    version = list_versions(args.models_dir / args.name)[0]
    users = json.loads((args.models_dir / args.name / str(version) / USER_IDS).read_text())[:500]
    logs = Path(tempfile.mkdtemp(prefix="read-cost-logs-"))
    trees = {"this tree": ROOT, "before": args.checkout.resolve()}
    results: dict[str, list[dict[str, float]]] = {label: [] for label in trees}
    print(f"| round | code | requests/s | p50 ms | p99 ms |  (logs in {logs})")
    print("|---|---|---|---|---|")
    for k in range(args.rounds):
        order = list(trees.items()) if k % 2 == 0 else list(trees.items())[::-1]
        for label, tree in order:
            got = measure(tree, args, users, logs, f"{label.replace(' ', '-')}-{k}")
            results[label].append(got)
            row = f"| {k + 1} | {label} | {got['rps']:,.0f} | {got['p50']:.2f} | {got['p99']:.2f} |"
            print(row, flush=True)
    now = statistics.median(r["rps"] for r in results["this tree"])
    before = statistics.median(r["rps"] for r in results["before"])
    print(
        f"\nmedian requests/s: this tree {now:,.0f}, before {before:,.0f}: "
        f"ratio {now / before:.3f} (cost {before / now:.3f}x)"
    )


if __name__ == "__main__":
    main()
