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
- fold-in: the service's own solvers (`app.events.solvers`) against the frozen version, ranked
  the way the service ranks a new user: (1 - b) z(vectors' score + p log(1 + raters)) +
  b z(item-item score), z standardising over the catalogue, the item-item score counting each
  told rating as r - shift; the prior strength and the shift, and p and b for each k, are
  chosen on validation users: the 90% of users outside the test users, cut
  into 5 folds, each fold scored by a version trained on the other four (about 790 users, where
  one tenth of the users, 85, left the choice to noise); reported once on the test users, and
  as the out-of-fold figure over every user (each of the six groups scored with the setting
  chosen on the other five), whose standard error is a third of the test users' alone;
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
from app.events.solvers import RIDGE_STRENGTH  # noqa: E402
from app.events.trust import TRUST, Trust  # noqa: E402
from app.serving.loader import LoadedVersion, load_version  # noqa: E402
from artifact.layout import list_versions  # noqa: E402
from artifact.topn import score, top_n  # noqa: E402
from training.data.loaders import load_dataset  # noqa: E402
from training.data.ratings import RatingsData  # noqa: E402

KS = (1, 3, 5, 10, 20)
TOP = 10
RELEVANT_FROM = 4.0
SEED = 42
STRENGTHS = (1.0, 3.0, 10.0)
POPULARITY_WEIGHTS = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 1e4)
BLENDS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7)
# What each of a new user's ratings is lowered by in their item-item scores (`Trust.shift`).
SHIFTS = (0.0, 1.0, 2.0, 3.0, 4.0)
FOLDS = 5


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


def validation_folds(users: set, seed: int = SEED + 1) -> list[set]:
    """`users` cut at random into FOLDS folds."""
    ordered = np.array(sorted(users))
    order = np.random.default_rng(seed).permutation(len(ordered))
    return [set(ordered[order[f::FOLDS]]) for f in range(FOLDS)]


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


@dataclass
class Scored:
    """One user's parts of a new user's ranking at one k: the vectors' scores (softmax fold at
    each prior strength), log(1 + raters) and the item-item scores of the k told ratings."""

    vectors: dict[float, np.ndarray]
    log_pop: np.ndarray
    item_item: dict[float, np.ndarray] | None  # per shift
    told: np.ndarray
    relevant: np.ndarray


def _z(values: np.ndarray) -> np.ndarray:
    sd = float(values.std())
    return (values - values.mean()) / (sd if sd > 0 else 1.0)


def ranked_by(
    part: Scored, strength: float, popularity_weight: float, blend: float, shift: float
) -> float:
    """NDCG@10 of the service's ranking of a new user (app.ranking.recommend's fold-in path)."""
    scores = part.vectors[strength] + popularity_weight * part.log_pop
    if blend and part.item_item is not None:
        scores = (1 - blend) * _z(scores) + blend * _z(part.item_item[shift])
    return ndcg(ranking_of(scores, part.told), part.relevant)


def scored(loaded: LoadedVersion, users: list[HeldOut], strengths=STRENGTHS, shifts=SHIFTS) -> dict:
    """{k: [Scored per user]} against `loaded`."""
    _, softmax = folds(loaded, 1.0, 1.0)
    log_pop = np.log1p(np.bincount(loaded.seen.indices, minlength=loaded.n_items)).astype(
        np.float32
    )
    weights = loaded.item_item
    out: dict[int, list[Scored]] = {}
    for k in KS:
        out[k] = []
        for u in users:
            rows, r = u.rows[:k], u.ratings[:k]
            vectors = {
                s: score(
                    softmax.solve(rows, r, strength=s).astype(np.float64),
                    softmax.item_factors, softmax.item_bias,
                ).astype(np.float32)
                for s in strengths
            }  # fmt: skip
            ii = None
            if weights is not None:
                ii = {s: (r - s).astype(np.float32) @ weights[rows] for s in shifts}
            out[k].append(Scored(vectors, log_pop, ii, rows, relevant_rest(u, k)))
    return out


POPULAR = ("popularity",)  # a grid's key for popularity's own ranking (the floor)


