"""Fit /recommend's second stage (`artifact.ranker`): a small network that reorders the
candidates of the vectors and the item-item weights, learned from held-out positives.

The lists it learns from are validation's: the first stage fitted on train (the vectors, the
item-item weights at the strength chosen on validation, the rating model) gives each
validation user their candidates and features, and the user's validation ratings of at least
4 stars are the labels. The loss is softmax cross-entropy over each user's candidates (the
positives sharing the target's mass), the listwise loss of ListNet / TFRS' ranking tutorial.
A quarter of the validation users is held out from that fit to stop it early on their NDCG@10
and to choose the hidden layer's width; the network is then refitted on every validation user
for the chosen epochs. Test is scored on the first stage refitted on train+validation, like
every other ranking figure, and the exported item table is the exported version's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from artifact.ranker import FEATURES, RankerWeights, candidates, item_table, reranked
from training.config import RankerConfig
from training.data.split import IdIndex, Split
from training.evaluation.ranking import ranking_metrics
from training.fitting import Fit, Log
from training.itemitem import edlae, rating_matrix, standardised

RELEVANT_FROM = 4.0  # held-out ratings at or above this are the lists' positives
MIN_USERS = 20  # validation users with a positive; fewer, and no ranker is fitted


@dataclass
class RankerResult:
    weights: RankerWeights  # the network and the exported version's item table
    genres: list[str]  # the item table's genre columns, in order
    width: int
    epochs: int
    metrics: dict[str, dict[str, float]]  # validation (held-out users), test, and the blend's
    seconds: float
    history: dict[str, list[float]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "per_source": self.weights.per_source,
            "width": self.width,
            "epochs": self.epochs,
            "features": list(FEATURES),
            "train_seconds": round(self.seconds, 2),
        }


@dataclass
class FirstStage:
    """One fit of the first stage, as the ranker sees it: everything its features need."""

    users: IdIndex
    items: IdIndex
    vectors: dict[str, np.ndarray]  # the retrieval vectors (user_factors, item_factors, bias)
    item_item: np.ndarray  # B fitted on the same frame
    blend: float
    rating: dict[str, np.ndarray]  # the rating model: user/item factors and biases
    global_mean: float
    fitted_on: pd.DataFrame
    table: np.ndarray  # artifact.ranker.item_table over these items
    x: sp.csr_matrix  # users x items ratings of `fitted_on` (training.itemitem.rating_matrix)

    def first_scores(self, rows: np.ndarray, x: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """The standardised vectors' and item-item scores of user `rows` (a block)."""
        v = self.vectors
        dot = v["user_factors"][rows] @ v["item_factors"].T + v["item_bias"]
        return standardised(dot), standardised(np.asarray(x[rows] @ self.item_item))

    def ratings_at(self, row: int, cand: np.ndarray) -> np.ndarray:
        r = self.rating
        offset = self.global_mean + float(r["user_bias"][row])
        return offset + r["item_factors"][cand] @ r["user_factors"][row] + r["item_bias"][cand]


def first_stage(
    rating_fit: Fit,
    retrieval_fit: Fit,
    fitted_on: pd.DataFrame,
    strength: float,
    dropout: float,
    blend: float,
    metadata: pd.DataFrame | None,
) -> FirstStage:
    """The first stage of one fit: B refitted on `fitted_on` at the chosen strength and
    dropout, and the item table of its items (`items_of`)."""
    users, items = retrieval_fit.users, retrieval_fit.items
    for kind, a, b in (("users", users, rating_fit.users), ("items", items, rating_fit.items)):
        if a.to_list() != b.to_list():
            raise ValueError(f"the ranker needs one id order: the two models' {kind} differ")
    x = rating_matrix(fitted_on, users, items)
    return FirstStage(
        users, items, retrieval_fit.model.factors_for_export(), edlae(x, strength, dropout),
        blend, rating_fit.model.factors_for_export(), float(rating_fit.model.global_mean),
        fitted_on, items_of(x, items, metadata)[0], x,
    )  # fmt: skip


def items_of(
    x: sp.csr_matrix, items: IdIndex, metadata: pd.DataFrame | None
) -> tuple[np.ndarray, list[str]]:
    """The item table (`artifact.ranker.item_table`) of `items`, their raters counted in `x`,
    and its genre vocabulary."""
    years, genre_sets, vocabulary = item_genres(items, metadata)
    return item_table(np.diff(x.tocsc().indptr), years, genre_sets, vocabulary), vocabulary


