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
    read_verdict,
    sweep_design,
    sweep_runs,
)

S, U, D = "solved", "unsolved", "diverged"


V, OFF, A = "solved", "off_baseline", "at_baseline"  # verdicts


class _Truth:
    """verdict_of over a table {(length, seed): verdict} that records what was asked."""

    def __init__(self, table: dict[tuple[int, int], str], known: set | None = None):
        self.table, self.known, self.asked = table, known, []

    def __call__(self, length: int, seed: int) -> str | None:
        self.asked.append((length, seed))
        if self.known is not None and (length, seed) not in self.known:
            return None
        return self.table[(length, seed)]


def _run_to_end(lengths, seeds, table, **kw) -> list[tuple[int, int]]:
    """Resolve the design's pending runs from `table` until it is complete, as the
    workflow does (it learns each verdict once its run is done)."""
    known: set = set()
    for _ in range(100):
        design = sweep_design(lengths, seeds, _Truth(table, known), **kw)
        if design.complete:
            return design.needed
        known |= set(design.pending)
    raise AssertionError("the design never completed")


def _table(per_seed: dict[int, list[str]], lengths) -> dict:
    return {(n, s): v for s, vs in per_seed.items() for n, v in zip(lengths, vs, strict=True)}


L = [10, 20, 50, 100, 200]


def test_the_lead_climbs_alone_and_waits_for_its_own_result():
    truth = _Truth(_table({0: [V, V, V, A, A], 1: [V] * 5, 2: [V] * 5}, L), known={(10, 0)})
    design = sweep_design(L, [0, 1, 2], truth)
    assert design.needed == [(10, 0), (20, 0)] and design.pending == [(20, 0)]
    assert all(seed == 0 for _, seed in truth.asked)  # the other seeds never trained yet


def test_the_lengths_around_the_leads_failure_get_every_seed_at_once():
    table = _table({0: [V, V, V, A, A], 1: [V, V, V, A, A], 2: [V, V, A, A, A]}, L)
    known = {(n, 0) for n in (10, 20, 50, 100)}
    design = sweep_design(L, [0, 1, 2], _Truth(table, known))
    # both lengths of the bracket are pending together, so they run in parallel
    assert design.pending == [(100, 1), (100, 2), (50, 1), (50, 2)]
    needed = _run_to_end(L, [0, 1, 2], table)
    assert sorted(needed) == sorted(
        [(10, 0), (20, 0), (50, 0), (100, 0), (50, 1), (50, 2), (100, 1), (100, 2)]
    )


def test_a_failed_lower_bracket_goes_down_with_every_seed():
    # the lead is lucky at 50 and 100; the others pass only 10 and 20
    table = _table({0: [V, V, V, V, A], 1: [V, V, A, A, A], 2: [V, V, A, A, A]}, L)
    needed = set(_run_to_end(L, [0, 1, 2], table))
    full = {n for n in L if all((n, s) in needed for s in (0, 1, 2))}
    assert full == {20, 50, 100, 200}  # down from the bracket (100, 200) to 20, which passes
    assert (10, 1) not in needed


def test_an_unlucky_lead_is_outvoted_and_every_seed_climbs_on():
    table = _table({0: [V, A, A, A, A], 1: [V, V, V, A, A], 2: [V, V, V, V, A]}, L)
    needed = set(_run_to_end(L, [0, 1, 2], table))
    full = {n for n in L if all((n, s) in needed for s in (0, 1, 2))}
    assert full == {10, 20, 50, 100}  # 20 and 50 pass by majority, 100 fails (1 of 3)
    assert (200, 0) not in needed


def test_a_lead_that_passes_every_length_has_the_top_confirmed():
    table = _table({0: [V] * 5, 1: [V] * 5, 2: [A] * 5}, L)
    needed = _run_to_end(L, [0, 1, 2], table)
    assert sorted(needed) == sorted([(n, 0) for n in L] + [(200, 1), (200, 2)])


def test_a_lead_that_fails_the_first_length_has_it_confirmed():
    table = _table({0: [A] * 5, 1: [V] * 5, 2: [A] * 5}, L)
    assert sorted(_run_to_end(L, [0, 1, 2], table)) == [(10, 0), (10, 1), (10, 2)]


def test_the_criterion_decides_what_passes():
    table = _table({0: [OFF, OFF, A, A, A], 1: [OFF, V, A, A, A], 2: [OFF, OFF, OFF, A, A]}, L)
    solved = _run_to_end(L, [0, 1, 2], table)
    assert sorted(solved) == [(10, 0), (10, 1), (10, 2)]  # off the baseline is no solve
    off = set(_run_to_end(L, [0, 1, 2], table, criterion="off_baseline"))
    assert {(20, 1), (20, 2), (50, 1), (50, 2)} <= off and (100, 0) not in off
    with pytest.raises(ValueError, match="criterion"):
        sweep_design(L, [0], _Truth(table), criterion="nearly")


