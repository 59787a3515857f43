"""Fold-in for one served version (`Folder`): a user's vectors from their live ratings, solved
against the version's frozen item vectors (`app.events.solvers`), and a new item's from the
ratings of users the version knows. Each result names the version it was solved against."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.events.implicit_fold import ImplicitFold
from app.events.solvers import (
    ITEM_STRENGTH,
    RidgeFold,
    SoftmaxFold,
    SoftmaxItemFold,
)
from app.events.trust import TRUST, Trust
from app.serving.loader import LoadedVersion

ItemFold = SoftmaxItemFold | ImplicitFold  # how a new item gets its ranking vector


@dataclass(frozen=True)
class Folded:
    """One user's folded-in vectors, solved against one served version (`version`)."""

    version: int
    vector: np.ndarray  # ranks with the version's default vectors
    rating: tuple[np.ndarray, float] | None  # (p_u, b_u) in the rating model's factors
    popularity: float  # weight of log(1 + raters) added to the ranking scores
    blend: float = 0.0  # a new user's weight of the item-item scores (`Trust.blend_weight`)
    shift: float = 0.0  # what each of a new user's ratings is lowered by there (`Trust.shift`)


@dataclass(frozen=True)
class FoldedItem:
    """A new item's vectors, solved against one served version's trained users."""

    version: int
    vector: np.ndarray  # in the version's default ranking vectors
    bias: float
    rating: tuple[np.ndarray, float] | None  # (q_i, b_i) in the rating model's factors


@dataclass(frozen=True)
class NewItems:
    """The items folded in beyond a version's catalogue, as one snapshot readers take whole:
    row n_items + j is `ids[j]`."""

    ids: tuple[str, ...]
    index: dict[str, int]  # id -> row (n_items + j)
    vectors: np.ndarray  # (m, K) in the default ranking vectors
    bias: np.ndarray  # (m,)
    rating_factors: np.ndarray | None  # (m, K') in the rating model's factors
    rating_bias: np.ndarray | None  # (m,)
    log_popularity: np.ndarray  # (m,) log(1 + raters)

    @classmethod
    def of(cls, n_items: int, folded: dict[str, FoldedItem], raters: dict[str, int]) -> NewItems:
        ids = tuple(sorted(folded))
        items = [folded[i] for i in ids]
        with_rating = all(f.rating is not None for f in items)
        return cls(
            ids,
            {item: n_items + j for j, item in enumerate(ids)},
            np.array([f.vector for f in items], np.float32),
            np.array([f.bias for f in items], np.float32),
            np.array([f.rating[0] for f in items if f.rating], np.float32) if with_rating else None,
            np.array([f.rating[1] for f in items if f.rating], np.float32) if with_rating else None,
            np.log1p(np.array([raters.get(i, 0) for i in ids], np.float32)),
        )


