"""Top-N metrics on held-out ratings, ranking every item the user did not rate in training.

Protocol: relevant = the user's held-out ratings >= `relevant_from` (4 stars); candidates = every
item the model knows minus the items the user rated in the data the model was fitted on; metrics
are averaged over the users with at least one relevant held-out item. A relevant item the model
never saw cannot be ranked, but it still counts in recall's and NDCG's denominators.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

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
        rel_users = users.lookup(relevant["user_id"])
        rel_items = items.lookup(relevant["item_id"])
        # Relevant items per evaluated user (unknown users cannot be ranked for: skipped;
        # unknown items stay in the denominators as -1).
        by_user: dict[int, list[int]] = {}
        for u, i in zip(rel_users.tolist(), rel_items.tolist(), strict=True):
            if u < users.oov:
                by_user.setdefault(u, []).append(i if i < items.oov else -1)
        evaluated = np.array(sorted(by_user), dtype=np.int64)
        eligible = len(evaluated)
        if max_users is not None and len(evaluated) > max_users:
            picked = np.random.default_rng(seed).choice(len(evaluated), max_users, replace=False)
            evaluated = np.sort(evaluated[picked])
        plans.append((by_user, set(evaluated.tolist()), eligible))
    union = np.array(sorted(set().union(*(chosen for _, chosen, _ in plans))), dtype=np.int64)
    seen = seen_items(users, items, fitted_on)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    totals = [dict.fromkeys((*METRICS, "ndcg_squares"), 0.0) for _ in plans]
    recommended = [np.zeros(len(items), dtype=bool) for _ in plans]
    for rows, ranked_block in top_k_lists(scores, seen, union, k, batch_users):
        for (by_user, chosen, _), total, shown in zip(plans, totals, recommended, strict=True):
            for row, ranked in zip(rows.tolist(), ranked_block, strict=True):
                if row not in chosen:
                    continue
                shown[ranked] = True
                targets = by_user[row]
                hits = np.zeros(k, dtype=bool)
                hits[: len(ranked)] = np.isin(ranked, [t for t in targets if t >= 0])
                n_hits, n_rel = int(hits.sum()), len(targets)
                total["precision"] += n_hits / k
                total["recall"] += n_hits / n_rel
                total["hit_rate"] += float(n_hits > 0)
                ndcg = float((hits * discounts).sum() / discounts[: min(n_rel, k)].sum())
                total["ndcg"] += ndcg
                total["ndcg_squares"] += ndcg * ndcg
                precision_at = np.cumsum(hits) / np.arange(1, k + 1)
                total["map"] += float((precision_at * hits).sum() / min(n_rel, k))
    out = []
    for (_, chosen, eligible), total, shown in zip(plans, totals, recommended, strict=True):
        n = len(chosen)
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
    """Each known user's known rated items (unknown ids are left out)."""
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