@pytest.mark.parametrize("seed", range(40))
def test_the_design_finds_the_majority_critical_length_of_monotone_seeds(seed):
    """Each seed passes every length up to its own critical length and none above (a
    monotone truth): the majority's critical length is then the median seed's, and the
    design must find it, resting on every seed at it and just above it."""
    rng = np.random.default_rng(seed)
    seeds = [0, 1, 2, 3, 4][: int(rng.choice([1, 3, 5]))]
    own = {s: int(rng.integers(0, len(L) + 1)) for s in seeds}  # lengths passed per seed
    table = {(n, s): V if i < own[s] else A for s in seeds for i, n in enumerate(L)}
    needed = set(_run_to_end(L, seeds, table))
    k = sorted(own.values())[len(seeds) // 2]  # the median seed passes k lengths
    for i in (k - 1, k):
        if 0 <= i < len(L):
            assert all((L[i], s) in needed for s in seeds), (own, i)
    success = pd.DataFrame(
        [
            {"task": "adding", "length": n, "variant": "v", "cell": "lstm",
             "attempted": any((n, s) in needed for s in seeds),
             "seeds": sum((n, s) in needed for s in seeds),
             "solved": sum((n, s) in needed and table[(n, s)] == V for s in seeds),
             "off_baseline": sum((n, s) in needed and table[(n, s)] == V for s in seeds)}
            for n in L
        ]
    )  # fmt: skip
    row = critical_table(success, pd.DataFrame()).iloc[0]
    want = float(L[k - 1]) if k > 0 else math.nan
    assert row["critical_length"] == want or (
        math.isnan(want) and math.isnan(row["critical_length"])
    )
    assert bool(row["censored"]) is (k == len(L))


def test_without_sequential_every_seed_climbs_and_without_adaptive_all_is_trained():
    table = _table({0: [V, V, A, A, A], 1: [V, V, A, A, A], 2: [V, A, A, A, A]}, L)
    together = _run_to_end(L, [0, 1, 2], table, sequential=False)
    assert sorted(together) == sorted((n, s) for n in (10, 20, 50) for s in (0, 1, 2))
    truth = _Truth(table)
    every = sweep_design(L, [0, 1, 2], truth, adaptive=False).needed
    assert sorted(every) == sorted((n, s) for n in L for s in (0, 1, 2))


def test_sweep_runs_lists_every_task_and_variant():
    truth = {
        ("adding", "rnn"): {(10, 0): A, (10, 1): A},
        ("adding", "lstm"): {(10, 0): V, (20, 0): V, (20, 1): V},
    }
    runs = sweep_runs({"adding": [10, 20]}, ["rnn", "lstm"], [0, 1],
                      lambda t, n, v, s: truth[(t, v)][(n, s)])  # fmt: skip
    assert runs == [("adding", 10, "rnn", 0), ("adding", 10, "rnn", 1),
                    ("adding", 10, "lstm", 0), ("adding", 20, "lstm", 0),
                    ("adding", 20, "lstm", 1)]  # fmt: skip


def test_read_verdict(tmp_path):
    for status, ratio, want in [(S, 0.01, V), (U, 0.5, OFF), (U, 0.95, A), (D, None, A)]:
        path = tmp_path / "summary.json"
        path.write_text(json.dumps({"status": status, "test_loss_ratio": ratio}))
        assert read_verdict(path) == want
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json"):
        read_verdict(tmp_path / "bad.json")


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
                    "off_baseline": sum(s == S for s in statuses or []),
                    "solved_rate": np.mean([s == S for s in statuses]) if statuses else math.nan,
                }
            )
            for seed, status in zip(SEEDS, statuses or [], strict=False):
                runs.append({"task": "adding", "length": length, "variant": variant,
                             "seed": seed, "status": status,
                             "test_loss_ratio": 0.0 if status == S else 1.0})  # fmt: skip
    return pd.DataFrame(success), pd.DataFrame(runs)


def _decay(init: dict, trained: dict) -> pd.DataFrame:
    """Decay rows: init {(variant, length): [(seed, horizon, censored)]}; trained models
    {(variant, length, probe_length): [(seed, probe_step, horizon, censored)]}."""
    rows = []
    for (variant, length), seeds in init.items():
        for seed, h, cens in seeds:
            rows.append({"phase": "init", "task": "adding", "length": length, "variant": variant,
                         "seed": seed, "probe_step": pd.NA, "probe_length": length,
                         "horizon": h, "horizon_censored": cens})  # fmt: skip
    for (variant, length, probe_length), probes in trained.items():
        for seed, step, h, cens in probes:
            rows.append({"phase": "trained", "task": "adding", "length": length,
                         "variant": variant, "seed": seed, "probe_step": step,
                         "probe_length": probe_length, "horizon": h,
                         "horizon_censored": cens})  # fmt: skip
    df = pd.DataFrame(rows)
    df["probe_step"] = df["probe_step"].astype("Int64")
    return df.sample(frac=1, random_state=0)  # no order to rely on


