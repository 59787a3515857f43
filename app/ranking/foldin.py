"""Fold-in: a vector for a user from their ratings, solved against the frozen item vectors of the
served version with the objective those vectors were trained with, and shrunk toward the
population so that a handful of ratings cannot do worse than what everyone likes.

Two solvers, one per kind of vectors:

- `RidgeFold`, for the rating model's factors (mf, mf_bias): x = [p_u, b_u] minimises

      sum_i (r_ui - mu - b_i - q_i . p_u - b_u)^2 + n * l2 * |p_u|^2 + n * bias_l2 * b_u^2
        + strength * (x - x_bar)' P (x - x_bar)

  The first three terms are the trained loss restricted to one user (its L2 is per example, so
  it grows with the user's n ratings); the last is a Gaussian prior whose mean x_bar and
  precision P are the mean and inverse covariance of the trained users' [p_u, b_u]. One linear
  solve of size factors + 1. With no ratings the answer is the average user.

- `SoftmaxFold`, for the retrieval vectors: p_u maximises

      sum_i w_i * log softmax(Q p_u + b)_i - strength / 2 * (p_u - p_bar)' P (p_u - p_bar)

  (w_i the rating over the mean rating, as in training), by Newton's method from p_bar: the
  gradient and Hessian of the log-softmax are a weighted mean and covariance of the item
  vectors under the current softmax, one pass over the catalogue per step.

`strength` is in units of ratings: how many ratings' worth of evidence the population prior
counts as. How much to trust a new user's k ratings is `TRUST`: that strength, and the weight
of the items' log-popularity added to their ranking scores, fading as k grows; all chosen on
validation users held out of training (bench/coldstart.py; bench/README.md records the grid and
the choice). On ml-100k a user's first ratings say little about the rest, and the choice leans
on popularity until a user has rated dozens of films.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from app.serving.loader import LoadedVersion


@dataclass(frozen=True)
class Trust:
    """How much a new user's n ratings count: the prior's `strength` (in ratings), and the
    weight of log(1 + raters) added to their ranking scores, `popularity * half / (half + n)`,
    which fades as their ratings add up (half of it at n = half)."""

    strength: float
    popularity: float
    half: float

    def popularity_weight(self, n: int) -> float:
        return self.popularity * self.half / (self.half + n)


# Chosen on validation users by bench/coldstart.py (bench/README.md, "Cold start").
TRUST = Trust(strength=1.0, popularity=64.0, half=30.0)
RIDGE_STRENGTH = 1.0
# New items: the prior's strength (in ratings) for an item's vector. Not tuned: no benchmark
# holds items out yet; 1 is the users' choice.
ITEM_STRENGTH = 1.0

NEWTON_STEPS = 30
NEWTON_TOLERANCE = 1e-5
MAX_HALVINGS = 20


@dataclass(frozen=True)
class Prior:
    """The population: mean and precision (inverse covariance) of the trained users' vectors."""

    mean: np.ndarray  # (d,) float64
    precision: np.ndarray  # (d, d) float64

    @classmethod
    def of(cls, vectors: np.ndarray) -> Prior:
        x = np.asarray(vectors, np.float64)
        mean = x.mean(axis=0)
        cov = np.atleast_2d(np.cov(x, rowvar=False))
        # A floor on the variance keeps the precision finite when a direction barely varies.
        floor = 1e-6 * max(float(np.trace(cov)) / len(cov), 1e-12)
        precision = np.linalg.inv(cov + floor * np.eye(len(cov)))
        return cls(mean, (precision + precision.T) / 2)


