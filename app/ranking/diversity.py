"""Diversity by maximal marginal relevance (Carbonell and Goldstein, 1998): from the best
candidates, pick greedily the item that best trades its relevance against its likeness to what
is already picked, likeness being the cosine between item vectors (the one /similar ranks by).

`diversity` is the trade's weight: 0 keeps the ranking, 1 ignores relevance after the first
item. Relevance is the candidates' scores rescaled to [0, 1], so the weight means the same for a
rating model's scores and a retrieval model's logits.
"""

from __future__ import annotations

import numpy as np

from app.events.foldin import NewItems
from app.serving.loader import LoadedVersion

# Candidates re-ranked per list: enough that a diverse top-n can leave the head, few enough
# that the greedy pass (n steps of a candidates x K product) costs less than the scoring pass.
CANDIDATES_PER_ITEM = 5
MIN_CANDIDATES = 50


def candidates(n: int) -> int:
    return max(CANDIDATES_PER_ITEM * n, MIN_CANDIDATES)


def mmr(
    rows: np.ndarray, scores: np.ndarray, unit: np.ndarray, n: int, diversity: float
) -> tuple[np.ndarray, np.ndarray]:
    """The `n` picked from candidates `rows` (best first, with their `scores` and unit-length
    vectors `unit`), in the order picked, with their own scores.

    Args:
        diversity: 0..1; 0 returns the first `n` candidates unchanged.
    """
    if diversity <= 0 or len(rows) <= 1:
        return rows[:n], scores[:n]
    relevance = scores.astype(np.float64)
    spread = relevance.max() - relevance.min()
    relevance = (relevance - relevance.min()) / spread if spread > 0 else relevance * 0
    vectors = unit.astype(np.float64)
    picked = [0]
    likeness = vectors @ vectors[0]
    value = (1 - diversity) * relevance
    for _ in range(1, min(n, len(rows))):
        gain = value - diversity * likeness
        gain[picked] = -np.inf
        best = int(np.argmax(gain))
        picked.append(best)
        np.maximum(likeness, vectors @ vectors[best], out=likeness)
    chosen = np.array(picked, np.int64)
    return rows[chosen], scores[chosen]


def unit_rows(loaded: LoadedVersion, new: NewItems | None, rows: np.ndarray) -> np.ndarray:
    """Unit-length default ranking vectors of item `rows` (catalogue rows, then new items)."""
    n = loaded.n_items
    inside = rows < n
    if inside.all():
        return loaded.unit_rows(rows)
    assert new is not None
    vectors = np.empty((len(rows), loaded.vectors.item_factors.shape[1]), np.float32)
    vectors[inside] = loaded.unit_rows(rows[inside])
    extra = new.vectors[rows[~inside] - n]
    vectors[~inside] = extra / np.maximum(np.linalg.norm(extra, axis=1, keepdims=True), 1e-12)
    return vectors
