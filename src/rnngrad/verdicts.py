"""What a run, or a cell of the grid, achieved, in the terms the published results use.

Three verdicts, from best to worst:

- **solved**: the held-out test metric passed the task's threshold (the run's status);
- **off_baseline**: not solved, but the test loss is at most OFF_BASELINE times the loss
  of the best input-blind predictor (adding: 1/6; copy: 10 ln 8 / (T + 20)): the model
  beats the memoryless cost, as the papers put it, so it uses the input across the delay;
- **at_baseline**: neither; a diverged run is at the baseline too.

A cell (task, length, variant) gets the best verdict that a strict majority of its
seeds reached. The length sweep climbs on one of these criteria (rnngrad.sweep), the
success table counts them (rnngrad.aggregate) and the scorecard compares them with
the papers' (rnngrad.findings.scorecard): one definition for all three.

Pure Python: no torch, no pandas.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = [
    "SOLVED",
    "OFF_BASELINE",
    "VERDICTS",
    "CRITERIA",
    "run_verdict",
    "meets",
    "majority",
    "majority_of",
    "cell_verdict",
]

SOLVED = "solved"  # the summary.json status that counts as solving a length
# A tenth below the baseline. A memoryless model sits at ratio 1 (copy: exactly, its loss
# has no noise; adding: the test batch's MSE of 2,000 examples varies by about 0.03 in
# ratio), so 0.9 is well outside the noise, and it is where the papers draw the line:
# Arjovsky et al. (2016) count an LSTM at 0.145 against 0.173 on copy T = 100 (0.84) as
# below the memoryless cost, Bai et al. (2018) one at 0.164 against 0.167 on adding
# T = 600 (0.98) as failed.
OFF_BASELINE = 0.9
VERDICTS = ("solved", "off_baseline", "at_baseline")
# What a length sweep may climb on: a run that meets the criterion counts as a pass.
CRITERIA = ("solved", "off_baseline")


def run_verdict(status: str, loss_ratio: float | None) -> str:
    """One run's verdict from its status and test loss / baseline loss.

    Example:
        >>> run_verdict("solved", 0.01), run_verdict("unsolved", 0.6), run_verdict("unsolved", 0.95)
        ('solved', 'off_baseline', 'at_baseline')
    """
    if status == SOLVED:
        return "solved"
    if status == "diverged" or loss_ratio is None:
        return "at_baseline"
    ratio = float(loss_ratio)
    return "off_baseline" if math.isfinite(ratio) and ratio <= OFF_BASELINE else "at_baseline"


def meets(verdict: str, criterion: str) -> bool:
    """Whether a verdict meets a criterion of CRITERIA (solved meets off_baseline too)."""
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; options are {list(CRITERIA)}")
    return VERDICTS.index(verdict) <= VERDICTS.index(criterion)


def majority_of(count, total):
    """The majority rule, defined once: True where `count` is more than half of `total`
    (2 of 3, 3 of 5, ...). Elementwise on NumPy arrays and pandas Series of counts.

    Example:
        >>> majority_of(2, 3), majority_of(1, 2), majority_of(0, 0)
        (True, False, False)
    """
    return 2 * count > total


def majority(verdicts: Iterable[str], criterion: str) -> bool:
    """True when more than half of the verdicts meet the criterion (2 of 3, 3 of 5, ...).

    Example:
        >>> majority(["solved", "at_baseline", "solved"], "solved"), majority(["solved"], "solved")
        (True, True)
    """
    verdicts = list(verdicts)
    return majority_of(sum(meets(v, criterion) for v in verdicts), len(verdicts))


def cell_verdict(verdicts: Iterable[str]) -> str:
    """The best verdict a strict majority of a cell's seeds reached ("at_baseline" if none).

    Example:
        >>> cell_verdict(["solved", "off_baseline", "at_baseline"])
        'off_baseline'
    """
    verdicts = list(verdicts)
    for criterion in CRITERIA:
        if verdicts and majority(verdicts, criterion):
            return criterion
    return "at_baseline"