def grid(parts: list[Scored]) -> dict[tuple, np.ndarray]:
    """Per (strength, popularity weight, blend, shift): each user's NDCG@10; at POPULAR,
    popularity's. Without a blend the shift changes nothing: those settings are computed once
    and shared."""
    out = {}
    for s, p, b, shift in itertools.product(STRENGTHS, POPULARITY_WEIGHTS, BLENDS, SHIFTS):
        if not b and shift != SHIFTS[0]:
            out[(s, p, b, shift)] = out[(s, p, b, SHIFTS[0])]
            continue
        out[(s, p, b, shift)] = np.array([ranked_by(x, s, p, b, shift) for x in parts])
    out[POPULAR] = np.array([ndcg(ranking_of(x.log_pop, x.told), x.relevant) for x in parts])
    return out


def pooled(tables: list[dict[tuple, np.ndarray]], setting: tuple) -> float:
    """Mean NDCG@10 of `setting` over the users of every table."""
    return float(np.nanmean(np.concatenate([t[setting] for t in tables])))


def gains(ours: np.ndarray, floor: np.ndarray) -> tuple[float, float]:
    """Mean per-user gain of `ours` over `floor` (NDCG@10, users without a score left out)
    and its standard error."""
    gain = (ours - floor)[~np.isnan(ours)]
    return float(gain.mean()), float(gain.std() / np.sqrt(len(gain)))


def margin(tables: list[dict[tuple, np.ndarray]], setting: tuple) -> float:
    """How far `setting` is sure to beat popularity on the users of every table: the mean
    per-user gain in NDCG@10 less one standard error of it. Popularity is the floor the issue
    sets, so a setting whose gain is noise ranks below one that ties it surely."""
    mean, se = gains(
        np.concatenate([t[setting] for t in tables]), np.concatenate([t[POPULAR] for t in tables])
    )
    return mean - se


def choose(tables: dict[int, list[dict[tuple, np.ndarray]]], log=print) -> Trust:
    """On the pooled validation users of `tables` ({k: a grid per group}): one prior strength
    and one shift for every k (the pair with the best mean over k of each k's best), then per
    k the popularity weight and blend with the largest sure margin over popularity
    (`margin`)."""
    settings = [c for c in tables[KS[0]][0] if c != POPULAR]

    def best(k: int, strength: float, shift: float) -> tuple:
        mine = [c for c in settings if c[0] == strength and c[3] == shift]
        return max(mine, key=lambda c: (margin(tables[k], c), -c[1], -c[2]))

    strength, shift = max(
        itertools.product(STRENGTHS, SHIFTS),
        key=lambda pair: (np.mean([margin(tables[k], best(k, *pair)) for k in KS]), -pair[0],
                          -pair[1]),
    )  # fmt: skip
    chosen = {k: best(k, strength, shift) for k in KS}
    for k, c in chosen.items():
        log(
            f"  k={k}: strength {strength:g}, shift {shift:g}, popularity {c[1]:g}, blend "
            f"{c[2]:g}: validation NDCG@10 {pooled(tables[k], c):.4f} (popularity "
            f"{pooled(tables[k], POPULAR):.4f})"
        )
    return Trust(
        strength, KS, tuple(chosen[k][1] for k in KS), tuple(chosen[k][2] for k in KS),
        TRUST.half, shift,
    )  # fmt: skip


def out_of_fold(tables: dict[int, list[dict[tuple, np.ndarray]]]) -> dict:
    """Per k: every group's users (`tables`: {k: a grid per group}) scored with the trust
    `choose` picks on the other groups, against popularity on the same users: both means,
    their ratio and the standard error of the per-user difference."""
    groups = len(tables[KS[0]])
    trusts = [
        choose({k: [t for i, t in enumerate(tables[k]) if i != f] for k in KS}, lambda _: 0)
        for f in range(groups)
    ]
    out = {}
    for k in KS:
        ours, floor = [], []
        for f, trust in enumerate(trusts):
            setting = (
                trust.strength, trust.popularity_weight(k), trust.blend_weight(k), trust.shift
            )  # fmt: skip
            ours.append(tables[k][f][setting])
            floor.append(tables[k][f][POPULAR])
        a, b = np.concatenate(ours), np.concatenate(floor)
        keep = ~np.isnan(a)
        _, se = gains(a, b)
        out[k] = {
            "ndcg": float(a[keep].mean()), "popularity": float(b[keep].mean()),
            "ratio": float(a[keep].mean() / b[keep].mean()),
            "difference_se": se, "users": int(keep.sum()),
        }  # fmt: skip
        print(f"  out of fold k={k}: {out[k]}")
    return out


