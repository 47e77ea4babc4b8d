"""Small-sample statistics of the reports: Student-t confidence intervals over seeds and paired differences.

Pure functions on plain floats (no scipy). With ``n`` seeds of a score ``x_1..x_n`` (sample mean ``m``, sample
standard deviation ``s`` with ddof=1) the two-sided interval at level ``L`` is the textbook Student-t interval

    m ± t_{(1+L)/2, n-1} · s / sqrt(n)

(e.g. Montgomery & Runger, *Applied Statistics and Probability for Engineers*, §8.2). A *paired difference* of two
methods A and B takes, for every seed both were run with, ``d_i = A_i - B_i`` and applies the same interval to the
``d_i``: seed-to-seed variation shared by both methods (data draw, initialisation, sampling) cancels, so it
resolves smaller differences than comparing two separate intervals (the paired t-test; ibid. §10.4).

The Student-t quantile is computed exactly for integer degrees of freedom from the closed form of the two-sided
t distribution function (Abramowitz & Stegun, *Handbook of Mathematical Functions*, 26.7.3 and 26.7.4) inverted by
bisection.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["CI_LEVEL", "Interval", "t_two_sided_cdf", "t_quantile", "mean_interval", "paired_difference"]

CI_LEVEL: float = 0.95
"""Confidence level of every interval the reports print."""


def t_two_sided_cdf(t: float, df: int) -> float:
    """``P(|T| <= t)`` for Student's T with integer ``df >= 1`` degrees of freedom (A&S 26.7.3/26.7.4)."""
    if not isinstance(df, int) or isinstance(df, bool) or df < 1:
        raise ValueError(f"df: expected an integer >= 1, got {df!r}")
    if t <= 0:
        return 0.0
    if math.isinf(t):
        return 1.0
    theta = math.atan(t / math.sqrt(df))
    cos2 = math.cos(theta) ** 2
    if df % 2 == 1:
        # (2/pi) [theta + sin(theta) (cos + 2/3 cos^3 + 2.4/(3.5) cos^5 + ... + cos^(df-2) term)]
        total = 0.0
        if df > 1:
            term = math.cos(theta)
            total = term
            for k in range(1, (df - 3) // 2 + 1):
                term *= cos2 * (2 * k) / (2 * k + 1)
                total += term
        return min(1.0, 2.0 / math.pi * (theta + math.sin(theta) * total))
    # sin(theta) [1 + 1/2 cos^2 + 1.3/(2.4) cos^4 + ... + cos^(df-2) term]
    term = total = 1.0
    for k in range(1, (df - 2) // 2 + 1):
        term *= cos2 * (2 * k - 1) / (2 * k)
        total += term
    return min(1.0, math.sin(theta) * total)


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's T with integer ``df`` (``0.5 < p < 1``), e.g. ``t_quantile(0.975, 2)``
    = 4.303. Exact up to float rounding (bisection on `t_two_sided_cdf`)."""
    if not 0.5 < p < 1.0:
        raise ValueError(f"p: expected 0.5 < p < 1, got {p!r}")
    target = 2.0 * p - 1.0  # P(|T| <= t) = 2 P(T <= t) - 1
    low, high = 0.0, 1.0
    while t_two_sided_cdf(high, df) < target:
        low, high = high, 2.0 * high
    for _ in range(200):
        mid = 0.5 * (low + high)
        if mid in (low, high):
            break
        if t_two_sided_cdf(mid, df) < target:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` values with its two-sided Student-t confidence interval (NaN bounds when ``n < 2``)."""

    mean: float
    """Sample mean (NaN when ``n == 0`` or any value is NaN)."""
    low: float
    """Lower bound ``mean - half_width``."""
    high: float
    """Upper bound ``mean + half_width``."""
    std: float
    """Sample standard deviation (ddof=1; NaN when ``n < 2``)."""
    n: int
    """Number of values (seeds, or seed pairs for a paired difference)."""
    level: float
    """Confidence level, e.g. 0.95."""

    @property
    def half_width(self) -> float:
        """``t_{(1+level)/2, n-1} · std / sqrt(n)``."""
        return 0.5 * (self.high - self.low)

    def contains(self, value: float) -> bool:
        """Whether ``low <= value <= high`` (False when the bounds are NaN)."""
        return bool(self.low <= value <= self.high)


def mean_interval(values: Iterable[float], *, level: float = CI_LEVEL) -> Interval:
    """Mean and Student-t interval of ``values``; NaN values propagate (every field but ``n`` becomes NaN)."""
    xs = [float(v) for v in values]
    n = len(xs)
    nan = float("nan")
    if n == 0 or any(math.isnan(x) for x in xs):
        return Interval(mean=nan, low=nan, high=nan, std=nan, n=n, level=level)
    mean = math.fsum(xs) / n
    if n == 1:
        return Interval(mean=mean, low=nan, high=nan, std=nan, n=1, level=level)
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile(0.5 + level / 2.0, n - 1) * std / math.sqrt(n)
    return Interval(mean=mean, low=mean - half, high=mean + half, std=std, n=n, level=level)


def paired_difference(a: Mapping[int, float], b: Mapping[int, float], *,
                      level: float = CI_LEVEL) -> Interval:
    """Interval of ``a[seed] - b[seed]`` over the seeds both mappings hold (``n`` = number of pairs; seeds only one
    of them has are not used)."""
    common = sorted(set(a) & set(b))
    return mean_interval((a[s] - b[s] for s in common), level=level)