@dataclass(frozen=True)
class RidgeFold:
    """Folds a user into a rating model's factors; see the module docstring."""

    item_factors: np.ndarray  # (items, K)
    item_bias: np.ndarray | None  # (items,), None for plain MF
    global_mean: float
    l2: float
    bias_l2: float
    prior: Prior  # over [p_u, b_u] (or p_u alone without biases)
    strength: float = RIDGE_STRENGTH

    @classmethod
    def of(
        cls,
        user_factors: np.ndarray,
        item_factors: np.ndarray,
        user_bias: np.ndarray | None,
        item_bias: np.ndarray | None,
        global_mean: float,
        l2: float,
        bias_l2: float,
        strength: float = RIDGE_STRENGTH,
    ) -> RidgeFold:
        users = np.asarray(user_factors, np.float64)
        if user_bias is not None:
            users = np.column_stack([users, np.asarray(user_bias, np.float64)])
        return cls(
            item_factors, item_bias, global_mean, l2, bias_l2, Prior.of(users), float(strength)
        )

    def solve(
        self,
        rows: np.ndarray,
        ratings: np.ndarray,
        mean: np.ndarray | None = None,
        strength: float | None = None,
    ) -> tuple[np.ndarray, float]:
        """(p_u, b_u) from the user's rated item rows and their ratings (b_u is 0 without
        biases); the prior is centred on `mean` (default the population's) with `strength`
        (default the fold's)."""
        z = np.asarray(self.item_factors[rows], np.float64)
        y = np.asarray(ratings, np.float64) - self.global_mean
        biased = self.item_bias is not None
        if biased:
            assert self.item_bias is not None
            y = y - np.asarray(self.item_bias[rows], np.float64)
            z = np.column_stack([z, np.ones(len(rows))])
        n = len(rows)
        k = self.item_factors.shape[1]
        penalty = np.full(z.shape[1], n * self.l2)
        if biased:
            penalty[k] = n * self.bias_l2
        centre = self.prior.mean if mean is None else np.asarray(mean, np.float64)
        prior = (self.strength if strength is None else float(strength)) * self.prior.precision
        a = z.T @ z + np.diag(penalty) + prior
        b = z.T @ y + prior @ centre
        x = np.linalg.solve(a, b)
        return x[:k].astype(np.float32), float(x[k]) if biased else 0.0


class SoftmaxFold:
    """Folds a user into the retrieval vectors; see the module docstring.

    Newton's method with the Hessian fixed where it is cheap to know: the softmax's covariance
    of the item vectors at the population's mean user, computed once per version. With the
    prior's precision P it is diagonalised once (C V = P V diag(lam), V' P V = I), so a step for
    any number of ratings t and any strength s is two (K, K) products:
    (t C + s P)^-1 g = V diag(1 / (t lam + s)) V' g. A step costs one pass over the catalogue
    (scores and their softmax-weighted mean); halving the step until it gains keeps the ascent
    monotone where the fixed Hessian is off. Measured against exact Newton on ml-100k: the same
    vectors to 1e-4, ~1.6 ms -> ~0.2 ms a user (bench/README.md, "Cold start").
    """

    def __init__(
        self,
        user_factors: np.ndarray,
        item_factors: np.ndarray,
        item_bias: np.ndarray,
        mean_rating: float,
        weighted: bool,
        strength: float = TRUST.strength,
    ):
        self.item_factors = np.ascontiguousarray(item_factors, np.float64)
        self.item_bias = np.asarray(item_bias, np.float64)
        self.mean_rating, self.weighted = float(mean_rating), weighted
        self.prior = Prior.of(user_factors)
        self.strength = float(strength)
        pi = _softmax(self.item_factors @ self.prior.mean + self.item_bias)
        mean = pi @ self.item_factors
        cov = (self.item_factors * pi[:, None]).T @ self.item_factors - np.outer(mean, mean)
        lower = np.linalg.cholesky(self.prior.precision)  # P = L L'
        inv_lower = np.linalg.inv(lower)
        lam, u = np.linalg.eigh(inv_lower @ cov @ inv_lower.T)
        self.curvature = np.maximum(lam, 0.0)
        self.basis = inv_lower.T @ u  # V: V' P V = I, V' C V = diag(lam)

    def solve(
        self,
        rows: np.ndarray,
        ratings: np.ndarray,
        mean: np.ndarray | None = None,
        strength: float | None = None,
    ) -> np.ndarray:
        """The user's vector from their rated item rows and ratings; the prior is centred on
        `mean` (default the population's) with `strength` (default the fold's)."""
        q, bias = self.item_factors, self.item_bias
        centre = self.prior.mean if mean is None else np.asarray(mean, np.float64)
        s = self.strength if strength is None else float(strength)
        w = np.asarray(ratings, np.float64)
        w = w / self.mean_rating if self.weighted else np.ones(len(rows))
        total = float(w.sum())
        p = centre.copy()
        if total == 0.0:
            return p.astype(np.float32)
        pulled = w @ q[rows]  # sum_i w_i q_i
        fixed = w @ bias[rows]
        precision = s * self.prior.precision
        scale = 1.0 / (total * self.curvature + s)

        def objective(p: np.ndarray) -> tuple[float, np.ndarray]:
            logits = q @ p + bias
            top = float(logits.max())
            e = np.exp(logits - top)
            norm = float(e.sum())
            d = p - centre
            value = pulled @ p + fixed - total * (top + np.log(norm)) - 0.5 * d @ precision @ d
            return float(value), e / norm

        def step(p: np.ndarray, pi: np.ndarray) -> np.ndarray:
            grad = pulled - total * (pi @ q) - precision @ (p - centre)
            out: np.ndarray = self.basis @ (scale * (self.basis.T @ grad))
            return out

        return _ascend(p, objective, step).astype(np.float32)


