"""The online loop replayed on ml-100k: held-out users receive /recommend lists and rate what
they really rated, through the running service, and the service's own online metrics and
experiments say which version serves them better.

    PYTHONPATH=. .venv/bin/python bench/replay.py --data-dir data [--held-out 0.4] [--rounds 5]
        [--users new|known] [--weak undertrained|broken]

Users are cut at random (seed 7) into training users and held-out users. With `--users new`
(the default) the held-out users are new to the versions: all their ratings are held out. With
`--users known` the versions learned the older half of each held-out user's ratings (by time)
and the newer half is held out: users coming back. Two versions are trained on the training
ratings: the default (`recsys train`'s settings) and a weaker
one: `--weak undertrained` (the default: `--epochs 1 --no-item-item --retrieval-epochs 1`) or
`--weak broken` (also `--lr 1e-5`: vectors barely moved from their initialisation,
a version that must lose). Each held-out user, in turn, posts their first `--history`
held-out ratings (by time) as a new user would (known users: none), then for `--rounds`
rounds asks GET /recommend/{user}?n=10 and rates, through POST /events with the answer's
recommendation_id, every recommended film they rated in the held-out data (their real rating:
a hit), then their next rating by time whether it was recommended or not (they came back, so
the answer could have been hit). Each case runs against a fresh service and store:

1. no experiment, the default version served, then the weak one: each version's online hit
   rate (GET /admin/online);
2. an A/B experiment (control: the default, treatment: the weak one, 50/50), and
3. an interleaved experiment between the same two: after every 10 users the report is read,
   and the table gives the number of users after which `winner` first named the default, and
   whether it ever named the weak one.

Also the service's RSS with the default version alone and with both served (the experiment's
cost in memory). The verdicts are the service's own: A/B over users' hit rates (Welch),
interleaving over users' preferences, each with the always-valid interval that `winner` uses
(the report is read 30-odd times here) and the fixed-horizon p-value beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from recsys_client import Client
from tests.faults import Service
from training.config import ItemItemConfig, RetrievalConfig, TrainConfig
from training.data.loaders import load_dataset
from training.data.ratings import RatingsData
from training.pipeline import train_version

TOKEN = "replay"  # the admin token of the services it starts
CHECK_EVERY = 10  # users between two reads of the experiment's report


def split_users(
    data: RatingsData, held_out: float, users: str, seed: int = 7
) -> tuple[RatingsData, dict]:
    ids = data.ratings["user_id"].unique()
    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(ids, int(held_out * len(ids)), replace=False))
    ratings = data.ratings
    out_rows = ratings["user_id"].isin(chosen)
    if users == "known":  # only the newer half of each chosen user's ratings is held out
        by_time = ratings.sort_values(["timestamp", "item_id"], kind="stable")
        rank = by_time.groupby("user_id").cumcount().reindex(ratings.index)
        size = ratings.groupby("user_id")["item_id"].transform("size")
        out_rows &= rank >= size // 2
    train = RatingsData(ratings[~out_rows], data.items, data.source)
    known = set(train.ratings["item_id"])  # films only held-out ratings have: nobody can serve
    out = ratings[out_rows & ratings["item_id"].isin(known)]
    held = {
        u: frame.sort_values(["timestamp", "item_id"])[["item_id", "rating"]].values.tolist()
        for u, frame in out.groupby("user_id")
    }
    return train, held


def train_both(train: RatingsData, root: Path, weak: str) -> None:
    """Version 1: the default; version 2: the weak one."""
    quiet = lambda *_: None  # noqa: E731
    train_version(train, root, "replay", TrainConfig.for_model("mf_bias"), RetrievalConfig(),
                  log=quiet, item_item=ItemItemConfig())  # fmt: skip
    rate = {"undertrained": None, "broken": 1e-5}[weak]
    train_version(train, root, "replay",
                  TrainConfig.for_model("mf_bias", epochs=1, learning_rate=rate),
                  RetrievalConfig(epochs=1, learning_rate=rate or RetrievalConfig.learning_rate),
                  log=quiet, item_item=None)  # fmt: skip


def replay_user(client: Client, user: str, ratings: list, history: int, rounds: int) -> int:
    """One held-out user's visits; how many impressions they got."""
    if history:
        client.send_events(
            {"user_id": user, "item_id": str(i), "rating": float(r)} for i, r in ratings[:history]
        )
    remaining = {str(i): float(r) for i, r in ratings[history:]}
    order = [str(i) for i, _ in ratings[history:]]
    shown = 0
    for _ in range(rounds):
        if not order:
            break
        answer = client.recommend(user, n=10)
        shown += 1
        rid = answer.recommendation_id
        hits = [i.item_id for i in answer.items if i.item_id in remaining]
        events = [{"user_id": user, "item_id": i, "rating": remaining[i], "recommendation_id": rid}
                  for i in hits]  # fmt: skip
        nxt = next((i for i in order if i not in hits), None)
        if nxt is not None:  # they came back: their next rating, recommended or not
            events.append({"user_id": user, "item_id": nxt, "rating": remaining[nxt]})
        client.send_events(events)
        for i in hits + ([nxt] if nxt else []):
            remaining.pop(i, None)
            order.remove(i)
    return shown


