"""The statistics of online metrics and experiments: 95% intervals for rates (Wilson's) and
means (normal), the difference of two rates with its interval and two-sided p-value (the
two-proportion z-test), a sign test for interleaving's preferences."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    value: float | None  # None: nothing to estimate from
    low: float | None
    high: float | None

    def public(self) -> dict[str, float | None]:
        return {k: None if v is None else round(v, 6) for k, v in vars(self).items()}


NONE = Estimate(None, None, None)


def rate(successes: int, trials: int) -> Estimate:
    """Wilson's score interval: keeps within [0, 1] and behaves at 0 and 1 successes."""
    if trials <= 0:
        return NONE
    p = successes / trials
    denominator = 1 + Z95**2 / trials
    centre = (p + Z95**2 / (2 * trials)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / trials + Z95**2 / (4 * trials**2)) / denominator
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half))


def mean(total: float, squares: float, count: int) -> Estimate:
    """The mean and its normal 95% interval from a sum, a sum of squares and a count."""
    if count <= 0:
        return NONE
    m = total / count
    if count == 1:
        return Estimate(m, None, None)
    variance = max(squares - count * m * m, 0.0) / (count - 1)
    half = Z95 * math.sqrt(variance / count)
    return Estimate(m, m - half, m + half)


def p_two_sided(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


@dataclass(frozen=True)
class Difference:
    """b's rate minus a's, its 95% interval (unpooled) and the p-value of no difference
    (pooled z-test)."""

    estimate: Estimate
    p_value: float | None

    def public(self) -> dict[str, object]:
        return {
            **self.estimate.public(),
            "p_value": None if self.p_value is None else round(self.p_value, 6),
        }


def difference(hits_a: int, trials_a: int, hits_b: int, trials_b: int) -> Difference:
    if trials_a <= 0 or trials_b <= 0:
        return Difference(NONE, None)
    pa, pb = hits_a / trials_a, hits_b / trials_b
    se = math.sqrt(pa * (1 - pa) / trials_a + pb * (1 - pb) / trials_b)
    pooled = (hits_a + hits_b) / (trials_a + trials_b)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b))
    p = 1.0 if se0 == 0 else p_two_sided((pb - pa) / se0)
    return Difference(Estimate(pb - pa, pb - pa - Z95 * se, pb - pa + Z95 * se), p)


def preference(wins_a: int, wins_b: int) -> Difference:
    """Interleaving: of the impressions where one variant's items got more hits, the share won
    by b minus one half (0: no preference), with its interval and the sign test's p-value
    (normal approximation)."""
    decided = wins_a + wins_b
    if decided <= 0:
        return Difference(NONE, None)
    share = rate(wins_b, decided)
    assert share.value is not None and share.low is not None and share.high is not None
    z = (wins_b - decided / 2) / math.sqrt(decided / 4)
    return Difference(
        Estimate(share.value - 0.5, share.low - 0.5, share.high - 0.5), p_two_sided(z)
    )
