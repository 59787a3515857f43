"""Item-item weights blended with the retrieval vectors: what /recommend ranks with where the
catalogue is small enough for an items x items matrix.

The weights are EDLAE's (Steck, "Autoencoders that don't overfit towards the identity",
NeurIPS 2020), a closed form: with X the users x items matrix of ratings (a 5 counts five times
a 1, as in the retrieval vectors' weighting) and G = X'X,

    B = (G + L)^-1 G,  then each column shifted so that B_jj = 0,
    L = strength * mean(diag G) * I + dropout / (1 - dropout) * diag(G),

and a user's scores are their rating row times B: x_u B. The row is the user's own ratings, so
a new rating or a new user counts at once and exactly, with nothing to solve. /recommend's
score is a blend of the two rankings, each standardised over the catalogue per user:

    weight * z(x_u B) + (1 - weight) * z(p_u Q' + b)

Strength, dropout and weight are chosen together on validation NDCG@10 (the retrieval vectors'
first fit, which never saw validation), then B is fitted once more on what the exported version
learns from. One inverse of an items x items matrix: cheap for ml-100k's 1,682 films, minutes
and gigabytes for ml-20m's 27k, so catalogues over `max_items` keep the vectors alone.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from training.config import ItemItemConfig
from training.data.split import IdIndex, Split
from training.evaluation.ranking import factor_scores, ranking_metrics
from training.fitting import Fit, Log
from training.retrieval import RetrievalResult


@dataclass
class ItemItemResult:
    weights: np.ndarray  # (items, items) B, rows and columns in the exported item order
    strength: float
    dropout: float
    blend: float  # the item-item ranking's weight in the blend
    metrics: dict[str, dict[str, float]]  # validation (choice) and test (train+validation fit)
    seconds: float

    def summary(self) -> dict[str, Any]:
        return {
            "strength": self.strength,
            "dropout": self.dropout,
            "blend": self.blend,
            "train_seconds": round(self.seconds, 2),
        }


def rating_matrix(frame: pd.DataFrame, users: IdIndex, items: IdIndex) -> sp.csr_matrix:
    """Users x items, each rating at its value (pairs of unknown ids dropped)."""
    u, i = users.lookup(frame["user_id"]), items.lookup(frame["item_id"])
    keep = (u < users.oov) & (i < items.oov)
    values = frame["rating"].to_numpy(np.float64)[keep]
    return sp.csr_matrix((values, (u[keep], i[keep])), shape=(len(users), len(items)))


def edlae(x: sp.csr_matrix, strength: float, dropout: float) -> np.ndarray:
    """B for ratings `x` (see the module docstring), float64."""
    gram = (x.T @ x).toarray()
    diagonal = np.diag(gram).copy()
    penalty = strength * float(diagonal.mean()) + dropout / (1 - dropout) * diagonal
    inverse = np.linalg.inv(gram + np.diag(penalty))
    weights = inverse @ gram
    weights -= inverse * (np.diag(weights) / np.diag(inverse))[None, :]
    return weights


def standardised(scores: np.ndarray) -> np.ndarray:
    """Each row (one user's scores over the catalogue) shifted and scaled to mean 0, sd 1."""
    mean = scores.mean(axis=-1, keepdims=True)
    sd = scores.std(axis=-1, keepdims=True)
    out: np.ndarray = (scores - mean) / np.maximum(sd, 1e-12)
    return out


def blended_scores(x: sp.csr_matrix, weights: np.ndarray, vectors: dict, blend: float):
    """The ScoreFn of the blend (what the service computes, for the offline metrics)."""
    dot = factor_scores(vectors["user_factors"], vectors["item_factors"], vectors.get("item_bias"))

    def scores(rows: np.ndarray) -> np.ndarray:
        item_item = np.asarray(x[rows] @ weights)
        return blend * standardised(item_item) + (1 - blend) * standardised(dot(rows))

    return scores


def train_item_item(
    split: Split, retrieval: RetrievalResult, config: ItemItemConfig, log: Log = print
) -> ItemItemResult | None:
    """Choose strength, dropout and blend on validation; fit the exported weights. None when
    the catalogue is over `config.max_items` (the vectors then rank alone)."""
    exported = retrieval.exported
    if len(exported.items) > config.max_items:
        log(
            f"item-item: {len(exported.items):,} items is over {config.max_items:,}; "
            "/recommend ranks with the retrieval vectors alone"
        )
        return None
    started = time.perf_counter()
    first = retrieval.fitted.first
    x = rating_matrix(split.train, first.users, first.items)
    vectors = first.model.factors_for_export()
    best: tuple[float, float, float, dict[str, float]] | None = None
    for strength, dropout in itertools.product(config.strengths, config.dropouts):
        weights = edlae(x, strength, dropout)
        for blend in config.blends:
            m = _metrics(x, weights, vectors, blend, first, split.train, split.validation)
            if best is None or m["ndcg"] > best[3]["ndcg"]:
                best = (strength, dropout, blend, m)
    assert best is not None
    strength, dropout, blend, validation = best
    metrics = {"validation": validation}
    final = retrieval.fitted.final
    fitted_on = split.fitted_on(retrieval.refitted)
    if len(split.test):
        x_final = rating_matrix(fitted_on, final.users, final.items)
        w_final = edlae(x_final, strength, dropout)
        vectors_final = final.model.factors_for_export()
        metrics["test"] = _metrics(
            x_final, w_final, vectors_final, blend, final, fitted_on, split.test
        )
    everything = split.everything() if retrieval.fitted.whole is not None else fitted_on
    weights = edlae(rating_matrix(everything, exported.users, exported.items), strength, dropout)
    seconds = time.perf_counter() - started
    shown = ", ".join(f"{k} NDCG@10 {v['ndcg']:.4f}" for k, v in metrics.items())
    log(
        f"item-item: strength {strength:g}, dropout {dropout:g}, blend {blend:g} chosen on "
        f"validation; {shown} ({seconds:.1f} s)"
    )
    return ItemItemResult(weights, strength, dropout, blend, metrics, seconds)


def _metrics(x, weights, vectors, blend, fit: Fit, fitted_on, held_out) -> dict[str, float]:
    scores = blended_scores(x, weights, vectors, blend)
    return ranking_metrics(scores, fit.users, fit.items, fitted_on, held_out, k=10)