def rss_mb(service: Service) -> float:
    assert service.process is not None
    for line in Path(f"/proc/{service.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start(root: Path, logs: Path, label: str) -> Service:
    return Service(
        root, "replay", f"sqlite:///{tempfile.mkdtemp(prefix='replay-')}/events.sqlite3",
        logs / f"{label}.log", admin_token=TOKEN, sync_seconds=0.2, model_version=1,
    ).start()  # fmt: skip


def hit_rates(client: Client) -> dict[int, dict]:
    online = client.online(window="1d").model_dump()
    return {g["version"]: g for g in online["groups"]}


def online_case(root, logs, held, args, version: int) -> dict:
    service = start(root, logs, f"online-{version}")
    try:
        with Client(service.base, token=TOKEN, timeout=60) as client:
            if version != 1:
                client.pin_version(version)
            for user, ratings in held.items():
                replay_user(client, user, ratings, args.history, args.rounds)
            time.sleep(0.5)
            return hit_rates(client)[version]
    finally:
        service.stop()


def experiment_case(root, logs, held, args, design: dict) -> dict:
    service = start(root, logs, design["method"])
    try:
        with Client(service.base, token=TOKEN, timeout=60) as client:
            alone = rss_mb(service)
            variants = {name: v["version"] for name, v in design["variants"].items()}
            client.put_experiment("replay", design["method"], variants, design.get("split"))
            both = rss_mb(service)
            named, named_weak, impressions = None, False, 0
            for k, (user, ratings) in enumerate(held.items(), 1):
                impressions += replay_user(client, user, ratings, args.history, args.rounds)
                if k % CHECK_EVERY == 0 or k == len(held):
                    report = client.experiment("replay").model_dump()
                    winner = report["winner"]
                    named_weak |= winner is not None and report["variants"][winner]["version"] == 2
                    if winner is not None and named is None and winner in ("control", "a"):
                        named = k
            return {"report": report, "named_default_after": named, "named_weak": named_weak,
                    "users": len(held), "impressions": impressions, "rss_alone": alone,
                    "rss_both": both}  # fmt: skip
    finally:
        service.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--held-out", type=float, default=0.4)
    parser.add_argument("--history", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--weak", choices=["undertrained", "broken"], default="undertrained")
    parser.add_argument("--users", choices=["new", "known"], default="new")
    args = parser.parse_args()
    if args.users == "known":
        args.history = 0
    data = load_dataset("ml-100k", args.data_dir)
    train, held = split_users(data, args.held_out, args.users)
    work = Path(tempfile.mkdtemp(prefix="replay-"))
    logs = work / "logs"
    logs.mkdir()
    started = time.perf_counter()
    train_both(train, work / "models", args.weak)
    print(f"{len(held)} held-out users, {len(train.ratings):,} training ratings; versions trained "
          f"in {time.perf_counter() - started:.0f} s; work in {work}", flush=True)  # fmt: skip
    print("\n| version | users | impressions | could be hit | hit | hit rate (95%) | "
          "mean rating of hits | coverage |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for version, label in ((1, "1 (default)"), (2, "2 (weak)")):
        g = online_case(work / "models", logs, held, args, version)
        rate = g["hit_rate"]
        ci = f"{rate['value']:.3f} ({rate['low']:.3f}-{rate['high']:.3f})"
        print(f"| {label} | {g['users']} | {g['impressions']} | {g['could_be_hit']} | "
              f"{g['hit_impressions']} | {ci} | {g['mean_rating_of_hits']['value']:.2f} | "
              f"{g['coverage']['share']:.3f} |", flush=True)  # fmt: skip
    print("\n| experiment | users replayed | impressions | winner named the default after | "
          "named the weak one | final difference (always-valid 95%), p | fixed-horizon p | "
          "RSS one version / both |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    designs = [
        {"method": "ab", "variants": {"control": {"version": 1}, "treatment": {"version": 2}},
         "split": {"control": 0.5, "treatment": 0.5}},
        {"method": "interleave", "variants": {"a": {"version": 1}, "b": {"version": 2}}},
    ]  # fmt: skip
    for design in designs:
        out = experiment_case(work / "models", logs, held, args, design)
        report = out["report"]
        other = "treatment" if design["method"] == "ab" else "b"
        verdict = report["preference" if design["method"] == "interleave" else "difference"][other]
        after = out["named_default_after"]
        print(f"| {design['method']} | {out['users']} | {out['impressions']} | "
              f"{after if after else 'not within ' + str(out['users'])} users | "
              f"{'yes' if out['named_weak'] else 'no'} | {verdict['value']:+.3f} "
              f"({verdict['low']:+.3f} to {verdict['high']:+.3f}), p {verdict['p_value']:.2g} | "
              f"{verdict['fixed_horizon']['p_value']:.2g} | "
              f"{out['rss_alone']:,.0f} / {out['rss_both']:,.0f} MB |", flush=True)  # fmt: skip
        print(json.dumps({k: v for k, v in report.items() if k != "variants"}), file=sys.stderr)


if __name__ == "__main__":
    main()
