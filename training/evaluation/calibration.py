"""Calibrating how sure the rating model is (`artifact.posterior`), on validation: the residual
noise, and per nominal level the half-width in predictive standard deviations that covers that
share of validation ratings. Measured on the first fit, which never saw validation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from artifact.manifest import UncertaintySpec
from artifact.posterior import LEVELS, Prior, features, predictive_sd, user_features
from training.evaluation.ranking import seen_items
from training.fitting import Fit

FACTOR_MODELS = ("mf", "mf_bias")
# Users whose validation ratings set the multipliers: one covariance per user (~0.3 ms each) was
# 53 s of the 20M-rating train for 138k users; a seeded sample of 20,000 (~280k ratings there)
# fixes the quantiles to well under a hundredth of a standard deviation. ml-100k and ml-1m stay
# whole.
CALIBRATION_USERS = 20_000


def calibrate(
    kind: str,
    fit: Fit,
    fitted_on: pd.DataFrame,
    validation: pd.DataFrame,
    rating_range: tuple[float, float],
    max_users: int = CALIBRATION_USERS,
) -> UncertaintySpec | None:
    """The uncertainty spec of a factor model (None for the MLPs, whose rating is not linear in
    a user vector, and without validation ratings of known users and items).

    Args:
        fit: the model fitted on `fitted_on` alone.
        max_users: past this many validation users, the multipliers come from the ratings of
            `sampled_users` of them (the noise from every validation rating still).
    """
    if kind not in FACTOR_MODELS or validation.empty:
        return None
    arrays = fit.model.factors_for_export()
    item_bias, user_bias = arrays.get("item_bias"), arrays.get("user_bias")
    item_features = features(arrays["item_factors"], item_bias)
    prior = Prior.of(user_features(arrays["user_factors"], user_bias))
    users = fit.users.lookup(validation["user_id"])
    items = fit.items.lookup(validation["item_id"])
    known = (users < fit.users.oov) & (items < fit.items.oov)
    if not known.any():
        return None
    users, items = users[known], items[known]
    ratings = validation["rating"].to_numpy(np.float64)[known]
    p = np.asarray(arrays["user_factors"], np.float64)
    predicted = float(fit.model.global_mean) + np.einsum(
        "nk,nk->n", p[users], np.asarray(arrays["item_factors"], np.float64)[items]
    )
    if user_bias is not None and item_bias is not None:
        predicted += np.asarray(user_bias, np.float64)[users] + np.asarray(item_bias)[items]
    predicted = np.clip(predicted, *rating_range)
    noise = float(np.mean((ratings - predicted) ** 2))
    seen = seen_items(fit.users, fit.items, fitted_on)
    distinct = np.unique(users)
    if len(distinct) > max_users:
        sampled = np.isin(users, sampled_users(distinct, max_users))
        users, items = users[sampled], items[sampled]
        ratings, predicted = ratings[sampled], predicted[sampled]
    sd = np.empty(len(users))
    # Each user's validation rows, grouped by one sort (a scan per user was quadratic: ~3 min
    # of the 20M-rating train's rating stage, 138k users x 2M rows).
    order = np.argsort(users, kind="stable")
    for at in np.split(order, np.flatnonzero(np.diff(users[order])) + 1):
        rated = item_features[seen.of(int(users[at[0]]))]
        sd[at] = predictive_sd(rated, item_features[items[at]], prior, noise)
    z = np.abs(ratings - predicted) / sd
    return UncertaintySpec(
        noise=noise,
        levels=list(LEVELS),
        multipliers=[float(q) for q in np.quantile(z, LEVELS)],
        validation_ratings=int(len(z)),
    )


def sampled_users(distinct: np.ndarray, max_users: int) -> np.ndarray:
    """The seeded sample of user rows whose validation ratings calibrate the multipliers."""
    return np.random.default_rng(0).choice(distinct, max_users, replace=False)