class Folder:
    """Fold-in for one served version: the solvers for its default ranking vectors (the
    softmax's, or implicit ALS's when the manifest's retrieval says `solver: als`) and for its
    rating model (when the factors reproduce its rating: mf and mf_bias, not the MLPs)."""

    def __init__(self, loaded: LoadedVersion, trust: Trust = TRUST):
        self.version, self.trust = loaded.version, trust
        manifest = loaded.manifest
        rating = loaded.rating_vectors
        self.ridge: RidgeFold | None = None
        if rating.user_offset is not None:
            l2, bias_l2, once = _penalties(manifest.training)
            self.ridge = RidgeFold.of(
                rating.user_factors,
                rating.item_factors,
                None if rating.item_bias is None else rating.user_offset - manifest.global_mean,
                rating.item_bias,
                manifest.global_mean,
                0.0 if once else l2,
                0.0 if once else bias_l2,
                once_l2=l2 / 2 if once else 0.0,
            )
        self.softmax: SoftmaxFold | None = None
        self.implicit: ImplicitFold | None = None  # vectors fitted by implicit ALS
        vectors = loaded.vectors
        retrieval = manifest.retrieval or {}
        weighting = retrieval.get("weighting", "rating")
        if vectors is not rating and retrieval.get("solver") == "als":
            self.implicit = ImplicitFold.of(
                vectors.item_factors,
                float(retrieval["alpha"]),
                float(retrieval["als_l2"]),
                manifest.global_mean,
                weighting == "rating",
            )
        elif vectors is not rating:
            assert vectors.item_bias is not None
            self.softmax = SoftmaxFold(
                vectors.user_factors,
                vectors.item_factors,
                vectors.item_bias,
                manifest.global_mean,
                weighting == "rating",
                trust.strength,
            )
        self.loaded = loaded
        self._item_folds: tuple[RidgeFold | None, ItemFold | None] | None = None

    def fold_item(self, user_rows: np.ndarray, ratings: np.ndarray) -> FoldedItem | None:
        """A new item's vectors from its ratings by trained users (their rows). The solvers are
        built on first use (the softmax one scores every user against the catalogue once)."""
        if self._item_folds is None:
            self._item_folds = self._build_item_folds()
        ridge, fold = self._item_folds
        rating = ridge.solve(user_rows, ratings) if ridge is not None else None
        if isinstance(fold, ImplicitFold):
            vector, bias = fold.solve_many([user_rows], [ratings])[0], 0.0
        elif fold is not None:
            vector, bias = fold.solve(user_rows, ratings)
        elif rating is not None:
            vector, bias = rating
        else:
            return None
        return FoldedItem(self.version, vector, bias, rating)

    def _build_item_folds(self) -> tuple[RidgeFold | None, ItemFold | None]:
        loaded, manifest = self.loaded, self.loaded.manifest
        rating = loaded.rating_vectors
        ridge = None
        if rating.user_offset is not None:
            # The rating model is symmetric in users and items: the same solver, roles swapped.
            user_bias = None
            if rating.item_bias is not None:
                user_bias = rating.user_offset - manifest.global_mean
            # An autorec's item factors are codes, not penalised tables: the prior alone.
            l2, bias_l2, once = _penalties(manifest.training)
            ridge = RidgeFold.of(
                rating.item_factors,
                rating.user_factors,
                rating.item_bias,
                user_bias,
                manifest.global_mean,
                0.0 if once else l2,
                0.0 if once else bias_l2,
                ITEM_STRENGTH,
            )
        fold: ItemFold | None = None
        if self.softmax is not None:
            fold = SoftmaxItemFold(loaded, self.softmax.weighted)
        elif self.implicit is not None:  # the same solve, the users' vectors fixed
            users = self.implicit
            fold = ImplicitFold.of(
                loaded.vectors.user_factors, users.alpha, users.l2, users.mean_rating,
                users.weighted,
            )  # fmt: skip
        return ridge, fold

    def fold(
        self, rows: np.ndarray, ratings: np.ndarray, base_row: int | None, base_count: int
    ) -> Folded | None:
        """One user's vectors from their live ratings; see `fold_many`."""
        return self.fold_many([rows], [ratings], [base_row], [base_count])[0]

    def fold_many(
        self,
        rows: list[np.ndarray],
        ratings: list[np.ndarray],
        base_rows: list[int | None],
        base_counts: list[int],
    ) -> list[Folded | None]:
        """Users' vectors from their live ratings (item rows of this version), solved together.

        A user the version knows starts from their trained vectors, which count as their
        `base_count` training ratings of evidence; a new one from the population, with the
        popularity blend of `trust`. None for every user when nothing can be folded (no softmax
        vectors and no rating factors: an MLP version without retrieval vectors)."""
        users = len(rows)
        known = np.array([r is not None for r in base_rows], bool)
        trained = np.array([r if r is not None else 0 for r in base_rows], np.int64)
        strengths = self.trust.strength + np.where(known, np.asarray(base_counts, float), 0.0)
        rating: tuple[np.ndarray, np.ndarray] | None = None
        if self.ridge is not None:
            v = self.loaded.rating_vectors
            centres = np.tile(self.ridge.prior.mean, (users, 1))
            if known.any():
                assert v.user_offset is not None
                own = np.asarray(v.user_factors[trained[known]], np.float64)
                if self.ridge.item_bias is not None:
                    offset = np.asarray(v.user_offset[trained[known]], np.float64)
                    own = np.column_stack([own, offset - self.ridge.global_mean])
                centres[known] = own
            rating = self.ridge.solve_many(rows, ratings, centres, strengths)
        if self.softmax is not None:
            centres = np.tile(self.softmax.prior.mean, (users, 1))
            if known.any():
                centres[known] = self.loaded.vectors.user_factors[trained[known]]
            vectors = self.softmax.solve_many(rows, ratings, centres, strengths)
        elif self.implicit is not None:
            every = [self._with_training(r, v, b) for r, v, b in zip(rows, ratings, base_rows,
                                                                     strict=True)]  # fmt: skip
            vectors = self.implicit.solve_many([e[0] for e in every], [e[1] for e in every])
        elif rating is not None:
            vectors = rating[0]
        else:
            return [None] * users
        return [
            Folded(
                self.version,
                vectors[u],
                None if rating is None else (rating[0][u], float(rating[1][u])),
                0.0 if known[u] else self.trust.popularity_weight(len(rows[u])),
                0.0 if known[u] else self.trust.blend_weight(len(rows[u])),
                0.0 if known[u] else self.trust.shift,
            )
            for u in range(users)
        ]

    def _with_training(
        self, rows: np.ndarray, ratings: np.ndarray, base_row: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """A user's live ratings joined with their training ones (a live rating of an item
        replaces its training rating): what implicit ALS re-solves a trained user from."""
        seen = self.loaded.seen
        if base_row is None or seen.ratings is None:
            return rows, ratings
        start, end = seen.indptr[base_row], seen.indptr[base_row + 1]
        trained_rows, trained = seen.indices[start:end], seen.ratings[start:end]
        keep = ~np.isin(trained_rows, rows)
        return (
            np.concatenate([trained_rows[keep], rows]),
            np.concatenate([trained[keep].astype(np.float64), ratings]),
        )


def _penalties(training: dict[str, Any]) -> tuple[float, float, bool]:
    """The rating model's L2 and bias L2 as trained, and whether its L2 was added once to the
    summed error (autorec: training.regularization "sum") rather than per rating."""
    l2, bias_l2 = (float(training.get(k, 0.0)) for k in ("l2", "bias_l2"))
    return l2, bias_l2, training.get("regularization") == "sum"
