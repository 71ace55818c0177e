"""What training achieved: outcomes per length, the critical length, and whether the
measured gradient horizon predicts it; the step budget the runs had.

The held-out test metric decides a run's status (rnngrad.train); the success and
critical tables (rnngrad.aggregate, rnngrad.sweep) count it. Cells of the grid that
the adaptive sweep never trained are "not attempted", never failures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rnngrad.config import climb_criterion, train_steps
from rnngrad.stats import bootstrap_spearman, rho_needed, spearman
from rnngrad.verdicts import majority_of

__all__ = [
    "Overview",
    "training_overview",
    "success_by_length",
    "critical_length",
    "horizon_predicts_critical",
    "rho_needed",
    "Budget",
    "budget",
]


@dataclass
class Overview:
    """The training grid in counts (runs, their statuses, cells attempted or not)."""

    runs: int = 0
    solved: int = 0
    unsolved: int = 0
    diverged: int = 0
    variants: int = 0
    tasks: list[str] = field(default_factory=list)
    seeds_min: int = 0
    seeds_max: int = 0
    cells: int = 0
    cells_attempted: int = 0
    cells_not_attempted: int = 0
    stopped_early_unsolved: int = 0
    diverged_runs: pd.DataFrame = field(default_factory=pd.DataFrame)


def training_overview(runs: pd.DataFrame, success: pd.DataFrame) -> Overview:
    """Counts of the training grid: runs by status, cells (task, length, variant) of
    the grid attempted and not attempted, runs that stopped early on the evaluation
    batch but failed the test batch, and the diverged runs (task, length, variant,
    seed, diverged_at)."""
    r, s = runs, success
    status = r["status"]
    seeds = r.groupby(["task", "length", "variant"])["seed"].nunique() if len(r) else pd.Series([0])
    attempted = s["attempted"].astype(bool) if len(s) else pd.Series(dtype=bool)
    div = r[status == "diverged"]
    return Overview(
        runs=len(r),
        solved=int((status == "solved").sum()),
        unsolved=int((status == "unsolved").sum()),
        diverged=int((status == "diverged").sum()),
        variants=int(r["variant"].nunique()),
        tasks=sorted(r["task"].dropna().astype(str).unique()),
        seeds_min=int(seeds.min()),
        seeds_max=int(seeds.max()),
        cells=len(s),
        cells_attempted=int(attempted.sum()),
        cells_not_attempted=int((~attempted).sum()),
        stopped_early_unsolved=int(
            (r["stopped_early"].fillna(False).astype(bool) & (status == "unsolved")).sum()
        ),
        diverged_runs=div[["task", "length", "variant", "seed", "diverged_at"]].reset_index(
            drop=True
        )
        if len(div)
        else pd.DataFrame(columns=["task", "length", "variant", "seed", "diverged_at"]),
    )


def success_by_length(success: pd.DataFrame) -> pd.DataFrame:
    """Outcome per task, length and variant on the held-out test batch.

    Returns the success table's rows with `outcome`: "solved" (a majority of seeds
    solved), "failed" (attempted, no majority) or "not attempted" (the adaptive sweep
    never trained it: its rates stay NaN and it counts as neither), with the table's
    Wilson interval of the solved rate.
    """
    if not len(success):
        return success.assign(outcome=pd.Series(dtype=object))
    attempted = success["attempted"] & (success["seeds"] > 0)
    majority = majority_of(success["solved"], success["seeds"])
    s = success.assign(
        outcome=np.where(~attempted, "not attempted", np.where(majority, "solved", "failed"))
    )
    return s.sort_values(["task", "variant", "length"], ignore_index=True)


def critical_length(critical: pd.DataFrame) -> pd.DataFrame:
    """The critical length per task and variant, longest first.

    The critical table's rows (rnngrad.sweep.critical_table) with `reach`: the
    critical length as a number for sorting and ranking, 0 when even the first
    length failed, +inf when the variant solved the whole grid (censored).
    """
    if not len(critical):
        return critical.assign(reach=pd.Series(dtype=float))
    reach = critical["critical_length"].fillna(0.0)
    c = critical.assign(reach=reach.where(~critical["censored"], math.inf))
    return c.sort_values(
        ["task", "reach", "variant"], ascending=[True, False, True], ignore_index=True
    )


def _grid_lengths(text) -> list[int]:
    if isinstance(text, list | tuple):
        return [int(x) for x in text]
    return [int(x) for x in str(text or "").replace(" ", "").split(",") if x]


def horizon_predicts_critical(
    critical: pd.DataFrame, phase: str = "init", n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Does the gradient horizon (at init, or after training) predict the critical length?

    Per task, across variants: Spearman's rank correlation between the horizon's
    median over seeds and the critical length (`reach` of `critical_length`), with a
    percentile bootstrap interval over variants (fixed generator). The horizon is the
    one measured at the task's common length (rnngrad.sweep.critical_table: the longest
    probed length at initialisation; the trained model at its critical length probed at
    the longest grid length after training), so it is not capped by how far a variant
    climbed. A censored horizon ranks above every measured one; a critical length
    censored at the top ranks above every other, one that failed the first length below.
    And the agreement of "horizon >= T" with "passed T" over every grid length T up to
    the longest attempted (passed T: T <= critical length), on the same horizons.

    Returns one row per task: phase, variants (with both numbers), rho, rho_low,
    rho_high, agreement (share of (variant, T) pairs), pairs, censored_above (critical
    lengths censored at the top of the grid), censored_below (variants that failed the
    first length), horizons_censored (horizons that never fell to the ratio), distinct
    (distinct ranks left on the critical side: tied ranks carry no order), rho_needed
    (the |rho| a two-sided 5 % test over this many variants needs, t-approximation:
    the test's power), and verdict: "predicts" (interval above 0), "inverse" (below 0),
    "no evidence" (interval holds 0) or "undetermined" (fewer than three variants, or
    no interval).
    """
    if phase not in ("init", "final"):
        raise ValueError(f"unknown phase {phase!r}; options are ['init', 'final']")
    cols = [
        "task",
        "phase",
        "variants",
        "rho",
        "rho_low",
        "rho_high",
        "agreement",
        "pairs",
        "censored_above",
        "censored_below",
        "horizons_censored",
        "distinct",
        "rho_needed",
        "verdict",
    ]
    c = critical_length(critical)
    rows = []
    for task, g in c.groupby("task", sort=True):
        h = g[f"horizon_{phase}_median"].astype(float)
        cens = g[f"horizon_{phase}_censored"].astype(float).fillna(0) >= 0.5
        horizon = h.where(~cens, math.inf)
        ok = h.notna()
        x, y = horizon[ok].to_numpy(), g.loc[ok, "reach"].to_numpy(float)
        rho = spearman(x, y)
        lo, hi = (
            bootstrap_spearman(x, y, n_boot=n_boot, seed=seed)
            if np.isfinite(rho)
            else (math.nan, math.nan)
        )
        hits = []
        for r, hz in zip(g[ok].itertuples(), horizon[ok], strict=True):
            top = r.longest_attempted if np.isfinite(r.longest_attempted) else math.inf
            for length in _grid_lengths(r.lengths):
                if length <= top:
                    hits.append((hz >= length) == (length <= r.reach))
        if not np.isfinite(rho) or not np.isfinite(lo):
            verdict = "undetermined"
        elif lo > 0:
            verdict = "predicts"
        elif hi < 0:
            verdict = "inverse"
        else:
            verdict = "no evidence"
        rows.append(
            {
                "task": task,
                "phase": phase,
                "variants": int(ok.sum()),
                "rho": rho,
                "rho_low": lo,
                "rho_high": hi,
                "agreement": float(np.mean(hits)) if hits else math.nan,
                "pairs": len(hits),
                "censored_above": int(np.isinf(y).sum()),
                "censored_below": int((y == 0).sum()),
                "horizons_censored": int(np.isinf(x).sum()),
                "distinct": len(set(y.tolist())),
                "rho_needed": rho_needed(len(x)),
                "verdict": verdict,
            }
        )
    return pd.DataFrame(rows, columns=cols)


