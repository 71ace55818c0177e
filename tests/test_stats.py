"""rnngrad.stats against published values and closed forms (never against older code)."""

from __future__ import annotations

import math
import warnings

import pytest

from rnngrad.stats import (
    bootstrap_mean_ci,
    bootstrap_spearman,
    finite_values,
    rho_needed,
    spearman,
    wilson_interval,
)

Z = 1.959963984540054  # the normal quantile at 0.975


# ---------------------------------------------------------------------------- Wilson


@pytest.mark.parametrize("n", [1, 3, 10, 20])
def test_wilson_interval_of_none_and_all_has_a_closed_form(n):
    # k = 0: [0, z^2 / (n + z^2)]; k = n: [n / (n + z^2), 1]
    assert wilson_interval(0, n) == pytest.approx((0.0, Z * Z / (n + Z * Z)), abs=1e-12)
    assert wilson_interval(n, n) == pytest.approx((n / (n + Z * Z), 1.0), abs=1e-12)


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611),
     (1, 29, 0.0061, 0.1718)],
)  # fmt: skip
def test_wilson_interval_matches_newcombe_1998(k, n, low, high):
    # Newcombe (1998), Stat. Med. 17:857, Table II, method 3 (score, no correction)
    assert wilson_interval(k, n) == pytest.approx((low, high), abs=1e-4)


def test_wilson_interval_matches_r_prop_test_and_takes_a_level():
    # R: prop.test(3, 10, correct = FALSE)$conf.int -> 0.1077913 0.6032219
    assert wilson_interval(3, 10) == pytest.approx((0.1077913, 0.6032219), abs=1e-7)
    assert wilson_interval(3, 10, level=0.5)[1] < 0.6032219
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


# ------------------------------------------------------------------------- bootstrap


def test_bootstrap_of_two_values_spans_them():
    # resampled means of {0, 1}: 0, 1/2, 1 with probabilities 1/4, 1/2, 1/4, so the
    # 2.5 % and 97.5 % percentiles are the two values themselves
    assert bootstrap_mean_ci([0.0, 1.0]) == (0.5, 0.0, 1.0)


def test_bootstrap_interval_stays_in_the_metric_range_and_is_reproducible():
    mse = [0.001, 0.002, 0.3]  # a t-interval of these goes below 0
    mean, lo, hi = bootstrap_mean_ci(mse)
    assert mean == pytest.approx(0.101)
    assert 0.001 <= lo < mean < hi <= 0.3
    spread = [math.sin(i) for i in range(20)]  # many distinct resampled means
    assert bootstrap_mean_ci(spread) == bootstrap_mean_ci(spread)  # a fixed generator
    assert bootstrap_mean_ci(spread, seed=1) != bootstrap_mean_ci(spread)
    _, lo, hi = bootstrap_mean_ci([1.0, 1.0, 0.5, 1.0])  # accuracy
    assert 0.5 <= lo <= hi <= 1.0
    assert bootstrap_mean_ci([0.1, 0.1, 0.1]) == pytest.approx((0.1, 0.1, 0.1))
    assert bootstrap_mean_ci([0.1, 0.1, 0.1])[2] <= 0.1  # the mean is 0.1 + 1 ulp


def test_bootstrap_needs_two_finite_values():
    one = bootstrap_mean_ci([0.2, None, float("nan"), float("inf")])
    assert one[0] == 0.2 and math.isnan(one[1]) and math.isnan(one[2])
    assert all(math.isnan(v) for v in bootstrap_mean_ci([]))
    assert finite_values([1.0, None, math.nan, -math.inf]).tolist() == [1.0]


# -------------------------------------------------------------------------- Spearman


def test_spearman_matches_the_scipy_documentation():
    # scipy.stats.spearmanr's own example
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(0.8207826816681233)


def test_spearman_ranks_inf_highest_and_drops_missing_pairs():
    assert spearman([1, 2, math.inf, 3], [1, 2, 4, 3]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, math.nan], [3, 2, 1, 0]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 2, math.nan], [1, 2, 3]))  # two pairs left
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))  # a constant rank, silently


def test_bootstrap_spearman_of_a_monotone_sample_is_one():
    # every resample of increasing pairs is increasing (or constant: no correlation)
    assert bootstrap_spearman([1, 2, 3, 4], [2, 4, 8, 16]) == (1.0, 1.0)
    x, y = range(20), [math.sin(i) for i in range(20)]
    assert bootstrap_spearman(x, y) == bootstrap_spearman(x, y)  # a fixed generator
    assert bootstrap_spearman(x, y, seed=1) != bootstrap_spearman(x, y)
    lo, hi = bootstrap_spearman(x, y)
    assert -1 <= lo < spearman(x, y) < hi <= 1


def test_bootstrap_spearman_needs_most_resamples_defined():
    # a resample of these three pairs has a constant rank with probability 15/27 > 1/2
    assert spearman([1, 1, 2], [1, 2, 2]) == pytest.approx(0.5)
    assert all(math.isnan(v) for v in bootstrap_spearman([1, 1, 2], [1, 2, 2]))
    assert all(math.isnan(v) for v in bootstrap_spearman([1, 2], [1, 2]))


@pytest.mark.parametrize(("n", "r"), [(5, 0.878), (10, 0.632), (30, 0.361), (102, 0.195)])
def test_rho_needed_matches_the_table_of_critical_correlations(n, r):
    # critical values of Pearson's r, two-tailed 0.05, df = n - 2 (e.g. Zar, Table B.17)
    assert rho_needed(n) == pytest.approx(r, abs=5e-4)
    assert math.isnan(rho_needed(2))
