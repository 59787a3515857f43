"""Top-N metrics on held-out ratings, ranking every item the user did not rate in training.

Protocol: relevant = the user's held-out ratings >= `relevant_from` (4 stars); candidates = every
item the model knows minus the items the user rated in the data the model was fitted on; metrics
are averaged over the users with at least one relevant held-out item. A relevant item the model
never saw cannot be ranked, but it still counts in recall's and NDCG's denominators.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from artifact.seen import SeenItems
from artifact.topn import score, top_n_block
from training.data.split import IdIndex

# scores(user_rows) -> (len(user_rows), n_items) array, higher is better
ScoreFn = Callable[[np.ndarray], np.ndarray]
METRICS = ("precision", "recall", "ndcg", "hit_rate", "map")
# A reported figure may cost this many (user, item) scores (every score a top-k pass): past
# it, a seeded sample of users is ranked, never fewer than MIN_SAMPLE. ml-100k and ml-1m stay
# whole; ml-20m's 27k items rank 74,783 users; a million items 2,000 users, about 23 s a figure
# on one thread, so the export's three (vectors on validation and test, popularity on test)
# take under 2 minutes (bench/ranking_eval.py; bench/README.md, "The export's ranking
# evaluation at a million items"). NDCG@10's standard error is in each figure (`ndcg_se`).
SCORE_BUDGET = 2_000_000_000
MIN_SAMPLE = 1_000
BUDGET = "budget"  # ranking_metrics(max_users=BUDGET): the sample SCORE_BUDGET allows


def budget_users(n_items: int) -> int:
    """How many users a reported ranking figure ranks over `n_items` items."""
    return max(MIN_SAMPLE, SCORE_BUDGET // max(n_items, 1))


def ranking_metrics(
    scores: ScoreFn,
    users: IdIndex,
    items: IdIndex,
    fitted_on: pd.DataFrame,
    held_out: pd.DataFrame,
    k: int = 10,
    relevant_from: float | None = 4.0,
    batch_users: int = 256,
    max_users: int | str | None = BUDGET,
    seed: int = 0,
) -> dict[str, float]:
    """Precision@k, Recall@k, NDCG@k, HitRate@k and MAP@k (binary relevance), catalogue
    coverage@k (the share of items in anyone's top-k), the number of `users` evaluated, of the
    `eligible` ones (with a relevant held-out item), and NDCG's standard error over them
    (`ndcg_se`: the sample's standard deviation over the square root of its size).

    Args:
        relevant_from: held-out ratings at or above this are relevant; None makes every
            held-out interaction relevant (RecBole's convention).
        max_users: evaluate a seeded sample of at most this many users; BUDGET (the default):
            as many as SCORE_BUDGET allows over this catalogue (`budget_users`); None: all.
    """
    (metrics,) = _ranking_metrics(
        scores, users, items, fitted_on, held_out, k, (relevant_from,), batch_users, max_users, seed
    )
    return metrics


def _ranking_metrics(
    scores: ScoreFn,
    users: IdIndex,
    items: IdIndex,
    fitted_on: pd.DataFrame,
    held_out: pd.DataFrame,
    k: int,
    relevant_froms: tuple[float | None, ...],
    batch_users: int = 256,
    max_users: int | str | None = BUDGET,
    seed: int = 0,
) -> list[dict[str, float]]:
    """`ranking_metrics` for several relevance definitions, scoring each user once."""
    if max_users == BUDGET:
        max_users = budget_users(len(items))
    elif isinstance(max_users, str):
        raise ValueError(f"max_users {max_users!r}: a number, None (all) or {BUDGET!r}")
    plans = []  # per definition: relevant items per user, and the users evaluated
    for relevant_from in relevant_froms:
        relevant = (
            held_out if relevant_from is None else held_out[held_out["rating"] >= relevant_from]
        )
        plans.append(_Plan.of(users, items, relevant, max_users, seed))
    union = np.flatnonzero(np.any([plan.chosen for plan in plans], axis=0))
    seen = seen_items(users, items, fitted_on)
    totals = [dict.fromkeys((*METRICS, "ndcg_squares"), 0.0) for _ in plans]
    recommended = [np.zeros(len(items), dtype=bool) for _ in plans]
    for rows, ranked_block in top_k_lists(scores, seen, union, k, batch_users):
        ranked = np.full((len(rows), k), -1, np.int64)  # -1: fewer than k candidates
        for at, item_rows in enumerate(ranked_block):
            ranked[at, : len(item_rows)] = item_rows
        for plan, total, shown in zip(plans, totals, recommended, strict=True):
            plan.add(rows, ranked, total, shown)
    out = []
    for plan, total, shown in zip(plans, totals, recommended, strict=True):
        n, eligible = int(plan.chosen.sum()), plan.eligible
        if n == 0:
            nan = float("nan")
            out.append({**dict.fromkeys(METRICS, nan), "coverage": nan, "users": 0,
                        "eligible": eligible, "ndcg_se": nan})  # fmt: skip
            continue
        mean = {m: total[m] / n for m in METRICS}
        spread = max(total["ndcg_squares"] / n - mean["ndcg"] ** 2, 0.0) * n / max(n - 1, 1)
        out.append(
            {**mean, "coverage": float(shown.mean()), "users": n, "eligible": eligible,
             "ndcg_se": float(np.sqrt(spread / n))}
        )  # fmt: skip
    return out


@dataclass(frozen=True)
class _Plan:
    """One relevance definition's users and relevant items, and how a block adds to its sums:
    every user of a block at once (one user at a time cost ~50 us each, ~11 s of the three
    figures a 20M-rating version reports)."""

    chosen: np.ndarray  # [n_users] bool: the users evaluated
    eligible: int  # users with a relevant held-out item (before any sample)
    relevant: np.ndarray  # [n_users] how many relevant held-out ratings, unknown items too
    pairs: np.ndarray  # sorted user row * n_items + item row of the known relevant items
    n_items: int

    @classmethod
    def of(cls, users: IdIndex, items: IdIndex, relevant: pd.DataFrame,
           max_users: int | None, seed: int) -> _Plan:  # fmt: skip
        u = users.lookup(relevant["user_id"]).astype(np.int64)
        i = items.lookup(relevant["item_id"]).astype(np.int64)
        # Unknown users cannot be ranked for: skipped. Unknown items stay in the denominators.
        known_user = u < users.oov
        u, i = u[known_user], i[known_user]
        counts = np.bincount(u, minlength=len(users))
        evaluated = np.flatnonzero(counts)
        eligible = len(evaluated)
        if max_users is not None and len(evaluated) > max_users:
            picked = np.random.default_rng(seed).choice(len(evaluated), max_users, replace=False)
            evaluated = np.sort(evaluated[picked])
        chosen = np.zeros(len(users), bool)
        chosen[evaluated] = True
        known = i < items.oov
        pairs = np.unique(u[known] * len(items) + i[known])
        return cls(chosen, eligible, counts, pairs, len(items))

    def add(self, rows: np.ndarray, ranked: np.ndarray, total: dict[str, float],
            shown: np.ndarray) -> None:  # fmt: skip
        """Add the evaluated users among `rows` (their top-k as `ranked`, -1 padded)."""
        mine = self.chosen[rows]
        if not mine.any():
            return
        rows, ranked = rows[mine], ranked[mine]
        k = ranked.shape[1]
        listed = ranked >= 0
        keys = rows[:, None].astype(np.int64) * self.n_items + ranked
        at = np.minimum(np.searchsorted(self.pairs, keys), max(len(self.pairs) - 1, 0))
        hits = listed & (self.pairs[at] == keys) if len(self.pairs) else np.zeros_like(listed)
        n_hits = hits.sum(axis=1)
        n_rel = self.relevant[rows]
        discounts = 1.0 / np.log2(np.arange(2, k + 2))
        ideal = np.concatenate([[1.0], np.cumsum(discounts)])[np.minimum(n_rel, k)]
        ndcg = (hits * discounts).sum(axis=1) / ideal
        precision_at = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
        total["precision"] += float(np.sum(n_hits / k))
        total["recall"] += float(np.sum(n_hits / n_rel))
        total["hit_rate"] += float(np.sum(n_hits > 0))
        total["ndcg"] += float(ndcg.sum())
        total["ndcg_squares"] += float(np.sum(ndcg * ndcg))
        total["map"] += float(np.sum((precision_at * hits).sum(axis=1) / np.minimum(n_rel, k)))
        shown[ranked[listed]] = True


def top_k_lists(
    scores: ScoreFn, seen: SeenItems, rows: np.ndarray, k: int, batch_users: int = 256
) -> Iterator[tuple[np.ndarray, list[np.ndarray]]]:
    """Each user row's top-k item rows, best first, seen items excluded: the service's own
    kernel (`artifact.topn`) on blocks of `batch_users`, so what is measured is what is served.

    Yields:
        (the block's user rows, one array of item rows per user).
    """
    for start in range(0, len(rows), batch_users):
        block = rows[start : start + batch_users]
        ranked = top_n_block(np.array(scores(block)), k, seen.of_rows(block))
        yield block, [item_rows for item_rows, _ in ranked]


def seen_items(users: IdIndex, items: IdIndex, ratings: pd.DataFrame) -> SeenItems:
    """Each known user's known rated items (unknown ids are left out).

    The last few answers are kept for the same three objects (while they live): a fit ranks,
    calibrates and exports against the same training frame, and at 20M ratings each build (two
    string-id lookups and a sort) took ~4.5 s, ~27 s of a `recsys train`. The frames a fit
    reads are never changed in place; a frame of another length is rebuilt anyway.
    """
    key = (id(users), id(items), id(ratings))
    kept = _SEEN.get(key)
    if kept is not None:
        refs, rows, seen = kept
        if all(ref() is obj for ref, obj in zip(refs, (users, items, ratings), strict=True)) and (
            rows == len(ratings)
        ):
            return seen
    seen = _seen_items(users, items, ratings)
    gone = weakref.ref(ratings, lambda _: _SEEN.pop(key, None))  # its frame gone: let it go
    _SEEN[key] = ((weakref.ref(users), weakref.ref(items), gone), len(ratings), seen)
    while len(_SEEN) > _SEEN_KEPT:
        del _SEEN[next(iter(_SEEN))]
    return seen


_SEEN: dict[tuple[int, int, int], tuple[tuple[weakref.ref, ...], int, SeenItems]] = {}
_SEEN_KEPT = 2


def _seen_items(users: IdIndex, items: IdIndex, ratings: pd.DataFrame) -> SeenItems:
    u = users.lookup(ratings["user_id"])
    i = items.lookup(ratings["item_id"])
    keep = (u < users.oov) & (i < items.oov)
    stamps = ratings["timestamp"] if "timestamp" in ratings else np.zeros(len(ratings), np.int64)
    return SeenItems.from_pairs(
        u[keep],
        i[keep],
        len(users),
        len(items),
        ratings["rating"].to_numpy(np.float32)[keep],
        np.asarray(stamps, np.int64)[keep],
    )


def model_scores(model, n_items: int) -> ScoreFn:
    """Score every item for a block of users with the model's own predicted rating."""
    all_items = np.arange(n_items, dtype=np.int32)

    def scores(rows: np.ndarray) -> np.ndarray:
        x = {
            "user": np.repeat(rows.astype(np.int32), n_items),
            "item": np.tile(all_items, len(rows)),
        }
        predicted = model.predict(x, batch_size=65536, verbose=0)
        return np.asarray(predicted).reshape(len(rows), n_items)

    return scores


def factor_scores(user_factors, item_factors, item_bias=None) -> ScoreFn:
    """Score items the way /recommend does: user vector . item matrix (+ item bias)."""

    def scores(rows: np.ndarray) -> np.ndarray:
        return score(user_factors[rows], item_factors, item_bias)

    return scores


def popularity_scores(items: IdIndex, fitted_on: pd.DataFrame) -> ScoreFn:
    """The baseline: every user gets the items rated most often in the fitted-on data."""
    counts = np.bincount(items.lookup(fitted_on["item_id"]), minlength=len(items) + 1)[
        : len(items)
    ].astype(np.float64)

    def scores(rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(counts, (len(rows), len(items))).copy()

    return scores


RELEVANT_FROM = 4.0  # the ranking issue's protocol; None (every held-out rating) is RecBole's


def both_rankings(scores, users, items, fitted_on, test, k: int) -> dict[str, dict[str, float]]:
    """Top-k metrics with relevant = test ratings >= RELEVANT_FROM ("ranking") and with every
    held-out rating relevant ("ranking_all", RecBole's), each user scored once for both."""
    ranking, ranking_all = _ranking_metrics(
        scores, users, items, fitted_on, test, k, (RELEVANT_FROM, None)
    )
    return {"ranking": ranking, "ranking_all": ranking_all}
