"""Cold start, strong generalisation, on ml-100k: users the model never saw, folded in from their
first k ratings.

Protocol (the live-events issue's): users are cut at random (seed 42) into 80% training users,
10% validation users and 10% test users; a version is trained on the training users alone.
For each held-out user, their ratings are ordered by time; the first k (k = 1, 3, 5, 10, 20) are
what the service is told, and the rest are scored: NDCG@10 of the top 10 (relevant = a remaining
rating >= 4, the k told items never recommended) and RMSE of the predicted rating on the
remaining ratings. Users with no relevant remaining item after their 20th rating are left out,
so every k scores the same users.

Side by side:
- popularity: the most-rated items of the training data;
- fold-in: the service's own solvers (`app.events.solvers`) against the frozen version; its
  prior strengths and popularity weight are chosen on the validation users (grid below) and
  reported once on the test users;
- the service: the same test users' first k ratings sent through POST /events to a running
  `recsys serve`, scored through GET /recommend and POST /predict (what a client sees);
- a full retrain on the training users plus every test user's first k ratings (one version
  per k, the default `recsys train`), scored on the same remaining ratings.

    PYTHONPATH=. .venv/bin/python bench/coldstart.py [--data-dir data] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from app.events.foldin import Folder  # noqa: E402
from app.events.solvers import RIDGE_STRENGTH, TRUST, Trust  # noqa: E402
from app.serving.loader import LoadedVersion, load_version  # noqa: E402
from artifact.layout import list_versions  # noqa: E402
from artifact.topn import score, top_n  # noqa: E402
from training.data.loaders import load_dataset  # noqa: E402
from training.data.ratings import RatingsData  # noqa: E402

KS = (1, 3, 5, 10, 20)
TOP = 10
RELEVANT_FROM = 4.0
SEED = 42
STRENGTHS = (1.0, 3.0, 10.0, 30.0, 100.0)
POPULARITY_WEIGHTS = (0.0, 2.0, 4.0, 8.0, 16.0, 64.0)
HALVES = (3.0, 10.0, 30.0, 100.0)


@dataclass
class HeldOut:
    """One held-out user's ratings in time order, as item rows of the version (unknown items
    dropped)."""

    user: str
    items: list[str]
    rows: np.ndarray
    ratings: np.ndarray


def cut_users(ratings: pd.DataFrame, seed: int = SEED) -> tuple[set, set, set]:
    users = np.array(sorted(ratings["user_id"].unique()))
    order = np.random.default_rng(seed).permutation(len(users))
    tenth = len(users) // 10
    test, validation = set(users[order[:tenth]]), set(users[order[tenth : 2 * tenth]])
    return set(users[order[2 * tenth :]]), validation, test


def train(frame: pd.DataFrame, items, work: Path, name: str) -> Path:
    """Train (or reuse) the default version on `frame`, with no test split: validation chooses
    the epochs, then the refit learns every rating (a test split would hide some held-out
    users' few ratings from the retrain)."""
    from training.config import TrainConfig
    from training.pipeline import train_version

    base = work / "models"
    if list_versions(base / name):
        return base / name / str(list_versions(base / name)[0])
    started = time.perf_counter()
    done = train_version(
        RatingsData(frame, items, f"coldstart {name}"), base, name, TrainConfig(test=0.0),
        log=lambda _: 0,
    )  # fmt: skip
    print(f"  trained {name} on {len(frame):,} ratings in {time.perf_counter() - started:.0f} s")
    return done.path


def held_out(ratings: pd.DataFrame, users: set, loaded: LoadedVersion) -> list[HeldOut]:
    part = ratings[ratings["user_id"].isin(users)].copy()
    part["row"] = part["item_id"].map(loaded.item_index)
    part = part.dropna(subset=["row"]).sort_values(["user_id", "timestamp", "item_id"])
    out = []
    for user, frame in part.groupby("user_id", sort=True):
        rows = frame["row"].to_numpy(np.int64)
        r = frame["rating"].to_numpy(np.float64)
        if len(rows) > max(KS) and (r[max(KS) :] >= RELEVANT_FROM).any():
            out.append(HeldOut(str(user), frame["item_id"].tolist(), rows, r))
    return out


def ndcg(ranked: np.ndarray, relevant: np.ndarray) -> float:
    hits = np.isin(ranked[:TOP], relevant).astype(np.float64)
    discounts = 1.0 / np.log2(np.arange(2, TOP + 2))
    ideal = discounts[: min(len(relevant), TOP)].sum()
    return float((hits * discounts[: len(hits)]).sum() / ideal) if ideal else float("nan")


def ranking_of(scores: np.ndarray, told: np.ndarray) -> np.ndarray:
    return top_n(scores.astype(np.float64), TOP, told)[0]


def rest(user: HeldOut, k: int) -> tuple[np.ndarray, np.ndarray]:
    return user.rows[k:], user.ratings[k:]


def relevant_rest(user: HeldOut, k: int) -> np.ndarray:
    rows, r = rest(user, k)
    return rows[r >= RELEVANT_FROM]


def folds(loaded: LoadedVersion, ridge_strength: float, softmax_strength: float):
    """The service's own solvers for `loaded` (as `app.events.foldin.Folder` builds them), at
    these prior strengths."""
    folder = Folder(loaded)
    assert folder.ridge is not None and folder.softmax is not None
    softmax = folder.softmax
    softmax.strength = softmax_strength
    return dataclasses.replace(folder.ridge, strength=ridge_strength), softmax


def evaluate_offline(loaded: LoadedVersion, users: list[HeldOut], ridge_strength, trust: Trust):
    """{k: {"ndcg": .., "rmse": .., "ndcg_by_rating": ..}} of the fold-in with these settings."""
    ridge, softmax = folds(loaded, ridge_strength, 1.0)
    low, high = loaded.manifest.rating_range
    log_pop = np.log1p(np.bincount(loaded.seen.indices, minlength=loaded.n_items))
    out = {}
    for k in KS:
        gains, errors, by_rating = [], [], []
        for u in users:
            told_rows, told_r = u.rows[:k], u.ratings[:k]
            p = softmax.solve(told_rows, told_r, strength=trust.strength)
            s = score(p.astype(np.float64), softmax.item_factors, softmax.item_bias)
            s = s + trust.popularity_weight(k) * log_pop
            gains.append(ndcg(ranking_of(s, told_rows), relevant_rest(u, k)))
            pu, bu = ridge.solve(told_rows, told_r)
            rows, r = rest(u, k)
            predicted = np.clip(
                loaded.manifest.global_mean + bu + ridge.item_factors[rows] @ pu
                + (ridge.item_bias[rows] if ridge.item_bias is not None else 0.0),
                low, high,
            )  # fmt: skip
            errors.append((predicted - r) ** 2)
            rs = score(pu.astype(np.float64), ridge.item_factors, ridge.item_bias)
            by_rating.append(ndcg(ranking_of(rs, told_rows), relevant_rest(u, k)))
        out[k] = {
            "ndcg": float(np.nanmean(gains)),
            "rmse": float(np.sqrt(np.mean(np.concatenate(errors)))),
            "ndcg_by_rating": float(np.nanmean(by_rating)),
        }
    return out


def popularity(loaded: LoadedVersion, users: list[HeldOut]) -> dict:
    counts = np.bincount(loaded.seen.indices, minlength=loaded.n_items).astype(np.float64)
    return {
        k: {"ndcg": float(np.nanmean([
            ndcg(ranking_of(counts.copy(), u.rows[:k]), relevant_rest(u, k)) for u in users
        ]))}
        for k in KS
    }  # fmt: skip


def choose(loaded: LoadedVersion, validation: list[HeldOut]) -> tuple[float, Trust]:
    """On validation users: the trust whose worst margin over popularity (NDCG@10, over every
    k) is largest, since popularity is the floor; then the ridge strength with the best RMSE
    averaged over every k."""
    _, softmax = folds(loaded, 1.0, 1.0)
    log_pop = np.log1p(np.bincount(loaded.seen.indices, minlength=loaded.n_items))
    floor = {k: v["ndcg"] for k, v in popularity(loaded, validation).items()}
    gains: dict[tuple, list[float]] = {}
    for s in STRENGTHS:
        for k in KS:
            solved = [
                score(
                    softmax.solve(u.rows[:k], u.ratings[:k], strength=s).astype(np.float64),
                    softmax.item_factors, softmax.item_bias,
                )
                for u in validation
            ]  # fmt: skip
            for weight, half in itertools.product(POPULARITY_WEIGHTS, HALVES):
                t = Trust(s, weight, half)
                g = [
                    ndcg(ranking_of(x + t.popularity_weight(k) * log_pop, u.rows[:k]),
                         relevant_rest(u, k))
                    for x, u in zip(solved, validation, strict=True)
                ]  # fmt: skip
                gains.setdefault((s, weight, half), []).append(float(np.nanmean(g)))
    margin = {c: min(g - floor[k] for g, k in zip(v, KS, strict=True)) for c, v in gains.items()}
    ranked = sorted(margin, key=lambda c: -margin[c])
    for c in ranked[:5]:
        print(f"  trust {c}: NDCG@10 by k {np.round(gains[c], 4)}, worst margin {margin[c]:+.4f}")
    chosen = Trust(*ranked[0])
    best_r = None
    for s in STRENGTHS:
        got = evaluate_offline(loaded, validation, s, chosen)
        mean = float(np.mean([got[k]["rmse"] for k in KS]))
        print(f"  ridge strength {s:g}: mean RMSE {mean:.4f}")
        if best_r is None or mean < best_r[0]:
            best_r = (mean, s)
    assert best_r is not None
    return best_r[1], chosen


def retrained(ratings, base, items, test_users: list[HeldOut], work: Path) -> dict:
    """Per k: a version trained on the training users plus every test user's first k ratings,
    scored on the same remaining ratings."""
    out = {}
    by_user = {u.user: u for u in test_users}
    for k in KS:
        told = (
            ratings[ratings["user_id"].isin(by_user)]
            .sort_values(["user_id", "timestamp", "item_id"])
            .groupby("user_id")
            .head(k)
        )
        loaded = load_version(train(pd.concat([base, told]), items, work, f"retrain-k{k}"))
        v, rv = loaded.vectors, loaded.rating_vectors
        low, high = loaded.manifest.rating_range
        gains, errors = [], []
        for u in test_users:
            row = loaded.user_index[u.user]
            rows = np.fromiter((loaded.item_index[i] for i in u.items), np.int64)
            scores = score(v.user_factors[row].astype(np.float64), v.item_factors, v.item_bias)
            ranked = ranking_of(scores, rows[:k])
            gains.append(ndcg(ranked, rows[k:][u.ratings[k:] >= RELEVANT_FROM]))
            rest_rows = rows[k:]
            predicted = rv.user_factors[row] @ rv.item_factors[rest_rows].T + rv.user_offset[row]
            if rv.item_bias is not None:
                predicted = predicted + rv.item_bias[rest_rows]
            errors.append((np.clip(predicted, low, high) - u.ratings[k:]) ** 2)
        out[k] = {
            "ndcg": float(np.nanmean(gains)),
            "rmse": float(np.sqrt(np.mean(np.concatenate(errors)))),
        }
        print(f"  retrain k={k}: {out[k]}")
    return out


def read_cost(loaded: LoadedVersion, test_users: list[HeldOut], repeats: int = 2000) -> dict:
    """Microseconds per /recommend computation (n=10, seen excluded) for trained users and for
    folded-in ones (10 live ratings each), interleaved, one BLAS thread: what the fold-in adds
    to a read once its vectors are solved."""
    from app.events.changes import Change
    from app.events.view import VersionView
    from app.ranking.recommend import recommend

    live = VersionView.empty(loaded)
    changes, next_id = [], 1
    for u in test_users:
        for i in range(10):
            changes.append(Change(next_id, "rating", u.user, u.items[i], float(u.ratings[i]), i))
            next_id += 1
    users, _ = live.follow(live.log.apply(changes))
    live.refold_users(users)
    trained = list(loaded.user_index)[:100]
    folded = [u.user for u in test_users][:100]
    times = {"trained": [], "fold_in": []}
    for r in range(repeats):
        for label, pool in (("trained", trained), ("fold_in", folded)):
            user = pool[r % len(pool)]
            started = time.perf_counter_ns()
            got = recommend(live.user(user), TOP)
            times[label].append(time.perf_counter_ns() - started)
            assert got.source == ("model" if label == "trained" else "fold_in")
    med = {k: float(np.median(v)) / 1e3 for k, v in times.items()}
    return {**med, "ratio": med["fold_in"] / med["trained"]}


def through_the_service(path: Path, test_users: list[HeldOut], loaded: LoadedVersion) -> dict:
    """Per k: each test user's ratings up to their k-th sent through POST /events to a running
    `python -m app` serving `path`, then GET /recommend (n=10) and POST /predict on the rest.
    The service counts every test user's events in its popularity, as it would live."""
    import httpx

    from bench.serve import Server

    store = f"sqlite:///{tempfile.mkdtemp(prefix='coldstart-')}/events.sqlite3"
    env = {
        "RECSYS_MODELS_DIR": str(path.parent.parent),
        "RECSYS_MODEL_NAME": path.parent.name,
        "RECSYS_STORE_URL": store,
        "RECSYS_ACCESS_LOG": "false",
    }
    logs = Path(tempfile.mkdtemp(prefix="coldstart-logs-"))
    out, sent = {}, 0
    with Server([sys.executable, "-m", "app"], env, "/ready", logs / "app.log") as server:
        client = httpx.Client(base_url=server.base, timeout=30)
        for k in KS:
            events = [
                {"user_id": u.user, "item_id": u.items[i], "rating": float(u.ratings[i]),
                 "timestamp": i, "event_id": f"{u.user}-{i}"}
                for u in test_users for i in range(sent, k)
            ]  # fmt: skip
            client.post("/events", json={"events": events}).raise_for_status()
            sent = k
            gains, errors, sources = [], [], set()
            # Popularity as the service counts it (training raters plus live ones), for a user
            # with no history; each test user's told items left out.
            popular = client.get("/recommend/nobody", params={"n": TOP + k}).json()["items"]
            popular_rows = np.array([loaded.item_index[i["item_id"]] for i in popular])
            floor = []
            for u in test_users:
                mine = popular_rows[~np.isin(popular_rows, u.rows[:k])][:TOP]
                floor.append(ndcg(mine, relevant_rest(u, k)))
                body = client.get(f"/recommend/{u.user}", params={"n": TOP}).json()
                sources.add(body["source"])
                ranked = np.array([loaded.item_index[i["item_id"]] for i in body["items"]])
                gains.append(ndcg(ranked, relevant_rest(u, k)))
                pairs = [{"user_id": u.user, "item_id": i} for i in u.items[k:]]
                predicted = client.post("/predict", json={"instances": pairs}).json()
                errors.append((np.array(predicted["predictions"]) - u.ratings[k:]) ** 2)
            out[k] = {
                "ndcg": float(np.nanmean(gains)),
                "rmse": float(np.sqrt(np.mean(np.concatenate(errors)))),
                "sources": sorted(sources),
                "popularity_ndcg": float(np.nanmean(floor)),
            }
            print(f"  service k={k}: {out[k]}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--work-dir", default="/tmp/recsys-coldstart")
    parser.add_argument("--skip-retrain", action="store_true")
    args = parser.parse_args()
    work = Path(args.work_dir)
    data = load_dataset(args.dataset, args.data_dir)
    ratings = data.ratings
    train_users, validation_users, test_users = cut_users(ratings)
    base = ratings[ratings["user_id"].isin(train_users)]
    path = train(base, data.items, work, "base")
    loaded = load_version(path)
    validation = held_out(ratings, validation_users, loaded)
    test = held_out(ratings, test_users, loaded)
    print(
        f"{len(train_users)} training users; {len(validation)} validation and {len(test)} "
        "test users scored"
    )
    with threadpool_limits(1):
        ridge_strength, chosen = choose(loaded, validation)
        print("chosen on validation: ridge strength", ridge_strength, chosen)
        report = {
            "ridge_strength": ridge_strength,
            "trust": dataclasses.asdict(chosen),
            "popularity": popularity(loaded, test),
            "fold_in": evaluate_offline(loaded, test, ridge_strength, chosen),
            "fold_in_shipped": evaluate_offline(loaded, test, RIDGE_STRENGTH, TRUST),
        }
    with threadpool_limits(1):
        report["read_cost_us"] = read_cost(loaded, test)
    print("  read cost:", report["read_cost_us"])
    report["service"] = through_the_service(path, test, loaded)
    if not args.skip_retrain:
        report["retrain"] = retrained(ratings, base, data.items, test, work)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
