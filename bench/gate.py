"""The retrain loop's gate on ml-100k: does it refuse a weak candidate and publish an ordinary
one that learned more data, and how long does a round take?

    PYTHONPATH=. .venv/bin/python bench/gate.py --data-dir data [--arrive 0.2]

ml-100k is cut by time: the oldest `1 - arrive` of its ratings are the base data, and version 1
(`recsys train`'s defaults: mf_bias, its retrieval vectors, item-item neighbours) is trained on
them (`recsys train --ratings base/ratings.csv --items base/movies.csv`). The newest `arrive`
then reach a fresh event store as the service would have them (their own timestamps, in time
order; many of their users are new). Rounds, each `recsys retrain --once` on the same base
files and the store as it is, in this order:

1. "broken": `--lr 1e-5` (its rating model barely moved from its initialisation),
2. "undertrained": `--epochs 1 --retrieval-epochs 1 --no-item-item`,
3. "ordinary": the defaults, the base data plus the store: the one that should be published.

Each round's own lines of output (training's left out) follow the table.

Each row: the verdict, the gate's NDCG@10 and RMSE for the served version and the candidate
on the held-out newest ratings, and the round's wall time (candidate training, judging, and
when published, the refit with the holdout included).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app.events.changes import Rating
from app.events.store import EventStore
from loop.round import last_round
from training.data.loaders import load_dataset
from training.data.ratings import RatingsData

NAME = "gate"
RECSYS = [sys.executable, "-m", "cli"]
CANDIDATES = {
    "broken": ["--lr", "1e-5"],
    "undertrained": ["--epochs", "1", "--retrieval-epochs", "1", "--no-item-item"],
    "ordinary": [],
}


def cut(data: RatingsData, arrive: float) -> tuple[RatingsData, list[Rating]]:
    ratings = data.ratings.sort_values(["timestamp", "user_id", "item_id"], kind="stable")
    n_base = int(round((1 - arrive) * len(ratings)))
    base = RatingsData(ratings.iloc[:n_base], data.items, data.source)
    later = ratings.iloc[n_base:]
    stream = [
        Rating(str(u), str(i), float(r), int(t))
        for u, i, r, t in zip(
            later["user_id"], later["item_id"], later["rating"], later["timestamp"], strict=True
        )
    ]
    return base, stream


def write_base(base: RatingsData, folder: Path) -> list[str]:
    """The base data as a user's own files; the flags that read them."""
    folder.mkdir()
    base.ratings.rename(columns={"user_id": "userId", "item_id": "movieId"})[
        ["userId", "movieId", "rating", "timestamp"]
    ].to_csv(folder / "ratings.csv", index=False)
    items = base.items.assign(genres=base.items["genres"].map("|".join))
    items.rename(columns={"item_id": "movieId"})[["movieId", "title", "genres"]].to_csv(
        folder / "movies.csv", index=False
    )
    return ["--ratings", str(folder / "ratings.csv"), "--items", str(folder / "movies.csv")]


def recsys(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RECSYS, *args], capture_output=True, text=True, check=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--arrive", type=float, default=0.2)
    parser.add_argument("--tolerance", type=float, default=0.02)
    args = parser.parse_args()
    data = load_dataset("ml-100k", args.data_dir)
    base, stream = cut(data, args.arrive)
    work = Path(tempfile.mkdtemp(prefix="bench-gate-"))
    files = write_base(base, work / "base")
    models = ["--models-dir", str(work / "models"), "--name", NAME]
    started = time.perf_counter()
    done = recsys("train", *files, *models)
    assert done.returncode == 0, done.stderr
    trained = time.perf_counter() - started
    url = f"sqlite:///{work}/events.sqlite3"
    store = EventStore(url)
    store.open()
    store.write([stream[k : k + 500] for k in range(0, len(stream), 500)])
    store.close()
    new_users = len({r.user_id for r in stream} - set(base.ratings["user_id"].astype(str)))
    print(f"base {len(base.ratings):,} ratings (version 1 trained in {trained:.0f} s); "
          f"{len(stream):,} arrived in the store, {new_users} of their "
          f"{len({r.user_id for r in stream})} users new; tolerance {args.tolerance:g}; "
          f"work in {work}\n", flush=True)  # fmt: skip
    print("| candidate | flags | verdict | held out (users) | served NDCG@10 / RMSE | "
          "candidate NDCG@10 / RMSE | judged users / pairs | round |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    outputs = {}
    for label, flags in CANDIDATES.items():
        done = recsys("retrain", "--once", "--store", url, *files, *models,
                      "--tolerance", str(args.tolerance), *flags)  # fmt: skip
        outputs[label] = done.stdout
        store = EventStore(url)
        store.open()
        record = last_round(store, NAME)
        store.close()
        assert record is not None, done.stderr
        b, c = record.get("baseline", {}), record.get("candidate", {})
        published = record.get("published_version")
        verdict = record["verdict"] + (f" (version {published})" if published else "")
        print(f"| {label} | `{' '.join(flags) or 'the defaults'}` | {verdict} (exit "
              f"{done.returncode}) | {record['held_out_ratings']:,} ({record['held_out_users']}) "
              f"| {_f(b.get('ndcg'))} / {_f(b.get('rmse'))} | {_f(c.get('ndcg'))} / "
              f"{_f(c.get('rmse'))} | {record.get('judged_users')} / "
              f"{record.get('judged_pairs')} | {record['seconds']:.0f} s |",
              flush=True)  # fmt: skip
        if record["verdict"] == "refused":
            print(f"|  | | reason: {record['reason']} | | | | | |", flush=True)
    for label, output in outputs.items():  # each round's own lines, training's left out
        mine = [x for x in output.splitlines() if x.startswith(("round", "gate:"))]
        print(f"\n{label}:\n" + "\n".join(mine))


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


if __name__ == "__main__":
    main()