def evaluate_offline(loaded: LoadedVersion, users: list[HeldOut], ridge_strength, trust: Trust):
    """{k: {"ndcg": .., "rmse": .., "ndcg_by_rating": ..}} of the fold-in with these settings."""
    ridge, _ = folds(loaded, ridge_strength, 1.0)
    low, high = loaded.manifest.rating_range
    parts = scored(loaded, users, (trust.strength,), (trust.shift,))
    out = {}
    for k in KS:
        gains, errors, by_rating = [], [], []
        for u, part in zip(users, parts[k], strict=True):
            told_rows, told_r = u.rows[:k], u.ratings[:k]
            gains.append(
                ranked_by(
                    part,
                    trust.strength,
                    trust.popularity_weight(k),
                    trust.blend_weight(k),
                    trust.shift,
                )  # fmt: skip
            )
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


def ridge_strength_of(groups: list[tuple[LoadedVersion, list[HeldOut]]], trust: Trust) -> float:
    """The ridge fold's prior strength with the best RMSE, averaged over every k and group."""
    best = None
    for s in STRENGTHS:
        got = [evaluate_offline(loaded, users, s, trust) for loaded, users in groups]
        mean = float(np.mean([g[k]["rmse"] for g in got for k in KS]))
        print(f"  ridge strength {s:g}: mean RMSE {mean:.4f}")
        if best is None or mean < best[0]:
            best = (mean, s)
    assert best is not None
    return best[1]


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
    live.follow(live.log.apply(changes))  # the users are stale: solve them before the clock
    live.refold_users([u.user for u in test_users])
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
    parser.add_argument(
        "--shipped-only",
        action="store_true",
        help="score the shipped trust (app.events.trust.TRUST) alone: no validation grid, "
        "choice or out-of-fold figure (those take ~25 minutes)",
    )
    args = parser.parse_args()
    work = Path(args.work_dir)
    data = load_dataset(args.dataset, args.data_dir)
    ratings = data.ratings
    train_users, validation_users, test_users = cut_users(ratings)
    base = ratings[ratings["user_id"].isin(train_users)]
    path = train(base, data.items, work, "base")
    loaded = load_version(path)
    test = held_out(ratings, test_users, loaded)
    fold_groups = []  # (version, its held-out users) per validation fold
    for f, fold in enumerate(validation_folds(train_users | validation_users)):
        version = load_version(
            train(
                ratings[~ratings["user_id"].isin(fold | test_users)], data.items, work, f"fold{f}"
            )
        )
        fold_groups.append((version, held_out(ratings, fold, version)))
    print(
        f"{len(train_users)} training users; {sum(len(u) for _, u in fold_groups)} validation "
        f"users in {FOLDS} folds and {len(test)} test users scored"
    )
    with threadpool_limits(1):
        report = {
            "popularity": popularity(loaded, test),
            "fold_in_shipped": evaluate_offline(loaded, test, RIDGE_STRENGTH, TRUST),
        }
    if not args.shipped_only:
        report |= chosen_on_validation(fold_groups, loaded, test)
    with threadpool_limits(1):
        report["read_cost_us"] = read_cost(loaded, test)
    print("  read cost:", report["read_cost_us"])
    report["service"] = through_the_service(path, test, loaded)
    if not args.skip_retrain:
        report["retrain"] = retrained(ratings, base, data.items, test, work)
    print(json.dumps(report, indent=1))


def chosen_on_validation(fold_groups, loaded: LoadedVersion, test: list[HeldOut]) -> dict:
    """The trust chosen on the validation folds, the test users' figures with it, and the
    out-of-fold figure over every group."""
    with threadpool_limits(1):
        # Each group's grid once: the five folds choose, and with the test users they make
        # the out-of-fold figure.
        groups = [*(scored(version, users) for version, users in fold_groups), scored(loaded, test)]
        tables = {k: [grid(g[k]) for g in groups] for k in KS}
        chosen = choose({k: t[:FOLDS] for k, t in tables.items()})
        ridge_strength = ridge_strength_of(fold_groups, chosen)
        print("chosen on validation: ridge strength", ridge_strength, chosen)
        return {
            "ridge_strength": ridge_strength,
            "trust": dataclasses.asdict(chosen),
            "fold_in": evaluate_offline(loaded, test, ridge_strength, chosen),
            "out_of_fold": out_of_fold(tables),
        }


if __name__ == "__main__":
    main()