def _ascend(
    x: np.ndarray,
    objective: Callable[[np.ndarray], tuple[float, np.ndarray]],
    step: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """Maximise a concave `objective` (value and whatever the step needs, at a point) from `x`
    by Newton-like `step`s, halving a step until it gains: a step far from the optimum can
    overshoot, and a halved one always gains a little."""
    value, state = objective(x)
    for _ in range(NEWTON_STEPS):
        move = step(x, state)
        for _ in range(MAX_HALVINGS):
            new_value, new_state = objective(x + move)
            if new_value >= value:
                break
            move = move / 2
        else:
            break
        x, value, state = x + move, new_value, new_state
        if float(np.abs(move).max()) < NEWTON_TOLERANCE:
            break
    return x


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    out: np.ndarray = e / e.sum()
    return out


@dataclass(frozen=True)
class Folded:
    """One user's folded-in vectors, solved against one served version (`version`)."""

    version: int
    vector: np.ndarray  # ranks with the version's default vectors
    rating: tuple[np.ndarray, float] | None  # (p_u, b_u) in the rating model's factors
    popularity: float  # weight of log(1 + raters) added to the ranking scores


@dataclass(frozen=True)
class FoldedItem:
    """A new item's vectors, solved against one served version's trained users."""

    version: int
    vector: np.ndarray  # in the version's default ranking vectors
    bias: float
    rating: tuple[np.ndarray, float] | None  # (q_i, b_i) in the rating model's factors


class Folder:
    """Fold-in for one served version: the solvers for its default ranking vectors and for its
    rating model (when the factors reproduce its rating: mf and mf_bias, not the MLPs)."""

    def __init__(self, loaded: LoadedVersion, trust: Trust = TRUST):
        self.version, self.trust = loaded.version, trust
        manifest = loaded.manifest
        rating = loaded.rating_vectors
        self.ridge: RidgeFold | None = None
        if rating.user_offset is not None:
            self.ridge = RidgeFold.of(
                rating.user_factors,
                rating.item_factors,
                None if rating.item_bias is None else rating.user_offset - manifest.global_mean,
                rating.item_bias,
                manifest.global_mean,
                float(manifest.training.get("l2", 0.0)),
                float(manifest.training.get("bias_l2", 0.0)),
            )
        self.softmax: SoftmaxFold | None = None
        vectors = loaded.vectors
        if vectors is not rating:
            assert vectors.item_bias is not None
            weighting = (manifest.retrieval or {}).get("weighting", "rating")
            self.softmax = SoftmaxFold(
                vectors.user_factors,
                vectors.item_factors,
                vectors.item_bias,
                manifest.global_mean,
                weighting == "rating",
                trust.strength,
            )
        self.loaded = loaded
        self._item_folds: tuple[RidgeFold | None, SoftmaxItemFold | None] | None = None

    def fold_item(self, user_rows: np.ndarray, ratings: np.ndarray) -> FoldedItem | None:
        """A new item's vectors from its ratings by trained users (their rows). The solvers are
        built on first use (the softmax one scores every user against the catalogue once)."""
        if self._item_folds is None:
            self._item_folds = self._build_item_folds()
        ridge, softmax = self._item_folds
        rating = ridge.solve(user_rows, ratings) if ridge is not None else None
        if softmax is not None:
            vector, bias = softmax.solve(user_rows, ratings)
        elif rating is not None:
            vector, bias = rating
        else:
            return None
        return FoldedItem(self.version, vector, bias, rating)

    def _build_item_folds(self) -> tuple[RidgeFold | None, SoftmaxItemFold | None]:
        loaded, manifest = self.loaded, self.loaded.manifest
        rating = loaded.rating_vectors
        ridge = None
        if rating.user_offset is not None:
            # The rating model is symmetric in users and items: the same solver, roles swapped.
            user_bias = None
            if rating.item_bias is not None:
                user_bias = rating.user_offset - manifest.global_mean
            ridge = RidgeFold.of(
                rating.item_factors,
                rating.user_factors,
                rating.item_bias,
                user_bias,
                manifest.global_mean,
                float(manifest.training.get("l2", 0.0)),
                float(manifest.training.get("bias_l2", 0.0)),
                ITEM_STRENGTH,
            )
        softmax = None
        if self.softmax is not None:
            softmax = SoftmaxItemFold(loaded, self.softmax.weighted)
        return ridge, softmax

    def fold(
        self, rows: np.ndarray, ratings: np.ndarray, base_row: int | None, base_count: int
    ) -> Folded | None:
        """A user's vectors from their live ratings (item rows of this version).

        A user the version knows starts from their trained vectors, which count as
        `base_count` ratings of evidence; a new one from the population, with the popularity
        blend of `trust`. None when nothing can be folded (no softmax vectors and no rating
        factors: an MLP version without retrieval vectors)."""
        known = base_row is not None
        strength = self.trust.strength + (base_count if known else 0)
        rating = None
        if self.ridge is not None:
            centre = None
            if known:
                v = self.loaded.rating_vectors
                assert v.user_offset is not None and base_row is not None
                centre = np.asarray(v.user_factors[base_row], np.float64)
                if self.ridge.item_bias is not None:
                    bias = float(v.user_offset[base_row]) - self.ridge.global_mean
                    centre = np.append(centre, bias)
            rating = self.ridge.solve(rows, ratings, centre, strength)
        if self.softmax is not None:
            centre = None
            if known:
                centre = np.asarray(self.loaded.vectors.user_factors[base_row], np.float64)
            vector = self.softmax.solve(rows, ratings, centre, strength)
        elif rating is not None:
            vector = rating[0]
        else:
            return None
        popularity = 0.0 if known else self.trust.popularity_weight(len(rows))
        return Folded(self.version, vector, rating, popularity)


class SoftmaxItemFold:
    """Folds a new item into the retrieval vectors: its vector and bias x = [q, b] maximise the
    training objective restricted to them, with every trained user's vector frozen:

        sum_{u rated it} w_u (p_u . q + b) - sum_u W_u log(Z_u + exp(p_u . q + b))
          - strength / 2 * (x - x_bar)' P (x - x_bar)

    where Z_u is user u's softmax normaliser over the catalogue and W_u their total weight in
    training (the new item enters every user's softmax, not only its raters'), and the prior is
    the trained items' [q_i, b_i]. Exact Newton (one pass over the users a step), halving steps
    that do not gain."""

    def __init__(self, loaded: LoadedVersion, weighted: bool, strength: float = ITEM_STRENGTH):
        v = loaded.vectors
        assert v.item_bias is not None
        self.users = np.asarray(v.user_factors, np.float64)
        items = np.column_stack([np.asarray(v.item_factors, np.float64), v.item_bias])
        self.prior, self.strength = Prior.of(items), float(strength)
        logits = self.users @ items[:, :-1].T + items[:, -1]
        top = logits.max(axis=1)
        self.log_z = top + np.log(np.exp(logits - top[:, None]).sum(axis=1))
        seen = loaded.seen
        per_rating = (
            seen.ratings / loaded.manifest.global_mean
            if weighted and seen.ratings is not None
            else np.ones(len(seen.indices))
        )
        owner = np.repeat(np.arange(len(self.users)), np.diff(seen.indptr))
        self.total = np.bincount(owner, weights=per_rating, minlength=len(self.users))
        self.mean_rating, self.weighted = loaded.manifest.global_mean, weighted

    def solve(self, user_rows: np.ndarray, ratings: np.ndarray) -> tuple[np.ndarray, float]:
        z_all = np.column_stack([self.users, np.ones(len(self.users))])
        w = np.asarray(ratings, np.float64)
        w = w / self.mean_rating if self.weighted else np.ones(len(user_rows))
        pulled = w @ z_all[user_rows]
        precision = self.strength * self.prior.precision
        centre = self.prior.mean

        def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
            t = z_all @ x
            d = x - centre
            value = pulled @ x - self.total @ np.logaddexp(self.log_z, t) - 0.5 * d @ precision @ d
            return float(value), np.exp(t - np.logaddexp(self.log_z, t))

        def step(x: np.ndarray, sigma: np.ndarray) -> np.ndarray:
            grad = pulled - (self.total * sigma) @ z_all - precision @ (x - centre)
            curve = self.total * sigma * (1 - sigma)
            out: np.ndarray = np.linalg.solve((z_all * curve[:, None]).T @ z_all + precision, grad)
            return out

        x = _ascend(centre.copy(), objective, step)
        return x[:-1].astype(np.float32), float(x[-1])
