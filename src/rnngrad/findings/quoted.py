"""Numbers the report quotes beside its tables: the setup of the reference example, the
loss thresholds its loss-ratio figure draws, the papers' budgets as multiples of ours,
and where a decaying gradient underflows in float32 (no torch)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rnngrad.findings._common import Spread, spread
from rnngrad.findings.decay import reference_decay

__all__ = [
    "ReferenceExample",
    "reference_example",
    "loss_thresholds",
    "budget_multiples",
    "underflow_distance",
    "FLOAT32_TINY",
]

FLOAT32_TINY = float(np.finfo(np.float32).tiny)  # the smallest normal float32


@dataclass(frozen=True)
class ReferenceExample:
    """findings.reference_decay's table with the setup that made it: `examples` inputs
    to an Elman tanh RNN of `hidden` units over `length` steps; `farthest` is the largest
    distance from the loss in the table (length - 1)."""

    examples: int
    hidden: int
    length: int
    table: pd.DataFrame = field(repr=False)

    @property
    def farthest(self) -> int:
        return self.length - 1

    @property
    def at_farthest(self) -> str:
        """The table's column of the ratio at the farthest distance."""
        return f"distance {self.farthest}"


def reference_example(length: int = 60, hidden: int = 32, examples: int = 16) -> ReferenceExample:
    """The reference decay table (rnngrad.reference's BPTT) and its setup."""
    table = reference_decay(length=length, hidden=hidden, examples=examples)
    return ReferenceExample(examples, hidden, length, table)


def loss_thresholds(runs: pd.DataFrame) -> pd.DataFrame:
    """Per task whose metric is its loss (MSE): the solve threshold, the baseline loss
    and their ratio, the dashed line of the loss-ratio figure (task, metric_name,
    threshold, baseline_loss, ratio; the first run of each task, as the figure reads)."""
    columns = ["task", "metric_name", "threshold", "baseline_loss", "ratio"]
    if not len(runs) or "solve_threshold" not in runs:
        return pd.DataFrame(columns=columns)
    r = runs[runs["metric_name"] == "mse"]
    r = r[
        np.isfinite(r["solve_threshold"].astype(float))
        & np.isfinite(r["baseline_loss"].astype(float))
    ]
    first = r.groupby("task", sort=True).first().reset_index()
    return pd.DataFrame(
        {
            "task": first["task"],
            "metric_name": first["metric_name"],
            "threshold": first["solve_threshold"].astype(float),
            "baseline_loss": first["baseline_loss"].astype(float),
            "ratio": first["solve_threshold"].astype(float) / first["baseline_loss"].astype(float),
        },
        columns=columns,
    )


def budget_multiples(card: pd.DataFrame) -> Spread:
    """The papers' training examples as multiples of ours on the comparable rows of
    findings.scorecard (the inverse of its budget_ratio); n = 0 when none compares."""
    ratio = pd.to_numeric(card.get("budget_ratio", pd.Series(dtype=float)), errors="coerce")
    return spread([1 / r for r in ratio if r and math.isfinite(r) and r > 0])


def underflow_distance(rate, tiny: float = FLOAT32_TINY) -> float:
    """The distance from the loss at which a gradient that falls at `rate` (log10 of its
    norm per step, findings.init_decay) drops from 1 below `tiny` (float32's smallest
    normal number); NaN when it does not fall."""
    if rate is None or not math.isfinite(float(rate)) or float(rate) >= 0:
        return math.nan
    return math.log10(tiny) / float(rate)
