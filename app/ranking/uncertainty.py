"""Intervals for /predict's ratings (`artifact.posterior`): per pair, the predicted rating plus
and minus the calibrated multiple of its predictive standard deviation, clipped to the rating
scale. The user's posterior counts every rating the service holds of them: the version's
training ratings and their live ones; a user without history has the population's prior (wide)."""

from __future__ import annotations

import numpy as np

from app.events.foldin import NewItems
from app.events.view import VersionView
from app.serving.loader import LoadedVersion, RatingPosterior
from artifact.posterior import multiplier, predictive_sd


class NoIntervals(Exception):
    """The served model gives no intervals; the message says why."""


def intervals(
    view: VersionView,
    user_ids: list[str],
    item_ids: list[str],
    predicted: np.ndarray,
    level: float,
) -> list[tuple[float, float]]:
    """[low, high] per pair that holds the rating with probability `level` (as calibrated).

    Raises:
        NoIntervals: the model is not a factor model (or was exported before intervals).
    """
    loaded = view.loaded
    posterior = loaded.posterior
    if posterior is None:
        raise NoIntervals(
            f"version {loaded.version} ({loaded.manifest.model.kind}) gives no intervals: they "
            "need a matrix-factorisation rating model (mf, mf_bias) with calibration in its "
            "manifest"
        )
    spec = posterior.spec
    half = multiplier(spec.levels, spec.multipliers, level)
    low, high = loaded.manifest.rating_range
    new = view.new_items
    sd = np.empty(len(user_ids))
    by_user: dict[str, list[int]] = {}
    for i, user_id in enumerate(user_ids):
        by_user.setdefault(user_id, []).append(i)
    for user_id, at in by_user.items():
        user = view.user(user_id)
        rated = user.rated_rows()
        if user.row is not None:
            rated = np.union1d(loaded.seen.of(user.row), rated)
        queries = np.array([view.item_row(item_ids[i], new) for i in at], np.int64)
        sd[at] = predictive_sd(
            _features(loaded, posterior, new, rated),
            _features(loaded, posterior, new, queries),
            posterior.prior,
            spec.noise,
        )
    lows = np.clip(predicted - half * sd, low, high).round(4).tolist()
    highs = np.clip(predicted + half * sd, low, high).round(4).tolist()
    return list(zip(lows, highs, strict=True))


def _features(
    loaded: LoadedVersion, posterior: RatingPosterior, new: NewItems | None, rows: np.ndarray
) -> np.ndarray:
    """Features of item rows: the catalogue's, then folded-in new items' from their rating
    factors (zero, so only the noise counts, for a new item without them)."""
    inside = rows < loaded.n_items
    if inside.all():
        return posterior.features(rows)
    d = posterior.dim
    out = np.zeros((len(rows), d))
    out[inside] = posterior.features(rows[inside])
    if new is not None and new.rating_factors is not None:
        k = new.rating_factors.shape[1]
        out[~inside, :k] = new.rating_factors[rows[~inside] - loaded.n_items]
        if d > k:
            out[~inside, k] = 1.0  # the user's bias
    return out
