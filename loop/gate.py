"""The gate: a candidate version against the served one on the held-out ratings, through the
service's own code (`app.events.view`, `app.ranking.recommend`, `app.ranking.predict`), so what
is measured is what each would serve.

- The served version answers with its live state as the service would have it without the
  held-out ratings: every other rating it never learned applied and folded in.
- The candidate learned every rating but the held-out ones: it answers with nothing live.
- NDCG@10: per user with a held-out rating of 4 or more (relevant; binary), of /recommend's top
  10 (seen items left out) against their relevant held-out items, over the users both versions
  can rank. RMSE: /predict's ratings of the held-out pairs both versions know.
- Passed: the candidate's NDCG is no lower than the served version's minus `tolerance`, and its
  RMSE no higher than the served version's plus `tolerance`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from app.events.applied import AppliedLog
from app.events.changes import Change
from app.events.view import VersionView
from app.ranking.predict import with_fold_in
from app.ranking.recommend import recommend
from app.serving.loader import LoadedVersion

K = 10
RELEVANT_FROM = 4.0


@dataclass(frozen=True)
class Answers:
    ndcg: dict[str, float]  # user -> NDCG@10
    predicted: dict[tuple[str, str], float]  # (user, item) -> /predict's rating


@dataclass(frozen=True)
class Verdict:
    passed: bool
    baseline: dict[str, float | None]  # ndcg, rmse
    candidate: dict[str, float | None]
    users: int  # users both could rank
    pairs: int  # pairs both could predict
    reason: str


def live_view(loaded: LoadedVersion, learned: int, rows: Iterable[dict[str, Any]]) -> VersionView:
    """`loaded`'s live state from store rows (the log's, in id order), every user and new item
    folded in: what the service serving it would answer with."""
    applied = AppliedLog(learned)
    changes = [
        Change(
            int(r["id"]),
            r["kind"],
            r["user_id"],
            r["item_id"],
            r["rating"],
            int(r["ts"]),
            r["title"],
            _genres(r["genres"]),
            r["year"],
        )  # fmt: skip
        for r in rows
    ]
    applied.register(changes)  # registered items however old (the rest at or below: learned)
    applied.apply(changes, through=max((c.id for c in changes), default=learned))
    view = VersionView(loaded, applied, learned)
    view.refold_items(list(view.raters))
    view.refold_users(list(view.pending))
    return view


def _genres(raw: str | None) -> list[str]:
    return list(json.loads(raw)) if raw else []


def answers(view: VersionView, held: pd.DataFrame) -> Answers:
    """What `view` answers for the held-out users and pairs."""
    ndcg: dict[str, float] = {}
    relevant = held[held["rating"] >= RELEVANT_FROM].groupby("user_id")["item_id"].agg(set)
    for user, wanted in relevant.items():
        mine = view.user(str(user))
        if not mine.known:
            continue  # the version cannot rank for them: popularity, the same for both
        shown = recommend(mine, K).item_ids(view.loaded)
        dcg = sum(1 / math.log2(p + 2) for p, item in enumerate(shown) if item in wanted)
        ideal = sum(1 / math.log2(p + 2) for p in range(min(len(wanted), K)))
        ndcg[str(user)] = dcg / ideal
    known = [
        (u, i)
        for u, i in zip(held["user_id"], held["item_id"], strict=True)
        if view.user(u).known and view.item_row(i, view.new_items) is not None
    ]
    predicted: dict[tuple[str, str], float] = {}
    if known:
        users, items = [u for u, _ in known], [i for _, i in known]
        raw = view.loaded.predict_ratings(users, items)
        values, _, _ = with_fold_in(view, users, items, raw)
        predicted = dict(zip(known, values.tolist(), strict=True))
    return Answers(ndcg, predicted)


def judge(baseline: Answers, candidate: Answers, held: pd.DataFrame, tolerance: float) -> Verdict:
    users = sorted(set(baseline.ndcg) & set(candidate.ndcg))
    pairs = sorted(set(baseline.predicted) & set(candidate.predicted))
    truth = dict(
        zip(zip(held["user_id"], held["item_id"], strict=True), held["rating"], strict=True)
    )

    def scores(found: Answers) -> dict[str, float | None]:
        ndcg = float(np.mean([found.ndcg[u] for u in users])) if users else None
        errors = [(found.predicted[p] - truth[p]) ** 2 for p in pairs]
        rmse = float(np.sqrt(np.mean(errors))) if errors else None
        return {"ndcg": ndcg, "rmse": rmse}

    base, cand = scores(baseline), scores(candidate)
    problems = []
    if base["ndcg"] is not None and cand["ndcg"] is not None:
        if cand["ndcg"] < base["ndcg"] - tolerance:
            problems.append(f"NDCG@10 {cand['ndcg']:.4f} < {base['ndcg']:.4f} - {tolerance:g}")
    if base["rmse"] is not None and cand["rmse"] is not None:
        if cand["rmse"] > base["rmse"] + tolerance:
            problems.append(f"RMSE {cand['rmse']:.4f} > {base['rmse']:.4f} + {tolerance:g}")
    if not users and not pairs:
        problems.append("nothing held out that both versions can answer: nothing to judge on")
    reason = "; ".join(problems) or (
        f"not worse beyond {tolerance:g}: NDCG@10 {_f(cand['ndcg'])} vs {_f(base['ndcg'])}, "
        f"RMSE {_f(cand['rmse'])} vs {_f(base['rmse'])}"
    )
    return Verdict(not problems, base, cand, len(users), len(pairs), reason)


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
