"""rnngrad.findings.design and rnngrad.verdicts, on tables whose answer is known by construction."""

from __future__ import annotations

import math

import pandas as pd
import pytest

import rnngrad.findings as F
from rnngrad.verdicts import OFF_BASELINE, cell_verdict, majority, meets, run_verdict


@pytest.mark.parametrize(
    ("status", "ratio", "want"),
    [
        ("solved", 5.0, "solved"),  # the status decides, whatever the loss
        ("unsolved", OFF_BASELINE, "off_baseline"),  # the line itself is off the baseline
        ("unsolved", OFF_BASELINE + 1e-9, "at_baseline"),
        ("unsolved", 0.0, "off_baseline"),
        ("unsolved", None, "at_baseline"),
        ("unsolved", math.nan, "at_baseline"),
        ("diverged", 0.1, "at_baseline"),  # a diverged run is no evidence of anything
    ],
)
def test_run_verdict_boundaries(status, ratio, want):
    assert run_verdict(status, ratio) == want


def test_criteria_and_majorities():
    assert meets("solved", "off_baseline") and not meets("off_baseline", "solved")
    with pytest.raises(ValueError, match="criterion"):
        meets("solved", "nearly")
    assert majority(["off_baseline", "solved", "at_baseline"], "off_baseline")
    assert not majority(["off_baseline", "solved", "at_baseline"], "solved")
    assert not majority(["solved", "at_baseline"], "solved")  # a tie is no majority
    assert cell_verdict(["solved", "solved", "at_baseline"]) == "solved"
    assert cell_verdict(["solved", "off_baseline", "at_baseline"]) == "off_baseline"
    assert cell_verdict(["solved", "at_baseline", "at_baseline"]) == "at_baseline"
    assert cell_verdict([]) == "at_baseline"


def _cell(length, variant, seeds, solved, off, verdict, attempted=True):
    return {"task": "copy", "length": length, "variant": variant, "attempted": attempted,
            "seeds": seeds, "solved": solved, "off_baseline": off, "verdict": verdict}  # fmt: skip


SUCCESS = pd.DataFrame(
    [
        _cell(10, "lstm", 3, 0, 3, "off_baseline"),
        _cell(100, "lstm", 3, 0, 1, "at_baseline"),
        _cell(200, "lstm", 0, 0, 0, "not attempted", attempted=False),
        _cell(10, "lru", 1, 1, 1, "solved"),
        _cell(100, "lru", 3, 2, 3, "solved"),
        _cell(200, "lru", 3, 0, 1, "at_baseline"),
    ]
)


def test_verdict_grid_says_what_each_cell_reached_and_on_how_many_seeds():
    grid = F.verdict_grid(SUCCESS, "copy").set_index("variant")
    assert list(grid.columns) == ["T = 10", "T = 100", "T = 200"]
    assert grid.loc["lstm"].tolist() == ["off baseline (3/3)", "at baseline (1/3)", "–"]
    assert grid.loc["lru"].tolist() == ["solved (1/1)", "solved (2/3)", "at baseline (1/3)"]
    assert len(F.verdict_grid(SUCCESS, "adding")) == 0


def test_seed_design_counts_the_seeds_spent():
    d = F.seed_design(SUCCESS)
    assert (d.lead_only, d.more_seeds, d.runs, d.seeds) == (1, 4, 13, 3)
    assert d.runs_all_seeds == 15  # five attempted cells with every seed


def test_rung_table_splits_lead_only_and_shared_lengths():
    critical = pd.DataFrame({"task": ["adding", "adding", "copy"], "variant": ["a", "b", "a"],
                             "rungs": ["10:1,25:1,50:3,100:3", "10:3", ""]})  # fmt: skip
    t = F.rung_table(critical, "adding").set_index("variant")
    assert t.loc["a"].tolist() == ["10, 25", "50 (3), 100 (3)"]
    assert t.loc["b"].tolist() == ["–", "10 (3)"]


def test_rho_needed_matches_the_t_test_of_a_correlation():
    # r = t / sqrt(n - 2 + t^2) with t the 0.975 quantile of Student's t on n - 2 degrees
    # of freedom: 2.306 for n = 10 (8 df), 2.048 for n = 30 (28 df), from published tables
    assert F.rho_needed(10) == pytest.approx(2.306 / math.sqrt(8 + 2.306**2), abs=1e-3)
    assert F.rho_needed(30) == pytest.approx(2.048 / math.sqrt(28 + 2.048**2), abs=1e-3)
    assert math.isnan(F.rho_needed(2))
