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

Retrieval vectors fitted by implicit ALS have a third solver, that objective's own exact
solve (`app.events.implicit_fold.ImplicitFold`): it carries its own prior (the zeros of every
unrated item and the L2), so it takes no population prior.

`strength` is in units of ratings: how many ratings' worth of evidence the population prior
counts as. How much to trust a new user's k ratings is `TRUST`: that strength, and for each
k the weight of the items' log-popularity added to their ranking scores and the weight of the
item-item scores blended in (versions with item-item weights); all chosen per k on validation
users held out of training (bench/coldstart.py; bench/README.md records the grid and the
choice). On ml-100k a user's first few ratings say little about the rest beyond what
popularity says; from five on the item-item scores of what they rated add to it, a low rating
counting against its neighbours (`Trust.shift`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from app.events.trust import TRUST
from app.serving.loader import LoadedVersion
from artifact.posterior import Prior

RIDGE_STRENGTH = 1.0
# New items: the prior's strength (in ratings) for an item's vector. Not tuned: no benchmark
# holds items out yet; 1 is the users' choice.
ITEM_STRENGTH = 1.0

NEWTON_STEPS = 30
NEWTON_TOLERANCE = 1e-4
MAX_HALVINGS = 20


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
    # L2 on p_u added once rather than per rating (I-AutoRec's `l2 / 2 |W_u|^2` on the summed
    # error: the manifest's training.regularization "sum"); l2 and bias_l2 are then 0.
    once_l2: float = 0.0

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
        once_l2: float = 0.0,
    ) -> RidgeFold:
        users = np.asarray(user_factors, np.float64)
        if user_bias is not None:
            users = np.column_stack([users, np.asarray(user_bias, np.float64)])
        return cls(
            item_factors, item_bias, global_mean, l2, bias_l2, Prior.of(users), float(strength),
            once_l2,
        )  # fmt: skip

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
        factors, biases = self.solve_many([rows], [ratings], *_one_user(mean, strength))
        return factors[0], float(biases[0])

    def solve_many(
        self,
        rows: list[np.ndarray],
        ratings: list[np.ndarray],
        centres: np.ndarray | None = None,
        strengths: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """`solve` for many users at once: their (d, d) systems built from one pass over all
        their ratings and solved as one stack. Returns factors (users, K) and biases (users,)."""
        users, k = len(rows), self.item_factors.shape[1]
        biased = self.item_bias is not None
        d = k + biased
        counts = np.fromiter((len(r) for r in rows), np.int64, users)
        flat = np.concatenate(rows).astype(np.int64) if users else np.empty(0, np.int64)
        z = np.asarray(self.item_factors[flat], np.float64)
        y = np.concatenate(ratings).astype(np.float64) - self.global_mean if users else z[:, 0]
        if biased:
            assert self.item_bias is not None
            y = y - np.asarray(self.item_bias[flat], np.float64)
            z = np.column_stack([z, np.ones(len(flat))])
        a, b = grouped_gram(z, y, counts)
        penalty = np.full(d, self.l2)
        if biased:
            penalty[k] = self.bias_l2
        a += counts[:, None, None] * np.diag(penalty)
        if self.once_l2:
            a[:, np.arange(k), np.arange(k)] += self.once_l2
        centre = np.broadcast_to(self.prior.mean, (users, d)) if centres is None else centres
        s = np.full(users, self.strength) if strengths is None else strengths
        a += s[:, None, None] * self.prior.precision
        b += s[:, None] * (centre @ self.prior.precision)
        x = np.linalg.solve(a, b[:, :, None])[:, :, 0]
        return x[:, :k].astype(np.float32), (x[:, k] if biased else np.zeros(users))


def _one_user(
    mean: np.ndarray | None, strength: float | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """One user's prior centre and strength as `solve_many` takes them (None: the default)."""
    centres = None if mean is None else np.asarray(mean, np.float64)[None, :]
    strengths = None if strength is None else np.array([strength], np.float64)
    return centres, strengths


def grouped_gram(
    z: np.ndarray, y: np.ndarray, counts: np.ndarray, chunk: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Per group of consecutive rows (sizes `counts`): Z'Z (groups, d, d) and Z'y (groups, d),
    over chunks of rows so the outer products stay small."""
    groups, d = len(counts), z.shape[1]
    gram, cross = np.zeros((groups, d, d)), np.zeros((groups, d))
    owner = np.repeat(np.arange(groups), counts)
    for start in range(0, len(z), chunk):
        part = slice(start, start + chunk)
        who, zz = owner[part], z[part]
        np.add.at(cross, who, zz * y[part, None])
        # Rows of one group are consecutive: sum each run of outer products with reduceat.
        cuts = np.flatnonzero(np.r_[True, who[1:] != who[:-1]])
        gram[who[cuts]] += np.add.reduceat(zz[:, :, None] * zz[:, None, :], cuts, axis=0)
    return gram, cross


class SoftmaxFold:
    """Folds a user into the retrieval vectors; see the module docstring.

    Newton's method with the Hessian fixed where it is cheap to know: the softmax's covariance
    of the item vectors at the population's mean user, computed once per version. With the
    prior's precision P it is diagonalised once (C V = P V diag(lam), V' P V = I), so a step for
    any number of ratings t and any strength s is two (K, K) products:
    (t C + s P)^-1 g = V diag(1 / (t lam + s)) V' g. A step costs one pass over the catalogue
    (scores and their softmax-weighted mean); halving the step until it gains keeps the ascent
    monotone where the fixed Hessian is off. `solve_many` takes many users at once: a step
    scores all those still moving in one (users, items) product, in float32. Measured on
    ml-100k against exact Newton for one user: the same vectors to 1e-4, 1.7 ms -> ~0.1 ms a
    user in blocks of 256 (bench/README.md, "Cold start").
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
        self.item_factors32 = np.ascontiguousarray(item_factors, np.float32)
        self.item_bias32 = np.asarray(item_bias, np.float32)
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
        vectors: np.ndarray = self.solve_many([rows], [ratings], *_one_user(mean, strength))[0]
        return vectors

    def solve_many(
        self,
        rows: list[np.ndarray],
        ratings: list[np.ndarray],
        centres: np.ndarray | None = None,
        strengths: np.ndarray | None = None,
    ) -> np.ndarray:
        """`solve` for many users at once (users, K): each step scores the users still moving
        against the catalogue in one matrix product."""
        q, bias = self.item_factors, self.item_bias
        users = len(rows)
        centre = np.tile(self.prior.mean, (users, 1)) if centres is None else np.array(centres)
        s = np.full(users, self.strength) if strengths is None else np.asarray(strengths)
        counts = np.fromiter((len(r) for r in rows), np.int64, users)
        flat = np.concatenate(rows).astype(np.int64) if users else np.empty(0, np.int64)
        w = np.concatenate(ratings).astype(np.float64) if users else np.empty(0)
        w = w / self.mean_rating if self.weighted else np.ones(len(flat))
        owner = np.repeat(np.arange(users), counts)
        total = np.bincount(owner, weights=w, minlength=users)
        pulled = np.zeros((users, q.shape[1]))
        np.add.at(pulled, owner, w[:, None] * q[flat])  # sum_i w_i q_i per user
        fixed = np.bincount(owner, weights=w * bias[flat], minlength=users)
        precision = self.prior.precision
        scale = 1.0 / (total[:, None] * self.curvature + s[:, None])

        q32, bias32 = self.item_factors32, self.item_bias32

        def objective(p: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            # The catalogue passes in float32 (half the time; the vectors are float32 anyway).
            logits = p.astype(np.float32) @ q32.T + bias32
            top = logits.max(axis=1, keepdims=True)
            e = np.exp(logits - top)
            norm = e.sum(axis=1, keepdims=True)
            d = p - centre[at]
            lse = top[:, 0].astype(np.float64) + np.log(norm[:, 0].astype(np.float64))
            value = (
                np.einsum("ij,ij->i", pulled[at], p)
                + fixed[at]
                - total[at] * lse
                - 0.5 * s[at] * ((d @ precision) * d).sum(axis=1)
            )
            return value, e / norm

        def step(p: np.ndarray, pi: np.ndarray, at: np.ndarray) -> np.ndarray:
            grad = (
                pulled[at]
                - total[at, None] * (pi @ q32).astype(np.float64)
                - s[at, None] * ((p - centre[at]) @ precision)
            )
            out: np.ndarray = ((grad @ self.basis) * scale[at]) @ self.basis.T
            return out

        moving = total > 0  # no ratings: the prior's centre
        out = centre.copy()
        if moving.any():
            out[moving] = _ascend(centre[moving], objective, step, np.flatnonzero(moving))
        return out.astype(np.float32)


def _ascend(
    x: np.ndarray,
    objective: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    step: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    ids: np.ndarray,
) -> np.ndarray:
    """Maximise a concave objective for each row of `x` (one problem per row; `ids` are the
    rows' indices into the problems' constants, which `objective` and `step` take with the
    rows) by Newton-like steps, halving a row's step until it gains: a step far from the
    optimum can overshoot, and a halved one always gains a little. A row stops when its step
    is below the tolerance or no halving gains."""
    x = x.copy()
    value, state = objective(x, ids)
    active = np.arange(len(x))
    for _ in range(NEWTON_STEPS):
        if not len(active):
            break
        move = step(x[active], state[active], ids[active])
        new_value, new_state = objective(x[active] + move, ids[active])
        worse = np.flatnonzero(new_value < value[active])
        for _ in range(MAX_HALVINGS):
            # A step already below the tolerance that does not gain is rounding: stop there.
            worse = worse[np.abs(move[worse]).max(axis=1) >= NEWTON_TOLERANCE]
            if not len(worse):
                break
            move[worse] /= 2
            again, again_state = objective(x[active[worse]] + move[worse], ids[active[worse]])
            new_value[worse], new_state[worse] = again, again_state
            worse = worse[again < value[active[worse]]]
        gained = np.ones(len(active), bool)
        gained[worse] = False
        rows = active[gained]
        x[rows] += move[gained]
        value[rows], state[rows] = new_value[gained], new_state[gained]
        small = np.abs(move).max(axis=1) < NEWTON_TOLERANCE
        active = active[gained & ~small]
    return x


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    out: np.ndarray = e / e.sum()
    return out


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

        def objective(x: np.ndarray, _: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            t = x @ z_all.T  # (1, users)
            d = x - centre
            joined = np.logaddexp(self.log_z, t)
            value = (
                x @ pulled - joined @ self.total - 0.5 * np.einsum("ij,jk,ik->i", d, precision, d)
            )
            return value, np.exp(t - joined)

        def step(x: np.ndarray, sigma: np.ndarray, _: np.ndarray) -> np.ndarray:
            grad = pulled - (self.total * sigma[0]) @ z_all - precision @ (x[0] - centre)
            curve = self.total * sigma[0] * (1 - sigma[0])
            out = np.linalg.solve((z_all * curve[:, None]).T @ z_all + precision, grad)
            return np.asarray(out)[None, :]

        x = _ascend(centre[None, :].copy(), objective, step, np.zeros(1, np.int64))[0]
        return x[:-1].astype(np.float32), float(x[-1])
