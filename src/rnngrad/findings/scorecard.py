"""The scorecard: published results on adding and copy beside this run's, at the same T.

The anchors (report/anchors.csv, read by rnngrad.findings.anchors.read_anchors) are
outcomes taken from the papers (Le et al. 2015; Arjovsky et al. 2016; Bai et al. 2018;
Li et al. 2018; Tallec & Ollivier 2018; Lezcano-Casado & Martinez-Rubio 2019), trained
on budgets far from ours (the scorecard states the ratio per row). So the papers' exact
losses are no targets: `scorecard` compares outcome classes, defined once here for both
sides:

- solved: adding test MSE < 0.01, copy recall >= 0.99 (rnngrad.specs.is_solved);
- off_baseline: not solved, but the test loss is at most OFF_BASELINE times the
  memoryless baseline (adding 1/6, copy 10 ln 8 / (T + 20));
- at_baseline: neither.

Our cells' verdicts come from the success table (a strict majority of the seeds,
rnngrad.verdicts.cell_verdict, the definition the sweep climbs on too).

No torch: pandas only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from rnngrad.findings.outcomes import Budget
from rnngrad.verdicts import OFF_BASELINE, VERDICTS

__all__ = [
    "NOT_ATTEMPTED",
    "NOT_IN_GRID",
    "NO_COUNTERPART",
    "OFF_BASELINE",
    "OUTCOMES",
    "ScorecardSummary",
    "budget_frame",
    "scorecard",
    "scorecard_summary",
]

OUTCOMES = VERDICTS
NOT_ATTEMPTED = "not attempted"
NOT_IN_GRID = "not in this grid"
NO_COUNTERPART = "no counterpart"  # the paper's model has no rnngrad variant
_SUCCESS_COLUMNS = ("task", "length", "variant", "attempted", "seeds", "verdict",
                    "test_loss_ratio_median")  # fmt: skip


def budget_frame(budget: Budget) -> pd.DataFrame:
    """The `budget` argument of `scorecard`: our step budget and batch per task and
    length of the training grid (findings.budget of the config)."""
    rows = [
        {"task": t, "length": int(n), "steps": int(k), "batch_size": budget.batch_size}
        for t, per in budget.steps.items()
        for n, k in per.items()
    ]
    return pd.DataFrame(rows, columns=["task", "length", "steps", "batch_size"])


def _examples(steps, batch) -> float:
    """Training examples seen, steps x batch size; NaN when either is unknown."""
    if pd.isna(steps) or pd.isna(batch):
        return math.nan
    return float(steps) * float(batch)


def scorecard(anchors: pd.DataFrame, success: pd.DataFrame, budget: pd.DataFrame) -> pd.DataFrame:
    """One row per anchor: the published outcome beside ours at the same task, T, variant.

    Args:
        anchors: `read_anchors`'s frame.
        success: the success table (columns task, length, variant, attempted, seeds,
            verdict, test_loss_ratio_median), one row per cell.
        budget: our budget per cell: task, length, steps, batch_size.

    Returns:
        key, task, length, model, variant, outcome and value (theirs), ours (a verdict,
        or "not in this grid", "not attempted", "no counterpart" for an anchor without a
        variant), our_seeds, our_loss_ratio, our_examples (steps x batch_size),
        their_examples (iterations x batch_size), budget_ratio (ours / theirs, NaN when
        either is unknown), agrees (same outcome class; <NA> when ours is no verdict)
        and checked.
    """
    missing = [c for c in _SUCCESS_COLUMNS if c not in success.columns]
    if missing:
        raise ValueError(f"the success table lacks the columns {missing}")
    cells = success.assign(
        verdict=success["verdict"].where(success["attempted"].astype(bool), NOT_ATTEMPTED)
    )
    if cells.duplicated(["task", "length", "variant"]).any():
        raise ValueError("the success table has more than one row for a task, length and variant")
    cells = cells.set_index(["task", "length", "variant"])
    ours_budget = {
        (str(b.task), int(b.length)): _examples(b.steps, b.batch_size)
        for b in budget.itertuples(index=False)
    }
    rows = []
    for a in anchors.itertuples(index=False):
        cell_key = (a.task, int(a.length), a.variant)
        if not a.variant:
            ours = NO_COUNTERPART
        elif cell_key not in cells.index:
            ours = NOT_IN_GRID
        else:
            ours = cells.at[cell_key, "verdict"]
        judged = ours in OUTCOMES
        mine = ours_budget.get((a.task, int(a.length)), math.nan)
        theirs = _examples(a.iterations, a.batch_size)
        rows.append(
            {
                "key": a.key,
                "task": a.task,
                "length": int(a.length),
                "model": a.model,
                "variant": a.variant,
                "outcome": a.outcome,
                "value": a.value,
                "ours": ours,
                "our_seeds": int(cells.at[cell_key, "seeds"]) if judged else 0,
                "our_loss_ratio": (
                    float(cells.at[cell_key, "test_loss_ratio_median"]) if judged else math.nan
                ),
                "our_examples": mine if judged else math.nan,
                "their_examples": theirs,
                "budget_ratio": mine / theirs if judged else math.nan,
                "agrees": (ours == a.outcome) if judged else pd.NA,
                "checked": bool(a.checked),
            }
        )
    out = pd.DataFrame(rows, columns=list(_CARD_COLUMNS))
    out["agrees"] = out["agrees"].astype("boolean")
    return out


_CARD_COLUMNS = ("key", "task", "length", "model", "variant", "outcome", "value", "ours",
                 "our_seeds", "our_loss_ratio", "our_examples", "their_examples",
                 "budget_ratio", "agrees", "checked")  # fmt: skip


@dataclass(frozen=True)
class ScorecardSummary:
    """Counts of a scorecard for prose, and its disagreements.

    compared: rows with a verdict of ours (agree + disagree); not_in_grid,
    not_attempted, no_counterpart: rows without one, by reason; papers: distinct keys.
    disagreements: (key, task, length, model, theirs, ours) per disagreeing row.
    """

    rows: int
    compared: int
    agree: int
    disagree: int
    not_in_grid: int
    not_attempted: int
    no_counterpart: int
    papers: int
    disagreements: tuple[tuple[str, str, int, str, str, str], ...]


def scorecard_summary(card: pd.DataFrame) -> ScorecardSummary:
    """The counts behind "8 of 11 comparable rows agree; they differ on ..."."""
    judged = card["agrees"].notna()
    wrong = card[judged & ~card["agrees"].fillna(True).astype(bool)]
    return ScorecardSummary(
        rows=len(card),
        compared=int(judged.sum()),
        agree=int(card.loc[judged, "agrees"].astype(bool).sum()),
        disagree=len(wrong),
        not_in_grid=int((card["ours"] == NOT_IN_GRID).sum()),
        not_attempted=int((card["ours"] == NOT_ATTEMPTED).sum()),
        no_counterpart=int((card["ours"] == NO_COUNTERPART).sum()),
        papers=int(card["key"].nunique()),
        disagreements=tuple(
            (str(r.key), str(r.task), int(r.length), str(r.model), str(r.outcome), str(r.ours))
            for r in wrong.itertuples(index=False)
        ),
    )
