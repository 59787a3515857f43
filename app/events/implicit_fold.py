"""Fold-in for retrieval vectors fitted by implicit-feedback ALS (`training.als_implicit`): the
model's own half-pass for one row, as implicit's `recalculate_user` does.

With the other side's vectors Y fixed, a user's x solves

    (Y'Y + l2 I + sum_{i rated} (c_i - 1) y_i y_i') x = sum_{i rated} c_i y_i,
    c_i = 1 + alpha * w_i    (w_i: the rating over the mean rating, or 1 unweighted),

which is exactly what training solved for them: every unrated item pulls toward 0 and the L2
keeps x small, so the objective carries its own prior and no population prior is added. A
trained user is solved from all their ratings (training's, with live ones replacing or joining
them), so a live rating moves them as a training rating would have. A new item is the same
solve with the roles swapped (the trained users' vectors fixed). Y'Y + l2 I is computed once
per version; a block of users is one grouped Gram and one stacked solve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.events.solvers import grouped_gram

GRAM_BLOCK = 65_536  # rows of the fixed side converted to float64 at a time (32 MB at K 64)


@dataclass(frozen=True)
class ImplicitFold:
    """Solves rows of one side given the other side's vectors `others` (see the module
    docstring)."""

    others: np.ndarray  # (n, K): the fixed side's vectors as exported (float32, mapped)
    gram: np.ndarray  # (K, K): others' Gram matrix plus l2 I
    alpha: float
    l2: float
    mean_rating: float
    weighted: bool

    @classmethod
    def of(cls, others: np.ndarray, alpha: float, l2: float, mean_rating: float,
           weighted: bool) -> ImplicitFold:  # fmt: skip
        """The fold of rows against the fixed side's vectors `others`. Y'Y is summed in float64
        a block of rows at a time: a float64 copy of a 1M-item table was 0.5 GB per worker."""
        k = others.shape[1]
        gram = l2 * np.eye(k)
        for start in range(0, len(others), GRAM_BLOCK):
            block = np.asarray(others[start : start + GRAM_BLOCK], np.float64)
            gram += block.T @ block
        return cls(others, gram, float(alpha), float(l2), float(mean_rating), weighted)

    def solve_many(self, rows: list[np.ndarray], ratings: list[np.ndarray]) -> np.ndarray:
        """Each row's vector (rows x K, float32) from the other side's rows it rated and the
        ratings; a row with none gets zeros, as training leaves it."""
        users = len(rows)
        counts = np.fromiter((len(r) for r in rows), np.int64, users)
        flat = np.concatenate(rows).astype(np.int64) if users else np.empty(0, np.int64)
        w = np.concatenate(ratings).astype(np.float64) if users else np.empty(0)
        w = w / self.mean_rating if self.weighted else np.ones(len(flat))
        excess = self.alpha * w  # c - 1 > 0 for every positive
        root = np.sqrt(excess)
        # Z'Z = sum (c - 1) y y' and Z't = sum c y with z = sqrt(c - 1) y, t = c / sqrt(c - 1).
        y = np.asarray(self.others[flat], np.float64)
        a, b = grouped_gram(y * root[:, None], (1 + excess) / root, counts)
        a += self.gram
        return np.linalg.solve(a, b[:, :, None])[:, :, 0].astype(np.float32)