def item_genres(items: IdIndex, metadata: pd.DataFrame | None):
    """Years, genre lists and the genre vocabulary for `items` in row order (NaN years and no
    genres where the data has no metadata)."""
    from training.export import item_metadata

    if metadata is None:
        return np.full(len(items), np.nan), [[] for _ in range(len(items))], []
    rows = item_metadata(items, metadata)
    years = np.array([np.nan if r["year"] is None else r["year"] for r in rows], np.float64)
    genre_sets = [list(r["genres"]) for r in rows]
    vocabulary = sorted({g for gs in genre_sets for g in gs})
    return years, genre_sets, vocabulary


@dataclass
class Lists:
    """Padded candidate lists: features (users, C, F), labels (users, C) with -1 on padding,
    the candidates' item rows, and each user's number of relevant held-out items."""

    features: np.ndarray
    labels: np.ndarray
    rows: np.ndarray
    relevant: np.ndarray

    def take(self, which: np.ndarray) -> Lists:
        return Lists(self.features[which], self.labels[which], self.rows[which],
                     self.relevant[which])  # fmt: skip


def build_lists(stage: FirstStage, held_out: pd.DataFrame, per_source: int) -> Lists:
    """One list per user with a relevant held-out rating: their candidates' features and
    whether each is one of those ratings."""
    relevant = held_out[held_out["rating"] >= RELEVANT_FROM]
    u, i = stage.users.lookup(relevant["user_id"]), stage.items.lookup(relevant["item_id"])
    keep = u < stage.users.oov
    by_user: dict[int, set[int]] = {}
    for a, b in zip(u[keep].tolist(), i[keep].tolist(), strict=True):
        by_user.setdefault(a, set()).add(b)  # unknown items (oov) count as relevant, unreachable
    users = np.array(sorted(by_user), np.int64)
    x = stage.x
    scratch = _scratch(stage, per_source)
    feats, labels, rows = [], [], []
    for start in range(0, len(users), 256):
        block = users[start : start + 256]
        z_vec, z_ii = stage.first_scores(block, x)
        for k, row in enumerate(block.tolist()):
            rated = x.indices[x.indptr[row] : x.indptr[row + 1]]
            stars = x.data[x.indptr[row] : x.indptr[row + 1]]
            cand = candidates(z_vec[k], z_ii[k], rated, per_source)
            f = scratch.features(
                cand, z_vec[k][cand], z_ii[k][cand], stage.ratings_at(row, cand), rated, stars
            )
            feats.append(f)
            labels.append(np.isin(cand, list(by_user[row])).astype(np.float32))
            rows.append(cand)
    width = max((len(r) for r in rows), default=0)
    out = Lists(
        np.zeros((len(users), width, len(FEATURES)), np.float32),
        np.full((len(users), width), -1.0, np.float32),
        np.full((len(users), width), -1, np.int64),
        np.array([len(by_user[r]) for r in users.tolist()], np.int64),
    )
    for n, (f, y, r) in enumerate(zip(feats, labels, rows, strict=True)):
        out.features[n, : len(r)], out.labels[n, : len(r)], out.rows[n, : len(r)] = f, y, r
    return out


def _scratch(stage: FirstStage, per_source: int) -> RankerWeights:
    """A RankerWeights with no network yet: what computes the features."""
    f = len(FEATURES)
    nothing = np.zeros((f + 1, 1), np.float32), np.zeros(2, np.float32)
    return RankerWeights(stage.table, np.zeros(f, np.float32), np.ones(f, np.float32), *nothing,
                         per_source)  # fmt: skip


def list_ndcg(scores: np.ndarray, lists: Lists, k: int = 10) -> float:
    """Mean NDCG@k of ranking each list by `scores` (users, C); relevant items outside the
    candidates count in the ideal, as in training.evaluation.ranking."""
    return float(list_ndcgs(scores, lists, k).mean())


def list_ndcgs(scores: np.ndarray, lists: Lists, k: int = 10) -> np.ndarray:
    """Each list's NDCG@k (see list_ndcg)."""
    masked = np.where(lists.labels >= 0, scores, -np.inf)
    top = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    hits = np.take_along_axis(lists.labels, top, axis=1) > 0
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits * discounts[: hits.shape[1]]).sum(axis=1)
    ideal = np.cumsum(discounts)[np.minimum(lists.relevant, k) - 1]
    out: np.ndarray = dcg / ideal
    return out


