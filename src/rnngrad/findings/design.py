"""How the sweep spent its seeds, and what each variant achieved per length in the
published terms (solved, off the baseline, at the baseline: rnngrad.verdicts).

The sequential design (rnngrad.sweep) trains the lengths below the decisive ones with
one seed and the lengths around the critical length with every seed; these functions
say which, so a reader knows what each verdict rests on.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

__all__ = ["VERDICT_WORDS", "verdict_grid", "SeedDesign", "seed_design", "rung_table"]

VERDICT_WORDS = {
    "solved": "solved",
    "off_baseline": "off baseline",
    "at_baseline": "at baseline",
}


def verdict_grid(success: pd.DataFrame, task: str) -> pd.DataFrame:
    """Variants (rows) by length (columns) of one task: each cell's verdict in words with
    the seeds that reached it or better, e.g. "off baseline (2/3)"; "–" where the sweep
    did not attempt the length. Columns are "T = n"; the first column is the variant."""
    s = success[success["task"] == task]
    if not len(s):
        return pd.DataFrame(columns=["variant"])
    lengths = sorted(int(n) for n in s["length"].unique())
    rows = []
    for variant, g in s.groupby("variant", sort=True):
        row = {"variant": variant}
        by_length = {int(r.length): r for r in g.itertuples(index=False)}
        for n in lengths:
            r = by_length.get(n)
            if r is None or not bool(r.attempted):
                row[f"T = {n}"] = "–"
                continue
            # the seeds behind the verdict: solved ones, else those off the baseline
            count = r.solved if r.verdict == "solved" else r.off_baseline
            row[f"T = {n}"] = f"{VERDICT_WORDS[r.verdict]} ({int(count)}/{int(r.seeds)})"
        rows.append(row)
    return pd.DataFrame(rows, columns=["variant", *(f"T = {n}" for n in lengths)])


@dataclass(frozen=True)
class SeedDesign:
    """What the seeds were spent on: trained cells (task, length, variant) with the lead
    seed only and with more; runs trained, and the runs that training every attempted
    cell with every seed would have taken."""

    lead_only: int
    more_seeds: int
    runs: int
    runs_all_seeds: int
    seeds: int


def seed_design(success: pd.DataFrame) -> SeedDesign:
    """Counts of the success table's attempted cells by their number of seeds."""
    tried = success[success["attempted"].astype(bool)] if len(success) else success
    seeds = int(tried["seeds"].max()) if len(tried) else 0
    return SeedDesign(
        lead_only=int((tried["seeds"] == 1).sum()) if seeds > 1 else 0,
        more_seeds=int((tried["seeds"] > 1).sum()) if seeds > 1 else len(tried),
        runs=int(tried["seeds"].sum()) if len(tried) else 0,
        runs_all_seeds=len(tried) * seeds,
        seeds=seeds,
    )


def rung_table(critical: pd.DataFrame, task: str) -> pd.DataFrame:
    """Per variant of a task: the lengths trained with the lead seed only and those with
    more seeds (from the critical table's `rungs`, "10:1,25:3")."""
    rows = []
    for r in critical[critical["task"] == task].itertuples(index=False):
        pairs = [p.split(":") for p in str(r.rungs or "").split(",") if p]
        lead = [n for n, k in pairs if int(k) == 1]
        more = [f"{n} ({k})" for n, k in pairs if int(k) > 1]
        rows.append(
            {
                "variant": r.variant,
                "lead seed only": ", ".join(lead) or "–",
                "more seeds (how many)": ", ".join(more) or "–",
            }
        )
    return pd.DataFrame(rows, columns=["variant", "lead seed only", "more seeds (how many)"])