def test_critical_table_answers_known_by_construction():
    success, runs = _success_and_runs()
    decay = _decay(
        init={
            # the longest probed length (1000) is the common one: 10, 20, 30 (one censored)
            ("solves_all", 1000): [(0, 10.0, False), (1, 20.0, False), (2, 30.0, True)],
            ("early_seed", 1000): [(0, 5.0, False)],
            # a shorter probe length: ignored, even for a variant without the common one
            ("solves_all", 200): [(0, 1.0, False)],
            ("late_luck", 200): [(0, 3.0, False)],
        },
        trained={
            # models trained at the critical length 100, probed at the longest grid length
            # (100): the last probe of each seed counts: 40, 60, 99
            ("solves_all", 100, 100): [(0, 500, 35.0, False), (0, 1000, 40.0, False),
                                       (1, 700, 60.0, True), (2, 500, 99.0, True)],
            ("solves_all", 50, 100): [(0, 500, 2.0, False)],  # another rung: ignored
            # early_seed's critical length is 20: its model there, probed at 100
            ("early_seed", 20, 100): [(0, 100, 7.0, False)],
            ("early_seed", 50, 100): [(0, 100, 1.0, False)],
            ("early_seed", 20, 50): [(0, 100, 3.0, False)],  # another probe length
            # fails_first solved nothing: its models at the first length
            ("fails_first", 10, 100): [(0, 9, 4.0, False), (1, 9, 6.0, False)],
        },
    )  # fmt: skip
    table = critical_table(success, decay, runs)
    assert list(table.columns) == CRITICAL_COLUMNS
    assert sorted(table["variant"]) == sorted(PLAN)
    got = table.set_index("variant")
    for variant, (crit, cens, fail, longest, smin, smax) in WANT.items():
        row = got.loc[variant]
        assert row["task"] == "adding" and row["cell"] == CELLS[variant]
        assert row["lengths"] == "10,20,50,100" and row["criterion"] == "solved"
        for col, want in [("critical_length", crit), ("first_failure", fail),
                          ("longest_attempted", longest),
                          ("seed_critical_min", smin), ("seed_critical_max", smax)]:  # fmt: skip
            assert row[col] == want or (math.isnan(row[col]) and math.isnan(want)), (variant, col)
        assert bool(row["censored"]) is cens, variant
        assert row["seeds"] == 3
        assert row["horizon_init_length"] == 1000 and row["horizon_final_length"] == 100
    assert got.loc["fails_first"]["rungs"] == "10:3"
    assert got.loc["early_seed"]["seeds_at_critical"] == 3
    full = got.loc["solves_all"]
    assert full["horizon_init_median"] == 20.0
    assert full["horizon_init_q1"] == 15.0 and full["horizon_init_q3"] == 25.0
    assert full["horizon_init_censored"] == pytest.approx(1 / 3)
    assert full["horizon_final_from"] == 100
    assert full["horizon_final_median"] == 60.0
    assert full["horizon_final_q1"] == 50.0 and full["horizon_final_q3"] == 79.5
    assert full["horizon_final_censored"] == pytest.approx(2 / 3)
    seedy = got.loc["early_seed"]
    assert seedy["horizon_final_from"] == 20
    assert seedy["horizon_init_median"] == 5.0 and seedy["horizon_final_median"] == 7.0
    first = got.loc["fails_first"]
    assert first["horizon_final_from"] == 10 and first["horizon_final_median"] == 5.0
    # no probe at the common length: NaN, never a number from another length
    assert math.isnan(got.loc["late_luck"]["horizon_init_median"])
    assert math.isnan(got.loc["late_luck"]["horizon_final_censored"])


def test_the_criterion_off_baseline_counts_seeds_off_the_baseline():
    success = pd.DataFrame({"task": "copy", "variant": "v", "cell": "gru", "length": [10, 100, 200],
                            "attempted": True, "seeds": [3, 3, 3], "solved": [0, 0, 0],
                            "off_baseline": [3, 2, 1]})  # fmt: skip
    row = critical_table(success, pd.DataFrame(), criteria={"copy": "off_baseline"}).iloc[0]
    assert row["critical_length"] == 100 and row["first_failure"] == 200
    assert row["criterion"] == "off_baseline"
    assert math.isnan(critical_table(success, pd.DataFrame()).iloc[0]["critical_length"])


def test_not_attempted_lengths_are_never_failures():
    """A grid of one variant whose later lengths were never attempted: no failure among them."""
    success = pd.DataFrame({"task": "copy", "variant": "v", "cell": "gru", "length": [5, 10, 20],
                            "attempted": [True, False, False], "seeds": [2, 0, 0],
                            "solved": [2, 0, 0], "off_baseline": [2, 0, 0]})  # fmt: skip
    row = critical_table(success, pd.DataFrame()).iloc[0]
    assert row["critical_length"] == 5 and math.isnan(row["first_failure"])
    assert row["longest_attempted"] == 5 and row["lengths"] == "5,10,20"
    assert math.isnan(row["seed_critical_min"])  # no runs table given


def test_critical_table_of_nothing_has_the_columns():
    empty = pd.DataFrame(columns=["task", "length", "variant", "cell", "attempted", "seeds",
                                  "solved", "off_baseline"])  # fmt: skip
    assert list(critical_table(empty, pd.DataFrame()).columns) == CRITICAL_COLUMNS