def fit_network(lists: Lists, width: int, epochs: int, config: RankerConfig, watch=None):
    """Fit the network on `lists` for at most `epochs`; with `watch` (held-out lists), stop
    when their NDCG@10 has not risen for `config.patience` epochs and keep the best epoch's
    weights. Returns (hidden, output, mean, scale, best epoch, watched NDCG per epoch)."""
    import keras
    from keras import ops

    keras.utils.set_random_seed(config.seed)
    valid = lists.labels >= 0
    flat = lists.features[valid]
    mean = flat.mean(axis=0)
    scale = np.where(flat.std(axis=0) > 1e-6, flat.std(axis=0), 1.0).astype(np.float32)

    def normal(x: Lists) -> np.ndarray:
        return np.where((x.labels >= 0)[..., None], (x.features - mean) / scale, 0.0).astype(
            np.float32
        )

    inputs = keras.Input((None, len(FEATURES)))
    hidden = keras.layers.Dense(width, activation="relu", name="hidden")
    output = keras.layers.Dense(1, name="output")
    model = keras.Model(inputs, ops.squeeze(output(hidden(inputs)), -1))

    def loss(labels, logits):
        mask = labels >= 0
        logits = ops.where(mask, logits, -1e9)
        target = ops.where(mask, labels, 0.0)
        target = target / ops.maximum(ops.sum(target, axis=1, keepdims=True), 1e-9)
        return -ops.sum(target * ops.log_softmax(logits, axis=1), axis=1)

    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=loss)
    x, y = normal(lists), lists.labels
    history: list[float] = []
    best, best_weights = -1.0, model.get_weights()
    for _epoch in range(epochs):
        model.fit(x, y, batch_size=config.batch_users, epochs=1, shuffle=True, verbose=0)
        if watch is None:
            continue
        ndcg = list_ndcg(model.predict(normal(watch), verbose=0, batch_size=512), watch)
        history.append(ndcg)
        if ndcg > best:
            best, best_weights = ndcg, model.get_weights()
        elif len(history) - 1 - int(np.argmax(history)) >= config.patience:
            break
    if watch is not None:
        model.set_weights(best_weights)
    w1, b1 = hidden.get_weights()
    w2, b2 = output.get_weights()
    stacked = np.vstack([w1, b1[None, :]]).astype(np.float32)
    out = np.concatenate([w2[:, 0], b2]).astype(np.float32)
    chosen = int(np.argmax(history)) + 1 if history else epochs
    return stacked, out, mean.astype(np.float32), scale, chosen, history


def ranked_scores(stage: FirstStage, weights: RankerWeights):
    """The ScoreFn of the two stages (what the service computes), for the offline metrics:
    each row's candidates scored by the network above every other item."""
    x = stage.x

    def scores(rows: np.ndarray) -> np.ndarray:
        z_vec, z_ii = stage.first_scores(rows, x)
        first = stage.blend * z_ii + (1 - stage.blend) * z_vec
        out = np.empty_like(first, dtype=np.float32)
        for k, row in enumerate(rows.tolist()):
            rated = x.indices[x.indptr[row] : x.indptr[row + 1]]
            stars = x.data[x.indptr[row] : x.indptr[row + 1]]
            cand = candidates(z_vec[k], z_ii[k], rated, weights.per_source)
            f = weights.features(
                cand, z_vec[k][cand], z_ii[k][cand], stage.ratings_at(row, cand), rated, stars
            )
            out[k] = reranked(first[k], cand, weights.score(f))
        return out

    return scores


