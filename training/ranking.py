"""Top-N metrics on held-out ratings, ranking every item the user did not rate in training.

Protocol: relevant = the user's held-out ratings >= `relevant_from` (4 stars); candidates = every
item the model knows minus the items the user rated in the data the model was fitted on; metrics
are averaged over the users with at least one relevant held-out item. A relevant item the model
never saw cannot be ranked, but it still counts in recall's and NDCG's denominators.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from training.data.split import IdIndex

# scores(user_rows) -> (len(user_rows), n_items) array, higher is better
ScoreFn = Callable[[np.ndarray], np.ndarray]
METRICS = ("precision", "recall", "ndcg", "hit_rate")


def ranking_metrics(
    scores: ScoreFn,
    users: IdIndex,
    items: IdIndex,
    fitted_on: pd.DataFrame,
    held_out: pd.DataFrame,
    k: int = 10,
    relevant_from: float = 4.0,
    batch_users: int = 256,
) -> dict[str, float]:
    """Precision@k, Recall@k, NDCG@k and HitRate@k (binary relevance), plus `users` counted."""
    relevant = held_out[held_out["rating"] >= relevant_from]
    rel_users = users.lookup(relevant["user_id"])
    rel_items = items.lookup(relevant["item_id"])
    # Relevant items per evaluated user (unknown users cannot be ranked for: skipped; unknown
    # items stay in the denominators as -1).
    by_user: dict[int, list[int]] = {}
    for u, i in zip(rel_users.tolist(), rel_items.tolist(), strict=True):
        if u < users.oov:
            by_user.setdefault(u, []).append(i if i < items.oov else -1)
    if not by_user:
        return {**{m: float("nan") for m in METRICS}, "users": 0}
    seen = _seen_matrix(users, items, fitted_on)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    totals = dict.fromkeys(METRICS, 0.0)
    evaluated = np.array(sorted(by_user))
    for start in range(0, len(evaluated), batch_users):
        rows = evaluated[start : start + batch_users]
        block = np.asarray(scores(rows), dtype=np.float64)
        block[seen[rows]] = -np.inf
        top = np.argpartition(-block, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(block, top, axis=1).argsort(axis=1)[:, ::-1]
        top = np.take_along_axis(top, order, axis=1)
        for row, ranked in zip(rows.tolist(), top, strict=True):
            targets = by_user[row]
            hits = np.isin(ranked, [t for t in targets if t >= 0])
            n_hits, n_rel = int(hits.sum()), len(targets)
            totals["precision"] += n_hits / k
            totals["recall"] += n_hits / n_rel
            totals["hit_rate"] += float(n_hits > 0)
            ideal = discounts[: min(n_rel, k)].sum()
            totals["ndcg"] += float((hits * discounts).sum() / ideal)
    n = len(evaluated)
    return {**{m: totals[m] / n for m in METRICS}, "users": n}


def _seen_matrix(users: IdIndex, items: IdIndex, frame: pd.DataFrame) -> np.ndarray:
    seen = np.zeros((len(users), len(items)), dtype=bool)
    u, i = users.lookup(frame["user_id"]), items.lookup(frame["item_id"])
    keep = (u < users.oov) & (i < items.oov)
    seen[u[keep], i[keep]] = True
    return seen


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
        block = user_factors[rows] @ item_factors.T
        return block + item_bias if item_bias is not None else block

    return scores


def popularity_scores(items: IdIndex, fitted_on: pd.DataFrame) -> ScoreFn:
    """The baseline: every user gets the items rated most often in the fitted-on data."""
    counts = np.bincount(items.lookup(fitted_on["item_id"]), minlength=len(items) + 1)[
        : len(items)
    ].astype(np.float64)

    def scores(rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(counts, (len(rows), len(items))).copy()

    return scores
