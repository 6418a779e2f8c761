"""Means and rates with confidence intervals, on the standard library alone.

The Student-t quantile is computed, not tabulated: the t distribution's CDF through the
regularised incomplete beta function, inverted by bisection. That serves any level and the
fractional degrees of freedom of Welch's interval, and agrees with published tables to 1e-9.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Interval", "mean_ci", "mean_difference", "t_quantile", "wilson"]

_NAN = float("nan")


@dataclass(frozen=True)
class Interval:
    """An estimate `value` within [`low`, `high`] at confidence `level`, from `n` observations.

    Empty (n = 0) intervals hold nan everywhere; a single observation has a value and nan bounds.
    """

    value: float
    low: float
    high: float
    n: int
    level: float = 0.95

    @property
    def empty(self) -> bool:
        return self.n == 0 or math.isnan(self.value)

    @property
    def half_width(self) -> float:
        """Half the interval's width (nan without bounds)."""
        return (self.high - self.low) / 2

    def format(self, fmt: str = ".2f") -> str:
        """'16.26 ± 0.31' for a symmetric interval, '0.80 [0.49, 0.94]' otherwise, '—' if empty."""
        if self.empty:
            return "—"
        value = format(self.value, fmt)
        if math.isnan(self.low) or math.isnan(self.high):
            return value
        plain = fmt.replace("+", "")  # a sign is for the value ("+1.20"), not for its width
        if math.isclose(self.value - self.low, self.high - self.value, rel_tol=1e-6, abs_tol=1e-9):
            return f"{value} ± {format(self.high - self.value, plain)}"
        return f"{value} [{format(self.low, plain)}, {format(self.high, plain)}]"

    def __str__(self) -> str:
        return self.format()


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"confidence level {level!r} is outside (0, 1); use e.g. 0.95")


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    # Lentz's method for the continued fraction of the incomplete beta function.
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1) < 1e-15:
            break
    return result


def _regularised_beta(a: float, b: float, x: float) -> float:
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    # The continued fraction converges fast only on one side of the mean; use symmetry.
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1 - math.exp(log_front) * _beta_continued_fraction(b, a, 1 - x) / b


def _t_upper_tail(t: float, df: float) -> float:
    """P(T > t) for t >= 0."""
    return 0.5 * _regularised_beta(df / 2, 0.5, df / (df + t * t))


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with `df` (> 0, possibly fractional) degrees of freedom."""
    if not 0 < p < 1:
        raise ValueError(f"probability {p!r} is outside (0, 1)")
    if not df > 0:
        raise ValueError(f"degrees of freedom {df!r} must be positive")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1 - p, df)
    if df == 1:  # Cauchy: exact
        return math.tan(math.pi * (p - 0.5))
    if df == 2:  # exact
        return (2 * p - 1) * math.sqrt(2 / (4 * p * (1 - p)))
    if df > 1e7:
        return statistics.NormalDist().inv_cdf(p)
    tail = 1 - p
    # The t quantile lies above the normal one; double a bound until it holds the answer.
    low = statistics.NormalDist().inv_cdf(p)
    high = max(2 * low, 1.0)
    while _t_upper_tail(high, df) > tail:
        low, high = high, 2 * high
    for _ in range(200):
        mid = (low + high) / 2
        if _t_upper_tail(mid, df) > tail:
            low = mid
        else:
            high = mid
        if high - low < 1e-12 * max(1.0, high):
            break
    return (low + high) / 2


def mean_ci(values: Iterable[float], level: float = 0.95) -> Interval:
    """The mean of `values` with its Student-t confidence interval."""
    _check_level(level)
    data = [float(v) for v in values]
    n = len(data)
    if n == 0:
        return Interval(_NAN, _NAN, _NAN, 0, level)
    mean = statistics.fmean(data)
    if n == 1:
        return Interval(mean, _NAN, _NAN, 1, level)
    half = t_quantile((1 + level) / 2, n - 1) * statistics.stdev(data) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, level)


def wilson(successes: int, n: int, level: float = 0.95) -> Interval:
    """The rate successes/n with its Wilson score interval (sound near 0 and 1, unlike Wald's)."""
    _check_level(level)
    if not 0 <= successes <= n:
        raise ValueError(f"successes {successes} must lie between 0 and n = {n}")
    if n == 0:
        return Interval(_NAN, _NAN, _NAN, 0, level)
    z = statistics.NormalDist().inv_cdf((1 + level) / 2)
    rate = successes / n
    scale = 1 + z * z / n
    centre = (rate + z * z / (2 * n)) / scale
    half = z / scale * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
    # At 0 or n the bound is exactly 0 or 1; the formula only gets there up to rounding.
    low = 0.0 if successes == 0 else centre - half
    high = 1.0 if successes == n else centre + half
    return Interval(rate, low, high, n, level)


def mean_difference(before: Interval, after: Interval) -> Interval:
    """after - before with Welch's interval, from two `mean_ci` intervals of independent samples.

    Each sample's standard error is read back from its interval, so both need n >= 2; otherwise
    the difference comes without bounds (or empty, when either mean is).
    """
    if before.level != after.level:
        raise ValueError(f"intervals at different levels ({before.level}, {after.level})")
    level = before.level
    if before.empty or after.empty:
        return Interval(_NAN, _NAN, _NAN, 0, level)
    diff = after.value - before.value
    n = min(before.n, after.n)
    if before.n < 2 or after.n < 2 or math.isnan(before.half_width + after.half_width):
        return Interval(diff, _NAN, _NAN, n, level)
    q = (1 + level) / 2
    se2_before = (before.half_width / t_quantile(q, before.n - 1)) ** 2
    se2_after = (after.half_width / t_quantile(q, after.n - 1)) ** 2
    se2 = se2_before + se2_after
    if se2 == 0:
        return Interval(diff, diff, diff, n, level)
    # Welch–Satterthwaite degrees of freedom.
    df = se2**2 / (se2_before**2 / (before.n - 1) + se2_after**2 / (after.n - 1))
    half = t_quantile(q, df) * math.sqrt(se2)
    return Interval(diff, diff - half, diff + half, n, level)
