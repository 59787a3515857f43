"""The default ranking where the version has item-item weights (`artifact.manifest.ItemItemSpec`):
the user's rating row times the weights, x_u B, blended with the vectors' score, each
standardised over the catalogue for this user:

    blend * (x_u B - mean) / sd + (1 - blend) * (vectors' score - mean') / sd'

x_u holds every rating the service has of the user: the version's training ratings, replaced
or joined by their live ones, so a rating counts in the item-item part the moment it is applied
(no solve). Users the version did not train on are blended with a weight of their own, chosen
per rating count on validation users with the popularity weight in the vectors' score
(`app.events.trust.TRUST`): none for their first ratings, where the version's weight ranked
them below popularity (bench/coldstart.py), some from five, and their ratings enter x_u lowered
by `Trust.shift`, so that a low rating pushes its item's neighbours down. Folded-in new items
have no weights: their item-item score is 0 (standardised like the catalogue's), their vectors'
score theirs.
"""

from __future__ import annotations

import numpy as np

from app.events.user import UserView
from app.ranking.types import Blend


def blended(
    user: UserView, dot: np.ndarray, weight: float | None = None, shift: float = 0.0
) -> tuple[np.ndarray, Blend]:
    """The blend of `dot` (the vectors' scores: the catalogue's, then new items') with the
    user's item-item scores, at `weight` (default: the version's); each rating counting as
    r - `shift` in x_u (a new user's `Trust.shift`; 0 for trained users, as the weights were
    fitted)."""
    loaded = user.loaded
    weights, spec = loaded.item_item, loaded.manifest.item_item
    assert weights is not None and spec is not None
    n = loaded.n_items
    rows, ratings = user.rating_row(new_items=False)  # weights exist for catalogue rows alone
    if shift:
        ratings = ratings - shift
    row = None if user.live else user.row  # a trained user's scores, while nothing is live
    found = loaded.trained_blends.get(row) if row is not None else None
    if found is not None:
        item_item, item_mean, item_sd = found
    else:
        item_item = (
            ratings.astype(np.float32) @ weights[rows] if len(rows) else np.zeros(n, np.float32)
        )
        item_mean, item_sd = _moments(item_item)
        if row is not None:
            loaded.trained_blends.put(row, (item_item, item_mean, item_sd))
    catalogue = dot[:n]
    dot_mean, dot_sd = _moments(catalogue)
    w = spec.blend if weight is None else weight
    a, b = w / item_sd, (1 - w) / dot_sd
    offset = -a * item_mean - b * dot_mean
    out = np.empty(len(dot), np.float32)
    np.multiply(item_item, a, out=out[:n])
    out[:n] += b * catalogue + offset
    if len(dot) > n:  # new items: no item-item weights
        out[n:] = b * dot[n:] + offset
    return out, Blend(
        w, rows, ratings.astype(np.float32), item_mean, item_sd, dot_mean, dot_sd, item_item
    )


def _moments(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation in two dot products (the hot path: one user per request)."""
    n = len(values)
    mean = float(values.sum(dtype=np.float64)) / n
    square = float(np.dot(values, values)) / n
    return mean, max(np.sqrt(max(square - mean * mean, 0.0)), 1e-12)
