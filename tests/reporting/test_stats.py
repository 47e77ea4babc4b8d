"""Student-t quantiles and intervals against a printed t table and hand computations (no scipy)."""
import math

import pytest

from ckda_avalanche.reporting.stats import mean_interval, paired_difference, t_quantile, t_two_sided_cdf

# Two-sided 95% (p = 0.975) and 99% (p = 0.995) critical values of Student's t, from a printed table
# (e.g. NIST/SEMATECH e-Handbook of Statistical Methods, section 1.3.6.7.2), 3 decimals.
T_TABLE_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
               10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042, 100: 1.984}
T_TABLE_995 = {1: 63.657, 2: 9.925, 3: 5.841, 4: 4.604, 5: 4.032, 10: 3.169, 30: 2.750}
T3 = 3.182446  # t_{0.975, 3} to 6 decimals
T2 = 4.302653  # t_{0.975, 2} to 6 decimals


@pytest.mark.parametrize("df,expected", sorted(T_TABLE_975.items()))
def test_t_quantile_975_matches_table(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=6e-4)


@pytest.mark.parametrize("df,expected", sorted(T_TABLE_995.items()))
def test_t_quantile_995_matches_table(df, expected):
    assert t_quantile(0.995, df) == pytest.approx(expected, abs=6e-4)


@pytest.mark.parametrize("p", [0.6, 0.9, 0.975, 0.999])
def test_t_quantile_closed_forms(p):
    # df = 1 is the Cauchy distribution: t = tan(pi (p - 1/2)); df = 2: F(t) = 1/2 + t / (2 sqrt(2 + t^2)),
    # so with a = 2p - 1, t = a sqrt(2 / (1 - a^2)).
    assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-9)
    a = 2 * p - 1
    assert t_quantile(p, 2) == pytest.approx(a * math.sqrt(2 / (1 - a * a)), rel=1e-9)


def test_t_cdf_limits_and_errors():
    assert t_two_sided_cdf(0.0, 3) == 0.0 and t_two_sided_cdf(math.inf, 3) == 1.0
    # df = 3: F(t) = 1/2 + (t / (sqrt(3) (1 + t^2 / 3)) + atan(t / sqrt(3))) / pi, so P(|T| <= 3) = 2 F(3) - 1
    # = (2 / pi) (pi / 3 + sqrt(3) / 4)
    assert t_two_sided_cdf(3.0, 3) == pytest.approx(2 / math.pi * (math.pi / 3 + math.sqrt(3) / 4))
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="df"):
            t_two_sided_cdf(1.0, bad)
    with pytest.raises(ValueError, match="p"):
        t_quantile(0.4, 3)


def test_mean_interval_by_hand():
    ci = mean_interval([0.1, 0.2, 0.3, 0.4])
    std = math.sqrt((0.15**2 + 0.05**2 + 0.05**2 + 0.15**2) / 3)
    half = T3 * std / 2
    assert (ci.mean, ci.std, ci.n) == (pytest.approx(0.25), pytest.approx(std), 4)
    assert ci.low == pytest.approx(0.25 - half, rel=1e-6) and ci.high == pytest.approx(0.25 + half, rel=1e-6)
    assert ci.half_width == pytest.approx(half, rel=1e-6)
    assert ci.contains(0.25) and not ci.contains(0.25 + 1.01 * half)


def test_mean_interval_small_and_nan():
    one = mean_interval([0.3])
    assert one.mean == 0.3 and one.n == 1 and math.isnan(one.low) and math.isnan(one.std)
    assert not one.contains(0.3)
    empty = mean_interval([])
    assert empty.n == 0 and math.isnan(empty.mean)
    holey = mean_interval([0.1, float("nan"), 0.3])
    assert holey.n == 3 and math.isnan(holey.mean) and math.isnan(holey.high)
    # no spread: the interval is the point itself
    flat = mean_interval([0.2, 0.2, 0.2])
    assert flat.low == pytest.approx(0.2) and flat.high == pytest.approx(0.2) and flat.contains(0.2)


def test_paired_difference_uses_common_seeds_only():
    a = {0: 0.50, 1: 0.60, 2: 0.70}
    b = {0: 0.40, 1: 0.45, 2: 0.65, 3: 0.90}  # seed 3 has no partner
    diff = paired_difference(a, b)
    # d = 0.10, 0.15, 0.05: mean 0.10, sample std 0.05, half-width t_{0.975,2} * 0.05 / sqrt(3)
    half = T2 * 0.05 / math.sqrt(3)
    assert diff.n == 3
    assert diff.mean == pytest.approx(0.10) and diff.std == pytest.approx(0.05)
    assert (diff.low, diff.high) == (pytest.approx(0.10 - half, rel=1e-6), pytest.approx(0.10 + half, rel=1e-6))
    assert paired_difference(a, {5: 0.1}).n == 0
