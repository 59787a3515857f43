"""How much a new user's first ratings are trusted: the fold-in prior's strength, and per rating
count the weight of popularity in their ranking and of the item-item blend (`app.events.solvers`
solves their vectors with it; `app.ranking.recommend` ranks with it)."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass


@dataclass(frozen=True)
class Trust:
    """How much a new user's n ratings count: the prior's `strength` (in ratings), and per
    rating count `at[j]` (ascending) the weight of log(1 + raters) added to their ranking
    scores (`popularity[j]`) and the weight of their item-item scores in the blend
    (`blend[j]`, as `app.ranking.blend` blends a trained user's with the version's weight).
    A count between two of `at` takes the lower one's settings (below the first, the first's);
    past the last, the popularity weight fades as (half + last) / (half + n), half of it when
    n - last = half + last. In their item-item scores each rating counts as r - `shift`: with
    the shipped shift of 4 a 5 counts +1, a 4 nothing and a 1 -3 against the films like it,
    where as plain stars every rating pulled its neighbours up."""

    strength: float
    at: tuple[int, ...]
    popularity: tuple[float, ...]
    blend: tuple[float, ...]
    half: float
    shift: float = 0.0

    def __post_init__(self) -> None:
        if not (len(self.at) == len(self.popularity) == len(self.blend) > 0):
            raise ValueError("Trust: at, popularity and blend need one value per count")
        if list(self.at) != sorted(set(self.at)):
            raise ValueError(f"Trust: counts {self.at} must rise")

    def _step(self, n: int) -> int:
        return max(0, bisect_right(self.at, n) - 1)

    def popularity_weight(self, n: int) -> float:
        last = self.at[-1]
        weight = self.popularity[self._step(n)]
        return weight if n <= last else weight * (self.half + last) / (self.half + n)

    def blend_weight(self, n: int) -> float:
        return self.blend[self._step(n)]


# Chosen on validation users by bench/coldstart.py (bench/README.md, "Cold start"): one prior
# strength and shift for every k, then per k the popularity weight and blend.
TRUST = Trust(
    strength=1.0,
    at=(1, 3, 5, 10, 20),
    popularity=(64.0, 64.0, 16.0, 8.0, 4.0),
    blend=(0.0, 0.0, 0.05, 0.05, 0.05),
    half=30.0,
    shift=4.0,
)
