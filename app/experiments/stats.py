"""The statistics of online metrics and experiments: 95% intervals for rates (Wilson's) and
means (normal), the difference of two rates with its interval and two-sided p-value (the
two-proportion z-test), of two means (Welch's, for A/B verdicts over users), and the mean of
per-user preferences (interleaving's verdict)."""

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
    """A difference (b's minus a's), its 95% interval and the p-value of none, and its standard
    error (for `sequential`)."""

    estimate: Estimate
    p_value: float | None
    se: float | None = None

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
    return Difference(Estimate(pb - pa, pb - pa - Z95 * se, pb - pa + Z95 * se), p, se)


def sequential(fixed: Difference, tau: float, alpha: float = 0.05) -> Difference:
    """The same difference with an always-valid 95% interval and p-value (the mixture
    sequential probability ratio test, Johari, Pekelis and Walsh, "Always valid inference",
    2017, with a normal mixing distribution of scale `tau`): valid however often the report is
    read while data comes in, where a fixed-horizon interval read after every batch of users
    names a winner by chance far more often than 5% of the time. Wider than the fixed-horizon
    interval; the two agree on large samples up to a slowly growing factor."""
    if fixed.se is None or fixed.estimate.value is None:
        return fixed
    m, v, t2 = fixed.estimate.value, fixed.se**2, tau**2
    if v == 0:
        return fixed
    half = math.sqrt(v * (v + t2) / t2 * (math.log((v + t2) / v) + 2 * math.log(1 / alpha)))
    log_ratio = 0.5 * math.log(v / (v + t2)) + t2 * m * m / (2 * v * (v + t2))
    p = min(1.0, math.exp(-log_ratio)) if log_ratio < 700 else 0.0
    return Difference(Estimate(m, m - half, m + half), p, fixed.se)


def means(a: list[float], b: list[float]) -> Difference:
    """b's mean minus a's, its 95% interval and two-sided p-value (Welch: unequal variances;
    normal quantiles, fine at the tens of users an experiment needs)."""
    if len(a) < 2 or len(b) < 2:
        return Difference(NONE, None)
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    va = sum((x - ma) ** 2 for x in a) / (len(a) - 1)
    vb = sum((x - mb) ** 2 for x in b) / (len(b) - 1)
    se = math.sqrt(va / len(a) + vb / len(b))
    p = (1.0 if mb == ma else 0.0) if se == 0 else p_two_sided((mb - ma) / se)
    return Difference(Estimate(mb - ma, mb - ma - Z95 * se, mb - ma + Z95 * se), p, se)


def user_preference(scores: list[float]) -> Difference:
    """Interleaving: the mean over users of each one's preference (in [-1, 1]: the share of
    their decided impressions b won minus a's), its interval and p-value (one-sample, normal)."""
    if len(scores) < 2:
        return Difference(NONE, None)
    m = sum(scores) / len(scores)
    sd = math.sqrt(sum((x - m) ** 2 for x in scores) / (len(scores) - 1))
    se = sd / math.sqrt(len(scores))
    p = (1.0 if m == 0 else 0.0) if se == 0 else p_two_sided(m / se)
    return Difference(Estimate(m, m - Z95 * se, m + Z95 * se), p, se)
