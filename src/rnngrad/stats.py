"""The statistics of the tables and findings, from scipy.stats (no torch).

Wilson intervals of a solved rate (binomtest), percentile bootstrap intervals with a
fixed generator so that a table is the same on every run (bootstrap), Spearman's rank
correlation (spearmanr) and the |rho| a test with n pairs can tell from zero.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable

import numpy as np
from scipy import stats

__all__ = [
    "finite_values",
    "wilson_interval",
    "bootstrap_mean_ci",
    "spearman",
    "bootstrap_spearman",
    "rho_needed",
]

BOOTSTRAP_RESAMPLES = 10_000  # test_metric interval: bootstrap of the mean over seeds
BOOTSTRAP_SEED = 0  # a fixed generator per interval: the tables are deterministic


def finite_values(values: Iterable[float]) -> np.ndarray:
    """The finite values, None, NaN and inf dropped."""
    x = np.asarray([v for v in values if v is not None], dtype=float)
    return x[np.isfinite(x)]


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion; NaN for n = 0.

    Example:
        >>> lo, hi = wilson_interval(5, 5)
        >>> round(lo, 3), hi
        (0.566, 1.0)
    """
    if n <= 0:
        return math.nan, math.nan
    ci = stats.binomtest(int(successes), int(n)).proportion_ci(level, method="wilson")
    return float(ci.low), float(ci.high)


def bootstrap_mean_ci(
    values: Iterable[float],
    level: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float, float]:
    """Mean and bootstrap percentile interval of the mean of the finite values.

    Every resampled mean lies between the smallest and the largest value, so the
    interval never leaves a metric's range (an MSE stays >= 0, an accuracy in [0, 1]);
    NaN bounds with fewer than two values. A fixed generator (`seed`) makes it
    reproducible.

    Example:
        >>> m, lo, hi = bootstrap_mean_ci([0.001, 0.002, 0.3])
        >>> lo >= 0.001 and hi <= 0.3
        True
    """
    x = finite_values(values)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    ci = stats.bootstrap(
        (x,),
        np.mean,
        confidence_level=level,
        n_resamples=resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    ).confidence_interval
    # the mean of equal values can differ from them in the last bit: clip to the range
    return mean, float(np.clip(ci.low, x.min(), x.max())), float(np.clip(ci.high, x.min(), x.max()))


def _pairs(x: Iterable[float], y: Iterable[float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(list(x), dtype=float), np.asarray(list(y), dtype=float)
    ok = ~(np.isnan(x) | np.isnan(y))
    return x[ok], y[ok]


def _rho(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 3:
        return math.nan
    with warnings.catch_warnings():  # a constant rank has no correlation: NaN, said once
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        return float(stats.spearmanr(x, y).statistic)


def spearman(x: Iterable[float], y: Iterable[float]) -> float:
    """Spearman's rank correlation of the pairs without NaN (average ranks for ties,
    +inf ranks highest); NaN with fewer than three pairs or a constant rank.

    Example:
        >>> round(spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]), 4)
        0.8208
    """
    return _rho(*_pairs(x, y))


def bootstrap_spearman(
    x: Iterable[float], y: Iterable[float], n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of `spearman` over resampled pairs (a fixed
    generator). A resample with a constant rank has no correlation: the interval is
    that of the others, or NaN when fewer than half the resamples have one."""
    x, y = _pairs(x, y)
    if x.size < 3:
        return math.nan, math.nan
    with warnings.catch_warnings():  # undefined resamples are handled below
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        res = stats.bootstrap(
            (x, y),
            _rho,
            paired=True,
            vectorized=False,
            n_resamples=n_boot,
            confidence_level=level,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    dist = res.bootstrap_distribution
    defined = dist[np.isfinite(dist)]
    if defined.size < n_boot / 2:
        return math.nan, math.nan
    if defined.size == dist.size:
        return float(res.confidence_interval.low), float(res.confidence_interval.high)
    tail = (1 - level) / 2
    return float(np.quantile(defined, tail)), float(np.quantile(defined, 1 - tail))


def rho_needed(n: int, level: float = 0.95) -> float:
    """The smallest |rho| that a two-sided test at 1 - level tells from zero with n pairs,
    by the t-approximation t = rho sqrt((n - 2) / (1 - rho^2)); NaN below 3 pairs.

    Example:
        >>> round(rho_needed(10), 3), round(rho_needed(30), 3)
        (0.632, 0.361)
    """
    if n < 3:
        return math.nan
    t = float(stats.t.ppf(0.5 + level / 2, n - 2))
    return t / math.sqrt(n - 2 + t * t)
