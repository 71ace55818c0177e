"""rnngrad.measures: the one definition of decay rate, horizon and the bound's share."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from rnngrad import aggregate, measures
from rnngrad.measures import (
    HORIZON_RATIO,
    bound_summary,
    decay_rate,
    decay_summary,
    horizon,
    pooled_share,
)


def _profile(base: float, n: int, scale: float = 2.0) -> pd.DataFrame:
    d = np.arange(n)
    return pd.DataFrame({"t": n - 1 - d, "distance": d, "grad_h": scale * base**d})


def _synthetic(grad_h, start=0):
    d = np.arange(len(grad_h))[::-1] + start  # rows in time order: distance decreasing
    return pd.DataFrame({"t": np.arange(len(grad_h)), "distance": d, "grad_h": grad_h[::-1]})


# ---------------------------------------------------------------------- decay rate


@pytest.mark.parametrize("base", [0.5, 0.9, 1.0, 1.3])
def test_decay_rate_of_an_exact_exponential_is_log10_of_its_base(base):
    assert decay_rate(_profile(base, 30)) == pytest.approx(math.log10(base), abs=1e-12)


def test_decay_rate_ignores_negative_distances_zeros_and_nans():
    p = _profile(0.5, 20)
    extra = pd.DataFrame(
        {"t": [30, 31, 32, 33], "distance": [-1, -2, 25, 26], "grad_h": [5.0, 7.0, 0.0, np.nan]}
    )
    assert decay_rate(pd.concat([p, extra])) == pytest.approx(math.log10(0.5), abs=1e-12)
    prof = _synthetic(np.array([1.0, 0.1, 0.0, 1e-3, 1e-4]), start=-2)  # distances -2..2
    assert decay_rate(prof) == pytest.approx(-1.0)  # distances 0 and 1 only: 1 -> 0.1


def test_decay_rate_needs_two_points():
    assert math.isnan(decay_rate(_profile(0.5, 1)))
    assert math.isnan(decay_rate(_profile(0.5, 0)))
    assert math.isnan(decay_rate(_synthetic(np.array([0.0, 0.0, 0.0]))))


# ---------------------------------------------------------------------- horizon


def test_horizon_is_the_last_distance_above_the_ratio():
    assert HORIZON_RATIO == 1e-3
    # 0.5**9 = 1.95e-3 >= 1e-3 > 0.5**10 = 9.8e-4
    assert horizon(_profile(0.5, 21)) == (9, False)
    assert horizon(_synthetic(10.0 ** -np.arange(10.0))) == (3, False)  # 1e-3 is still >= 1e-3
    h, _ = horizon(_profile(0.5, 21))
    assert isinstance(h, int)


def test_horizon_censored_when_the_norm_never_falls_that_far():
    assert horizon(_profile(0.9, 21)) == (20, True)  # 0.9**20 = 0.12
    assert horizon(_synthetic(np.full(10, 2.0))) == (9, True)


def test_horizon_counts_a_dip_or_a_missing_norm_as_fallen():
    p = _profile(0.9, 21)
    p.loc[p["distance"] == 5, "grad_h"] = 1e-9  # a dip below the threshold, then recovery
    assert horizon(p) == (20, False)
    q = _profile(0.9, 21)
    q.loc[q["distance"] == 20, "grad_h"] = np.nan
    assert horizon(q) == (19, False)


def test_horizon_reads_from_distance_zero_not_the_last_row():
    prof = _synthetic(np.array([5.0, 1.0, 1e-2, 1e-4]), start=-1)  # distance 0 is 1.0
    assert horizon(prof) == (1, False)


def test_horizon_without_a_start_is_nan():
    for p in (_profile(0.5, 10)[lambda d: d["distance"] > 0], _profile(0.5, 10).assign(grad_h=0.0)):
        h, censored = horizon(p)
        assert math.isnan(h) and censored is False


def test_decay_summary():
    slow = _synthetic(10.0 ** (-0.5 * np.arange(10.0)))
    assert decay_summary(slow) == {
        "decay_rate": pytest.approx(-0.5),
        "horizon": 6,
        "horizon_censored": False,
    }
    summary = decay_summary(_synthetic(np.array([np.nan, 1.0])))
    assert math.isnan(summary["horizon"]) and summary["horizon_censored"] is False


def test_several_profiles_in_one_frame_are_an_error():
    two = pd.concat([_synthetic(np.ones(3)), _synthetic(np.ones(3))])
    for fn in (decay_rate, horizon, decay_summary):
        with pytest.raises(ValueError, match="one profile"):
            fn(two)


# ---------------------------------------------------------------------- bound share


def test_bound_share_weighs_steps_by_their_examples():
    p = pd.DataFrame(
        {
            "distance": [3, 2, 1, 0, -1],
            "bound_holds": [1.0, 0.5, 1.0, 1.0, np.nan],
            "bound_examples": [4, 2, 4, 4, 0],
        }
    )
    assert bound_summary(p) == {"bound_share": pytest.approx(13 / 14), "bound_pairs": 14}
    lstm = p.assign(bound_holds=np.nan, bound_examples=0)
    out = bound_summary(lstm)
    assert math.isnan(out["bound_share"]) and out["bound_pairs"] == 0
    assert bound_summary(p.drop(columns=["bound_holds"]))["bound_pairs"] == 0


def test_pooled_share_weighs_each_share_by_its_pairs():
    assert pooled_share([1.0, 0.5], [100, 300]) == (pytest.approx(0.625), 400.0)
    # no finite share or no positive count: left out; nothing left: (NaN, 0)
    assert pooled_share([1.0, np.nan, 0.0, 0.2], [2, 5, 0, np.nan]) == (1.0, 2.0)
    share, pairs = pooled_share([np.nan, 0.3], [4, 0])
    assert math.isnan(share) and pairs == 0


# ---------------------------------------------------------------------- one definition


def test_one_definition_of_the_decay_measures():
    """probes and aggregate use the measures; neither keeps a copy of its own."""
    import rnngrad.probes as probes

    for name in ("decay_rate", "horizon", "decay_summary", "horizon_censored", "_horizon"):
        assert not hasattr(probes, name), name
    for module in (aggregate, aggregate.builders, aggregate.runs):
        for name in ("horizon_censored", "_horizon", "_profile_points"):
            assert not hasattr(module, name), (module, name)
    assert aggregate.HORIZON_RATIO is measures.HORIZON_RATIO
    for name in ("decay_rate", "horizon", "bound_summary"):
        assert getattr(aggregate.builders, name) is getattr(measures, name), name


def test_measures_import_no_torch():
    code = "import sys, rnngrad.measures; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
