"""The intervals and tests against reference values (computed by hand from their formulas)."""

from __future__ import annotations

import math
import random

import pytest

from app.experiments.stats import difference, mean, means, rate, sequential, user_preference


def test_wilson_interval():
    est = rate(8, 20)
    assert est.value == pytest.approx(0.4)
    # Wilson, z = 1.95996: centre (p + z^2/2n) / (1 + z^2/n), half z sqrt(p(1-p)/n + z^2/4n^2) / ...
    assert (est.low, est.high) == pytest.approx((0.21879, 0.61335), abs=1e-4)
    assert rate(0, 10).low == 0.0 and rate(10, 10).high == pytest.approx(1.0)
    assert rate(0, 0).value is None


def test_mean_interval():
    values = [3.0, 4.0, 5.0, 4.0]
    est = mean(sum(values), sum(v * v for v in values), len(values))
    sd = math.sqrt(sum((v - 4) ** 2 for v in values) / 3)
    assert est.value == 4.0
    assert est.high - est.value == pytest.approx(1.959964 * sd / 2, rel=1e-6)


def test_difference_of_two_rates_and_its_p_value():
    diff = difference(40, 400, 60, 400)  # 10% vs 15%
    assert diff.estimate.value == pytest.approx(0.05)
    se = math.sqrt(0.1 * 0.9 / 400 + 0.15 * 0.85 / 400)
    assert diff.estimate.low == pytest.approx(0.05 - 1.959964 * se, rel=1e-6)
    pooled = 100 / 800
    z = 0.05 / math.sqrt(pooled * (1 - pooled) * (2 / 400))
    assert diff.p_value == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-6)
    assert difference(5, 100, 5, 100).p_value == pytest.approx(1.0)


def test_welch_difference_of_two_means():
    a, b = [0.0, 0.5, 1.0, 0.5], [1.0, 1.0, 0.5, 1.0, 0.75]
    diff = means(a, b)
    ma, mb = sum(a) / 4, sum(b) / 5
    va = sum((x - ma) ** 2 for x in a) / 3
    vb = sum((x - mb) ** 2 for x in b) / 4
    se = math.sqrt(va / 4 + vb / 5)
    assert diff.estimate.value == pytest.approx(mb - ma)
    assert diff.estimate.low == pytest.approx(mb - ma - 1.959964 * se, rel=1e-6)
    assert diff.p_value == pytest.approx(math.erfc((mb - ma) / se / math.sqrt(2)), rel=1e-6)
    assert means([1.0], b).p_value is None  # one user is no spread


def test_interleavings_verdict_is_the_mean_user_preference():
    scores = [1.0, 0.5, 1.0, -1.0, 0.25, 1.0]
    pref = user_preference(scores)
    m = sum(scores) / 6
    se = math.sqrt(sum((x - m) ** 2 for x in scores) / 5) / math.sqrt(6)
    assert pref.estimate.value == pytest.approx(m)
    assert pref.p_value == pytest.approx(math.erfc(m / se / math.sqrt(2)), rel=1e-6)
    assert user_preference([1.0]).p_value is None


def test_the_always_valid_interval_follows_its_formula_and_contains_the_fixed_one():
    fixed = means([0.0, 0.5, 1.0, 0.5, 0.25], [1.0, 1.0, 0.5, 1.0, 0.75])
    assert fixed.se is not None and fixed.estimate.value is not None
    v, t2, m = fixed.se**2, 0.05**2, fixed.estimate.value
    valid = sequential(fixed, 0.05)
    half = math.sqrt(v * (v + t2) / t2 * (math.log((v + t2) / v) + 2 * math.log(20)))
    assert valid.estimate.value == m
    assert (valid.estimate.low, valid.estimate.high) == pytest.approx((m - half, m + half))
    ratio = math.sqrt(v / (v + t2)) * math.exp(t2 * m * m / (2 * v * (v + t2)))
    assert valid.p_value == pytest.approx(min(1.0, 1 / ratio))
    assert valid.estimate.low < fixed.estimate.low and valid.estimate.high > fixed.estimate.high
    assert sequential(means([1.0], [1.0, 0.0]), 0.05).p_value is None  # nothing to widen


def test_reading_the_report_after_every_batch_names_a_false_winner_rarely_only_if_always_valid():
    """Two identical variants, the verdict read after every 10 users up to 300: the
    fixed-horizon interval, read that way, excludes zero at some look far more often than 5% of
    the time; the always-valid one stays under 5%."""
    rng = random.Random(3)
    fixed_wrong = valid_wrong = 0
    runs = 200
    for _ in range(runs):
        a: list[float] = []
        b: list[float] = []
        fixed_seen = valid_seen = False
        for _look in range(30):
            for _ in range(5):
                a.append(rng.random() < 0.4)
                b.append(rng.random() < 0.4)
            fixed = means(a, b)
            valid = sequential(fixed, 0.05)
            fixed_seen |= fixed.p_value is not None and fixed.p_value < 0.05
            valid_seen |= valid.p_value is not None and valid.p_value < 0.05
        fixed_wrong += fixed_seen
        valid_wrong += valid_seen
    assert fixed_wrong / runs > 0.15
    assert valid_wrong / runs < 0.05
