"""How sure a matrix-factorisation rating is, the maths both sides share: training calibrates it
on validation and writes the result into the manifest (`UncertaintySpec`); the service computes
the same numbers for each /predict pair.

With the item vectors held fixed, a user's x = [p_u, b_u] (p_u alone for plain MF) has a
Gaussian posterior given their ratings: a prior from the trained users (`Prior`: their mean and
precision) and a likelihood r_ui ~ N(mu + b_i + f_i . x, noise) with f_i = [q_i, 1]:

    covariance = (F_u' F_u / noise + P)^-1        F_u: the features of the items they rated

and the predicted rating's variance is noise + f_i' covariance f_i: wide for a user with few
ratings or an item unlike what they rated, shrinking as ratings add up. Ratings are not
Gaussian (five steps, clipped), so the interval's half-width in standard deviations is not read
from a normal table but calibrated: at each nominal level, the quantile of |r - r_hat| / sd over
held-out validation ratings, a split-conformal step that holds whatever the residuals' shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The nominal levels calibrated (0.01 .. 0.99); a request's level is interpolated between them.
LEVELS = tuple(round(0.01 * k, 2) for k in range(1, 100))


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


def features(item_factors: np.ndarray, item_bias: np.ndarray | None) -> np.ndarray:
    """f_i per item: [q_i, 1] for a model with biases (the 1 carries the user's bias), else q_i."""
    q = np.asarray(item_factors, np.float64)
    if item_bias is None:
        return q
    return np.column_stack([q, np.ones(len(q))])


def user_features(user_factors: np.ndarray, user_bias: np.ndarray | None) -> np.ndarray:
    """x_u per user: [p_u, b_u] for a model with biases, else p_u (what `Prior.of` takes)."""
    p = np.asarray(user_factors, np.float64)
    if user_bias is None:
        return p
    return np.column_stack([p, np.asarray(user_bias, np.float64)])


def predictive_sd(rated: np.ndarray, queries: np.ndarray, prior: Prior, noise: float) -> np.ndarray:
    """Standard deviations of one user's predicted ratings.

    Args:
        rated: (m, d) features of the items the user rated (m may be 0).
        queries: (q, d) features of the items predicted.
        noise: the residual variance of a rating around the model's.
    """
    precision = rated.T @ rated / noise + prior.precision
    covariance = np.linalg.inv(precision)
    spread = np.einsum("qd,de,qe->q", queries, covariance, queries)
    sd: np.ndarray = np.sqrt(noise + np.maximum(spread, 0.0))
    return sd


def multiplier(levels: list[float], quantiles: list[float], level: float) -> float:
    """The calibrated half-width, in standard deviations, of a `level` interval (interpolated
    between the calibrated levels)."""
    return float(np.interp(level, levels, quantiles))
