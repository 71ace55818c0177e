"""The adaptive length sweep's decisions and the critical-length table, on data whose
answer is known by construction (no Snakemake, no training)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from rnngrad.sweep import (
    CRITICAL_COLUMNS,
    critical_table,
    majority_solved,
    read_statuses,
    sweep_lengths,
    sweep_runs,
)

S, U, D = "solved", "unsolved", "diverged"


@pytest.mark.parametrize(
    ("statuses", "want"),
    [
        ([S, S, S], True),
        ([S, S, U], True),
        ([S, U, U], False),
        ([S, U], False),  # a tie is no majority
        ([S, S, D, U], False),
        ([S, S, S, D, U], True),
        ([S], True),
        ([U], False),
        ([], False),
    ],
)
def test_majority_is_more_than_half(statuses, want):
    assert majority_solved(statuses) is want


class _Results:
    """statuses_at that records which lengths it was asked about."""

    def __init__(self, table: dict[int, list[str]]):
        self.table, self.asked = table, []

    def __call__(self, length: int) -> list[str]:
        self.asked.append(length)
        return self.table[length]


def test_sweep_stops_after_the_first_length_without_a_majority():
    res = _Results({10: [S, S, S], 20: [S, U, S], 50: [U, U, S], 100: [S, S, S]})
    assert sweep_lengths([10, 20, 50, 100, 200], res) == [10, 20, 50]
    assert res.asked == [10, 20, 50]  # 100 was never looked at: it is not trained


def test_sweep_never_asks_for_the_last_length():
    """The last length has no successor: the workflow must not wait for its results."""
    res = _Results({10: [S, S], 20: [S, S]})
    assert sweep_lengths([10, 20, 50], res) == [10, 20, 50]
    assert res.asked == [10, 20]
    res = _Results({})
    assert sweep_lengths([7], res) == [7] and res.asked == []


def test_first_length_is_always_trained():
    assert sweep_lengths([10, 20], _Results({10: [U, U, U]})) == [10]


def test_not_adaptive_trains_every_length_without_looking():
    res = _Results({})
    assert sweep_lengths([10, 20, 50], res, adaptive=False) == [10, 20, 50]
    assert res.asked == []


def test_sweep_stops_where_results_are_missing():
    """A statuses_at that raises (a pending Snakemake checkpoint) stops the walk there."""

    class Pending(Exception):
        pass

    def statuses_at(length):
        if length == 20:
            raise Pending(length)
        return [S, S]

    with pytest.raises(Pending):
        sweep_lengths([10, 20, 50], statuses_at)


def test_sweep_runs_lists_each_seed_of_each_trained_length():
    results = {("adding", 10, "rnn"): [U, U], ("adding", 10, "lstm"): [S, S],
               ("adding", 20, "lstm"): [S, U]}  # fmt: skip
    runs = sweep_runs({"adding": [10, 20, 50], "copy": [5]}, ["rnn", "lstm"], [0, 1],
                      lambda t, n, v: results[(t, n, v)])  # fmt: skip
    assert runs == [
        ("adding", 10, "rnn", 0), ("adding", 10, "rnn", 1),
        ("adding", 10, "lstm", 0), ("adding", 10, "lstm", 1),
        ("adding", 20, "lstm", 0), ("adding", 20, "lstm", 1),
        ("copy", 5, "rnn", 0), ("copy", 5, "rnn", 1),
        ("copy", 5, "lstm", 0), ("copy", 5, "lstm", 1),
    ]  # fmt: skip
    full = sweep_runs({"adding": [10, 20]}, ["rnn"], [0], None, adaptive=False)
    assert full == [("adding", 10, "rnn", 0), ("adding", 20, "rnn", 0)]


def test_read_statuses(tmp_path):
    paths = []
    for i, status in enumerate([S, U]):
        path = tmp_path / f"{i}.json"
        path.write_text(json.dumps({"status": status, "seed": i}))
        paths.append(path)
    assert read_statuses(paths) == [S, U]
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json"):
        read_statuses([tmp_path / "bad.json"])


# --- the critical-length table ------------------------------------------------------------

LENGTHS = [10, 20, 50, 100]
SEEDS = [0, 1, 2]
# per variant: per length, each seed's status; None: the sweep did not attempt the length
PLAN = {
    "fails_first": {10: [U, U, S], 20: None, 50: None, 100: None},
    "solves_all": {10: [S, S, S], 20: [S, S, S], 50: [S, S, U], 100: [S, S, S]},
    "early_seed": {10: [S, S, S], 20: [S, U, S], 50: [S, D, U], 100: None},
    "late_luck": {10: [S, U, S], 20: [U, S, U], 50: None, 100: None},
    "diverges": {10: [D, S, S], 20: [S, S, S], 50: [U, U, U], 100: None},
}
CELLS = {"fails_first": "rnn_tanh", "solves_all": "lstm", "early_seed": "gru", "late_luck": "rnn_relu",
         "diverges": "lru"}  # fmt: skip
# the answers, by construction
WANT = {
    # variant: critical, censored, first failure, longest attempted, seed min, seed max
    "fails_first": (math.nan, False, 10.0, 10.0, 0.0, 10.0),
    "solves_all": (100.0, True, math.nan, 100.0, 20.0, 100.0),
    "early_seed": (20.0, False, 50.0, 50.0, 10.0, 50.0),
    "late_luck": (10.0, False, 20.0, 20.0, 0.0, 10.0),
    # a diverged seed fails its length, though the majority went on
    "diverges": (20.0, False, 50.0, 50.0, 0.0, 20.0),
}


def _success_and_runs() -> tuple[pd.DataFrame, pd.DataFrame]:
    success, runs = [], []
    for variant, plan in PLAN.items():
        for length in LENGTHS:
            statuses = plan[length]
            success.append(
                {
                    "task": "adding",
                    "length": length,
                    "variant": variant,
                    "cell": CELLS[variant],
                    "attempted": statuses is not None,
                    "seeds": len(statuses or []),
                    "solved": sum(s == S for s in statuses or []),
                    "solved_rate": np.mean([s == S for s in statuses]) if statuses else math.nan,
                }
            )
            for seed, status in zip(SEEDS, statuses or [], strict=False):
                runs.append({"task": "adding", "length": length, "variant": variant,
                             "seed": seed, "status": status})  # fmt: skip
    return pd.DataFrame(success), pd.DataFrame(runs)


def _decay(horizons: dict[tuple[str, int], dict[int, list[tuple[int, float, bool]]]]):
    """Decay rows of phase train: {(variant, length): {seed: [(probe_step, horizon, censored)]}}."""
    rows = [{"phase": "init", "task": "adding", "length": 10, "variant": "solves_all", "seed": 0,
             "probe_step": pd.NA, "horizon": 999.0, "horizon_censored": False}]  # fmt: skip
    for (variant, length), seeds in horizons.items():
        for seed, probes in seeds.items():
            for step, h, cens in probes:
                rows.append({"phase": "train", "task": "adding", "length": length,
                             "variant": variant, "seed": seed, "probe_step": step,
                             "horizon": h, "horizon_censored": cens})  # fmt: skip
    df = pd.DataFrame(rows)
    df["probe_step"] = df["probe_step"].astype("Int64")
    return df.sample(frac=1, random_state=0)  # no order to rely on


def test_critical_table_answers_known_by_construction():
    success, runs = _success_and_runs()
    decay = _decay(
        {
            # at the longest attempted length (100): init horizons 10, 20, 30; final 40, 60, 99
            ("solves_all", 100): {
                0: [(0, 10.0, False), (500, 35.0, False), (1000, 40.0, False)],
                1: [(0, 20.0, False), (700, 60.0, True)],
                2: [(0, 30.0, True), (500, 99.0, True)],
            },
            # a shorter length of the same variant: must be ignored
            ("solves_all", 50): {0: [(0, 1.0, False), (500, 2.0, False)]},
            ("early_seed", 50): {0: [(0, 5.0, False), (100, 7.0, False)]},
        }
    )
    table = critical_table(success, decay, runs)
    assert list(table.columns) == CRITICAL_COLUMNS
    assert sorted(table["variant"]) == sorted(PLAN)
    got = table.set_index("variant")
    for variant, (crit, cens, fail, longest, smin, smax) in WANT.items():
        row = got.loc[variant]
        assert row["task"] == "adding" and row["cell"] == CELLS[variant]
        assert row["lengths"] == "10,20,50,100"
        for col, want in [("critical_length", crit), ("first_failure", fail),
                          ("longest_attempted", longest), ("horizon_length", longest),
                          ("seed_critical_min", smin), ("seed_critical_max", smax)]:  # fmt: skip
            assert row[col] == want or (math.isnan(row[col]) and math.isnan(want)), (variant, col)
        assert bool(row["censored"]) is cens, variant
        assert row["seeds"] == 3
    full = got.loc["solves_all"]
    assert full["horizon_init_median"] == 20.0
    assert full["horizon_init_q1"] == 15.0 and full["horizon_init_q3"] == 25.0
    assert full["horizon_init_censored"] == pytest.approx(1 / 3)
    assert full["horizon_final_median"] == 60.0  # the last probe of each run: 40, 60, 99
    assert full["horizon_final_q1"] == 50.0 and full["horizon_final_q3"] == 79.5
    assert full["horizon_final_censored"] == pytest.approx(2 / 3)
    seedy = got.loc["early_seed"]
    assert seedy["horizon_init_median"] == 5.0 and seedy["horizon_final_median"] == 7.0
    assert seedy["horizon_final_censored"] == 0.0
    # no training probes at the horizon length: NaN, never a number from another length
    assert math.isnan(got.loc["late_luck"]["horizon_init_median"])
    assert math.isnan(got.loc["fails_first"]["horizon_final_censored"])


def test_not_attempted_lengths_are_never_failures():
    """A grid of one variant whose later lengths were never attempted: no failure among them."""
    success = pd.DataFrame({"task": "copy", "variant": "v", "cell": "gru", "length": [5, 10, 20],
                            "attempted": [True, False, False], "seeds": [2, 0, 0],
                            "solved": [2, 0, 0]})  # fmt: skip
    row = critical_table(success, pd.DataFrame()).iloc[0]
    assert row["critical_length"] == 5 and math.isnan(row["first_failure"])
    assert row["longest_attempted"] == 5 and row["lengths"] == "5,10,20"
    assert math.isnan(row["seed_critical_min"])  # no runs table given


def test_critical_table_of_nothing_has_the_columns():
    empty = pd.DataFrame(columns=["task", "length", "variant", "cell", "attempted", "seeds",
                                  "solved"])  # fmt: skip
    assert list(critical_table(empty, pd.DataFrame()).columns) == CRITICAL_COLUMNS


def test_success_without_attempted_column_counts_rows_with_seeds():
    success = pd.DataFrame({"task": "adding", "variant": "v", "cell": "lstm", "length": [10, 20],
                            "seeds": [3, 3], "solved": [2, 1]})  # fmt: skip
    row = critical_table(success, pd.DataFrame()).iloc[0]
    assert row["critical_length"] == 10 and row["first_failure"] == 20
