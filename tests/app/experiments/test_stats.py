"""The intervals and tests against reference values (computed by hand from their formulas)."""

from __future__ import annotations

import math

import pytest

from app.experiments.stats import difference, mean, preference, rate


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


def test_the_sign_test_of_interleaving():
    pref = preference(30, 70)
    assert pref.estimate.value == pytest.approx(0.2)
    assert pref.p_value == pytest.approx(math.erfc((20 / 5) / math.sqrt(2)), rel=1e-6)
    assert pref.estimate.low > 0
    assert preference(0, 0).p_value is None
