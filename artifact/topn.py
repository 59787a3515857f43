"""The one top-N kernel: what /recommend serves and what the offline ranking metrics measure.

A query is scored against the whole catalogue (`score`: query vector x item matrix + item bias),
excluded items (the user's seen rows, a per-query list) and items outside an `allowed` mask are
set to -inf, `argpartition` finds the `n` winners in linear time, and only those `n` are sorted.
One rule orders them everywhere: higher score first, equal scores by ascending item row, so an
answer never depends on argpartition's internals. Items at -inf are never returned, so a query
with fewer than `n` eligible items gets fewer back.

The kernel takes vectors, not user ids: a caller may pass a trained user's row, a vector solved
on the fly, or any score block (the evaluation's predicted ratings, popularity counts).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Ranked = tuple[np.ndarray, np.ndarray]  # item rows (int64), their scores; best first


def score(
    queries: np.ndarray, item_factors: np.ndarray, item_bias: np.ndarray | None
) -> np.ndarray:
    """Scores of every item for one query vector (K,) -> (items,), or a block (q, K) ->
    (q, items). Always a fresh array: the top-N functions may write into it."""
    scores: np.ndarray = item_factors @ queries if queries.ndim == 1 else queries @ item_factors.T
    if item_bias is not None:
        scores += item_bias
    return scores


def top_n(
    scores: np.ndarray,
    n: int,
    exclude: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
) -> Ranked:
    """The `n` best item rows of one query and their scores, best first.

    Args:
        scores: (items,) scores; overwritten (pass a fresh array, as `score` returns).
        exclude: item rows never to return (e.g. the user's seen items).
        allowed: boolean (items,) mask; only True items may be returned.
    """
    if exclude is not None and len(exclude):
        scores[exclude] = -np.inf
    if allowed is not None:
        scores[~allowed] = -np.inf
    n = min(n, len(scores))
    if n <= 0:
        return np.empty(0, np.int64), np.empty(0, scores.dtype)
    winners = _best(scores, n)
    top = scores[winners]
    order = np.lexsort((winners, -top))
    winners, top = winners[order], top[order]
    eligible = int(np.count_nonzero(top != -np.inf))
    return winners[:eligible].astype(np.int64, copy=False), top[:eligible]


def top_n_block(
    scores: np.ndarray,
    n: int,
    exclude: Sequence[np.ndarray] | None = None,
    allowed: np.ndarray | None = None,
) -> list[Ranked]:
    """`top_n` for a block of queries at once: exclusions set with one fancy-index assignment,
    a row-wise `argpartition` (on a large catalogue, each row's prefiltered selection) and a
    row-wise sort of the `n` winners. Same answers as `top_n` per row.

    Args:
        scores: (queries, items) scores; overwritten.
        exclude: one array of item rows per query, or None.
        allowed: boolean (items,) mask shared by every query.
    """
    queries, n_items = scores.shape
    if exclude is not None:
        if len(exclude) != queries:
            raise ValueError(f"{queries} queries but {len(exclude)} exclusion lists")
        lengths = np.fromiter((len(e) for e in exclude), np.int64, queries)
        if lengths.sum():
            rows = np.repeat(np.arange(queries), lengths)
            scores[rows, np.concatenate(exclude)] = -np.inf
    if allowed is not None:
        scores[:, ~allowed] = -np.inf
    k = min(n, n_items)
    if k <= 0:
        return [(np.empty(0, np.int64), np.empty(0, scores.dtype)) for _ in range(queries)]
    cut = n_items - k
    if cut == 0:
        winners = np.broadcast_to(np.arange(n_items), scores.shape).copy()
    elif n_items >= PREFILTER_FROM and k * 4 * SAMPLE_STRIDE <= n_items:
        # A large catalogue: row by row through the sampled threshold (`_prefiltered`), 10x
        # the row-wise argpartition at 27k items and 16x at a million (bench/topn.py).
        winners = np.stack([_best(scores[q], k) for q in range(queries)])
    else:
        # One position per row here (for blocks the pair costs ~25% more, bench/topn.py), and
        # one vectorised comparison finds the rows whose n-th best score is shared beyond the cut.
        winners = np.argpartition(scores, cut, axis=1)[:, cut:]
        kth = np.take_along_axis(scores, winners, axis=1).min(axis=1)
        tied = np.count_nonzero(scores == kth[:, None], axis=1)
        inside = np.count_nonzero(
            np.take_along_axis(scores, winners, axis=1) == kth[:, None], axis=1
        )
        for q in np.flatnonzero((tied > inside) & (kth != -np.inf)).tolist():
            winners[q] = _ties_by_row(scores[q], k, kth[q])  # rare with real-valued scores
    top = np.take_along_axis(scores, winners, axis=1)
    order = np.lexsort((winners, -top), axis=1)
    winners = np.take_along_axis(winners, order, axis=1).astype(np.int64, copy=False)
    top = np.take_along_axis(top, order, axis=1)
    eligible = np.count_nonzero(top != -np.inf, axis=1).tolist()
    return [(winners[i, :e], top[i, :e]) for i, e in enumerate(eligible)]


# Large catalogues: select among the scores above a threshold read off a strided sample first.
PREFILTER_FROM = 8192  # items
SAMPLE_STRIDE = 16


def best_rows(scores: np.ndarray, n: int) -> np.ndarray:
    """The rows of the `n` best of one query's `scores` (1 <= n <= len), unordered, ties at
    the cut going to the lowest rows: a candidate set (`artifact.ranker`) rather than a
    ranking. `scores` is only read."""
    return _best(scores, n)


def _best(scores: np.ndarray, n: int) -> np.ndarray:
    """The rows of the `n` best scores (1 <= n <= len), unordered, ties at the cut by row.

    argpartition places both the n-th best score and the best one left outside in position, so
    a tie straddling the cut shows without another pass over the scores (and, measured in
    bench/topn.py, asking for the two positions is faster than asking for one).
    """
    cut = len(scores) - n
    if cut == 0:
        return np.arange(len(scores))
    if len(scores) >= PREFILTER_FROM and n * 4 * SAMPLE_STRIDE <= len(scores):
        found = _prefiltered(scores, n)
        if found is not None:
            return found
    part = np.argpartition(scores, (cut - 1, cut))
    kth = scores[part[cut]]
    if kth == -np.inf or scores[part[cut - 1]] != kth:
        return part[cut:]
    return _ties_by_row(scores, n, kth)  # argpartition chose among equals: take the lowest rows


def _prefiltered(scores: np.ndarray, n: int) -> np.ndarray | None:
    """`_best` through a threshold: argpartition's cost depends on how the scores happen to be
    ordered (0.26 ms for 27k shuffled float32 scores here, 0.04 ms for some nearly sorted ones),
    so on a large catalogue a strided sample of 1/16 of the scores gives a threshold that about
    twice n scores pass, one comparison finds them, and the exact selection runs among those.
    Every row scoring at least the n-th best is a candidate whenever n or more pass (the n-th
    best is then at or above the threshold), and candidates keep row order, so ties at the cut
    fall to the lowest rows as without the filter. None when fewer than n pass.
    """
    sample = scores[::SAMPLE_STRIDE]
    keep = min(len(sample), 2 * (n // SAMPLE_STRIDE) + 4)
    threshold = np.partition(sample, len(sample) - keep)[len(sample) - keep]
    candidates = np.flatnonzero(scores >= threshold)
    if len(candidates) < n:
        return None
    picked: np.ndarray = candidates[_best(scores[candidates], n)]
    return picked


def _ties_by_row(scores: np.ndarray, n: int, kth: float) -> np.ndarray:
    """The `n` best rows when the n-th best score `kth` is shared beyond the cut: every row
    above it, then the lowest rows scoring exactly it."""
    above = np.flatnonzero(scores > kth)
    return np.concatenate([above, np.flatnonzero(scores == kth)[: n - len(above)]])