def train_ranker(
    validation_stage: FirstStage,
    test_stage: FirstStage | None,
    exported_table: np.ndarray,
    split: Split,
    genres: list[str],
    config: RankerConfig = RankerConfig(),  # noqa: B008 (frozen)
    log: Log = print,
) -> RankerResult | None:
    """Choose the width and epochs on held-out validation users, refit on all of them, score
    test on `test_stage`; the exported weights carry `exported_table`. None (said in `log`)
    with too few validation users, or when on the held-out ones the ranker's NDCG@10 does not
    beat the blend's order of the same candidates by more than one standard error of the gain:
    a version then ranks by the blend."""
    started = time.perf_counter()
    lists = build_lists(validation_stage, split.validation, config.per_source)
    if len(lists.labels) < MIN_USERS:
        log(
            f"ranker: none ({len(lists.labels)} validation users with a rating >= "
            f"{RELEVANT_FROM:g}; it needs {MIN_USERS})"
        )
        return None
    order = np.random.default_rng(config.seed).permutation(len(lists.labels))
    n_held = max(2, int(len(order) * config.held_out_share))
    fit_part, watch = lists.take(np.sort(order[n_held:])), lists.take(np.sort(order[:n_held]))
    tried = {}
    for width in config.widths:
        *weights, epoch, history = fit_network(fit_part, width, config.max_epochs, config, watch)
        tried[width] = (max(history), epoch, history, weights)
        best = max(history)
        log(f"ranker: width {width}: held-out validation NDCG@10 {best:.4f} at epoch {epoch}")
    width = max(tried, key=lambda w: tried[w][0])
    ndcg, epochs, history, (hidden, output, mean, scale) = tried[width]
    # Kept only if it beats the blend's order of the same lists by more than the gain's
    # standard error over the held-out users (the best epoch was chosen on them: optimistic).
    flat = watch.features.reshape(-1, len(FEATURES))
    net = RankerWeights(validation_stage.table, mean, scale, hidden, output, config.per_source)
    gains = list_ndcgs(net.score(flat).reshape(watch.labels.shape), watch) - list_ndcgs(
        _blend_of(watch.features, validation_stage.blend), watch
    )
    gain, se = float(gains.mean()), float(gains.std(ddof=1) / np.sqrt(len(gains)))
    blend_ndcg = ndcg - gain
    if config.require_gain and gain <= se:
        log(
            f"ranker: none (held-out validation NDCG@10 {ndcg:.4f}, the blend alone "
            f"{blend_ndcg:.4f}: a gain of {gain:+.4f} is not above its standard error {se:.4f})"
        )
        return None
    hidden, output, mean, scale, _, _ = fit_network(lists, width, epochs, config)
    metrics = {"validation": {"ndcg": ndcg, "blend_ndcg": blend_ndcg, "gain_se": se,
                              "users": float(len(watch.labels))}}  # fmt: skip
    if test_stage is not None and len(split.test):
        weights = RankerWeights(test_stage.table, mean, scale, hidden, output, config.per_source)
        fitted_on = test_stage.fitted_on
        metrics["test"] = ranking_metrics(
            ranked_scores(test_stage, weights), test_stage.users, test_stage.items, fitted_on,
            split.test, k=10,
        )  # fmt: skip
    seconds = time.perf_counter() - started
    exported = RankerWeights(exported_table, mean, scale, hidden, output, config.per_source)
    shown = ", ".join(f"{k} NDCG@10 {v['ndcg']:.4f}" for k, v in metrics.items())
    log(
        f"ranker: width {width}, {epochs} epochs chosen on validation (a gain of {gain:+.4f} "
        f"over the blend, standard error {se:.4f}); {shown} ({seconds:.1f} s)"
    )
    return RankerResult(exported, genres, width, epochs, metrics, seconds, {"val_ndcg": history})


def _blend_of(features: np.ndarray, blend: float) -> np.ndarray:
    """The first stage's own order of the lists (its blend of the two standardised scores)."""
    return blend * features[..., 1] + (1 - blend) * features[..., 0]


def fit_ranker(rating, retrieval, metadata: pd.DataFrame | None, config: RankerConfig,
               log: Log = print) -> RankerResult | None:  # fmt: skip
    """The ranker over `retrieval`'s vectors and item-item weights and `rating`'s predictions
    (a TrainedModel and a RetrievalResult fitted on one split); None, said in `log`, where the
    version has no item-item weights or the rating model's factors do not give its ratings."""
    blended = retrieval.item_item
    if blended is None:
        return None
    if getattr(rating.exported.model, "score", "dot") != "rating":
        log(f"ranker: none ({rating.config.model}'s factors do not give its ratings)")
        return None
    split, fitted = rating.split, retrieval.fitted
    chosen = (blended.strength, blended.dropout, blended.blend)

    def stage(rating_fit: Fit, vectors_fit: Fit, frame: pd.DataFrame) -> FirstStage:
        return first_stage(rating_fit, vectors_fit, frame, *chosen, metadata)

    on_validation = stage(rating.fitted.first, fitted.first, split.train)
    on_test = None
    if len(split.test):
        on_test = stage(rating.fitted.final, fitted.final, split.fitted_on(fitted.refitted))
    exported = fitted.exported
    everything = split.everything() if fitted.whole is not None else split.fitted_on(
        fitted.refitted)  # fmt: skip
    x = rating_matrix(everything, exported.users, exported.items)
    table, vocabulary = items_of(x, exported.items, metadata)
    if on_validation.table.shape[1] != table.shape[1]:
        raise ValueError(f"item tables of {on_validation.table.shape[1]} and {table.shape[1]} "
                         "columns: the genre vocabulary changed between fits")  # fmt: skip
    return train_ranker(on_validation, on_test, table, split, vocabulary, config, log)