@dataclass
class Budget:
    """The training budget of the config (what a run may spend, not what it spent)."""

    steps: dict[str, dict[int, int]] = field(default_factory=dict)  # task -> length -> steps
    batch_size: int | None = None
    lr: float | None = None
    seeds: list[int] = field(default_factory=list)
    eval_every: int | None = None
    eval_size: int | None = None
    test_size: int | None = None
    final_k: int | None = None
    adaptive: bool = True
    sequential: bool = True
    climb: dict[str, str] = field(default_factory=dict)  # task -> criterion
    lengths: dict[str, list[int]] = field(default_factory=dict)

    @property
    def per_task(self) -> bool:
        """True when the tasks have different step budgets."""
        return len({frozenset(v.values()) for v in self.steps.values()}) > 1


def budget(config: Mapping | None) -> Budget:
    """The step budgets and training settings of a checked config (rnngrad.config).

    Never read from the runs: a run that stopped early or diverged spent less than its
    budget.
    """
    if not config:
        return Budget()
    cfg = dict(config)
    train = cfg["train"]
    tasks = {str(t): [int(x) for x in v] for t, v in train["tasks"].items()}
    return Budget(
        steps={t: {n: train_steps(cfg, t, n) for n in ns} for t, ns in tasks.items()},
        batch_size=train["batch_size"],
        lr=train["lr"],
        seeds=[int(s) for s in train["seeds"]],
        eval_every=train["eval_every"],
        eval_size=train["eval_size"],
        test_size=train["test_size"],
        final_k=train["final_k"],
        adaptive=bool(train["adaptive"]),
        sequential=bool(train["sequential"]),
        climb={t: climb_criterion(cfg, t) for t in tasks},
        lengths=tasks,
    )
