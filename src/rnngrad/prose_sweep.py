"""Words for the sweep's design, the horizon test's power and the scorecard: plain text
from the findings' dataclasses and tables (numbers through rnngrad.prose.fmt)."""

from __future__ import annotations

import math

import pandas as pd

from rnngrad.findings.design import VERDICT_WORDS, SeedDesign
from rnngrad.findings.outcomes import Budget
from rnngrad.findings.scorecard import ScorecardSummary
from rnngrad.prose import NA, counted, fmt, listing, missing

__all__ = [
    "climb_text",
    "sequential_text",
    "power_text",
    "agreement_text",
    "budget_ratio_text",
    "scorecard_rows",
]

CRITERION_WORDS = {
    "solved": "solved by a majority of seeds",
    "off_baseline": "a majority of seeds off the baseline",
}


def climb_text(climb: dict[str, str]) -> str:
    """The climbing criterion per task: 'solved by a majority of seeds on adding and a
    majority of seeds off the baseline on copy'."""
    if not climb:
        return NA
    return listing(f"{CRITERION_WORDS[c]} on {t}" for t, c in sorted(climb.items()))


def sequential_text(budget: Budget, design: SeedDesign) -> str:
    """How the seeds were spent, with the counts of this run."""
    if not budget.adaptive or not budget.sequential or design.seeds < 2:
        return (
            f"Every length a variant reached was trained with all {counted(design.seeds, 'seed')}."
        )
    return (
        f"The seeds are spent where they decide something: the first seed climbs alone, and "
        f"the last length it passed and the first it failed are then trained with every seed "
        f"(and the next ones down, or up, until a majority decides), so the critical length "
        f"and the length above it always rest on all {counted(design.seeds, 'seed')}. Here "
        f"{counted(design.lead_only, 'cell')} rest on the lead seed alone and "
        f"{fmt(design.more_seeds)} on more: {counted(design.runs, 'run')}, where every "
        f"seed at every length reached would have taken {fmt(design.runs_all_seeds)}."
    )


def power_text(row) -> str:
    """What censoring and the number of variants leave of the horizon test's power."""
    if row is None or missing(row.get("variants")) or not row.get("variants"):
        return ""
    n = int(row["variants"])
    text = (
        f"With {counted(n, 'variant')} a rank correlation must reach |ρ| ≥ "
        f"{fmt(row.get('rho_needed'), 2)} to be told from zero at the 5% level"
    )
    ties = []
    if row.get("censored_above"):
        ties.append(f"{fmt(row['censored_above'])} solved the whole ladder")
    if row.get("censored_below"):
        ties.append(f"{fmt(row['censored_below'])} failed its first length")
    if row.get("horizons_censored"):
        ties.append(f"{fmt(row['horizons_censored'])} horizons never fell to the ratio")
    if ties:
        text += (
            f"; censoring ties ranks ({listing(ties)}), leaving "
            f"{counted(row.get('distinct'), 'distinct critical length')}, so the test has "
            "less power than its variant count suggests"
        )
    return text + "."


def agreement_text(summary: ScorecardSummary) -> str:
    """'4 agree in outcome and 1 does not (they differ on ...)', or why none compare."""
    if not summary.compared:
        return "none falls in this grid, so none is compared"
    text = (
        f"{fmt(summary.agree)} of {counted(summary.compared, 'comparable row')} agree in "
        f"outcome (solved, off the baseline, at the baseline) and {fmt(summary.disagree)} "
        f"{'does' if summary.disagree == 1 else 'do'} not"
    )
    if not summary.disagreements:
        return text
    items = [
        f"{model} on {task} T = {length} [@{key}]: published "
        f"{VERDICT_WORDS.get(theirs, theirs)}, ours {VERDICT_WORDS.get(ours, ours)}"
        for key, task, length, model, theirs, ours in summary.disagreements
    ]
    return text + " (they differ on " + "; ".join(items) + ")"


def budget_ratio_text(card: pd.DataFrame) -> str:
    """The papers' budgets as multiples of ours, as a sentence, or why there are none."""
    ratio = pd.to_numeric(card.get("budget_ratio", pd.Series(dtype=float)), errors="coerce")
    inverse = [1 / r for r in ratio if r and math.isfinite(r) and r > 0]
    if not inverse:
        return "No row compares, so no budgets are set side by side."
    lo, hi = min(inverse), max(inverse)
    times = f"{fmt(lo, 2)} to {fmt(hi, 2)} times" if hi > lo else f"{fmt(lo, 2)} times"
    return f"On the comparable rows the papers trained for {times} this grid's examples."


def scorecard_rows(card: pd.DataFrame) -> pd.DataFrame:
    """findings.scorecard rows for the report's table."""
    if not len(card):
        return card

    def ours(r) -> str:
        words = VERDICT_WORDS.get(r.ours, r.ours)
        return f"{words} ({int(r.our_seeds)})" if r.ours in VERDICT_WORDS else words

    def agrees(v) -> str:
        return "–" if pd.isna(v) else ("yes" if bool(v) else "**no**")

    return pd.DataFrame(
        {
            "source": [f"@{k}" for k in card["key"]],
            "task": card["task"],
            "T": card["length"],
            "model": card["model"],
            "variant": [f"`{v}`" if v else "–" for v in card["variant"]],
            "published": [
                VERDICT_WORDS.get(o, o) + ("" if pd.isna(v) else f" ({fmt(v)})")
                for o, v in zip(card["outcome"], card["value"], strict=True)
            ],
            "ours": [ours(r) for r in card.itertuples(index=False)],
            "budget": [fmt(b, 2) for b in card["budget_ratio"]],
            "agrees": [agrees(v) for v in card["agrees"]],
            "checked": ["yes" if c else "unchecked" for c in card["checked"]],
        }
    )
