"""The adaptive length sweep, and the critical length: where each variant breaks.

The lengths of `train.tasks.<task>` are tried in increasing order: a variant is
trained at the next length only once a majority of its seeds solved the one
before (status "solved" in their summary.json), so nobody pays for long runs of a
variant that already failed a shorter dependency. The workflow asks `sweep_lengths`
which lengths a variant is trained at, handing it a function that returns the seeds'
statuses at a length (a Snakemake checkpoint in the workflow; anything in tests).
Lengths the sweep never reached are recorded as not attempted, never as failures.

`critical_table` reads the result: per task and variant, the critical length (the
longest length solved by a majority of seeds before the first length that was
not), the seeds' spread, and the gradient horizon at initialisation and at the end
of training at the longest attempted length, so the report can ask whether the
horizon predicts the critical length.

Pure Python and pandas: no torch, no Snakemake.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "SOLVED",
    "majority_solved",
    "sweep_lengths",
    "sweep_runs",
    "read_statuses",
    "critical_table",
    "CRITICAL_COLUMNS",
]

SOLVED = "solved"  # the summary.json status that counts as solving a length

CRITICAL_COLUMNS = [
    "task",
    "variant",
    "cell",
    "lengths",
    "longest_attempted",
    "critical_length",
    "censored",
    "first_failure",
    "seeds",
    "seed_critical_min",
    "seed_critical_max",
    "horizon_length",
    "horizon_init_median",
    "horizon_init_q1",
    "horizon_init_q3",
    "horizon_init_censored",
    "horizon_final_median",
    "horizon_final_q1",
    "horizon_final_q3",
    "horizon_final_censored",
]


def majority_solved(statuses: Iterable[str]) -> bool:
    """True when more than half of the seeds' statuses are "solved" (2 of 3, 3 of 5, ...).

    Example:
        >>> majority_solved(["solved", "unsolved", "solved"]), majority_solved(["solved", "diverged"])
        (True, False)
    """
    statuses = list(statuses)
    return 2 * sum(s == SOLVED for s in statuses) > len(statuses)


def sweep_lengths(
    lengths: Sequence[int],
    statuses_at: Callable[[int], Sequence[str]],
    adaptive: bool = True,
) -> list[int]:
    """The lengths one variant of one task is trained at, in order.

    Args:
        lengths: the task's lengths, increasing (the config checks it).
        statuses_at: the seeds' statuses at a length. Called only for a length whose
            successor is in question, in order, and never for the last length, so a
            workflow may block on (or raise for) results that do not exist yet.
        adaptive: False trains every length (statuses_at is never called).

    Returns:
        lengths[:k]: the first length, then each next one while a majority of
        seeds solved the one before.

    Example:
        >>> results = {10: ["solved"] * 3, 20: ["solved", "unsolved", "unsolved"]}
        >>> sweep_lengths([10, 20, 50, 100], results.__getitem__)
        [10, 20]
    """
    lengths = list(lengths)
    if not adaptive:
        return lengths
    out = []
    for i, length in enumerate(lengths):
        out.append(length)
        if i + 1 < len(lengths) and not majority_solved(statuses_at(length)):
            break
    return out


def sweep_runs(
    tasks: dict[str, Sequence[int]],
    variants: Sequence[str],
    seeds: Sequence[int],
    statuses_at: Callable[[str, int, str], Sequence[str]],
    adaptive: bool = True,
) -> list[tuple[str, int, str, int]]:
    """Every (task, length, variant, seed) the sweep trains, given the results so far.

    statuses_at(task, length, variant) -> the seeds' statuses (see sweep_lengths).
    """
    return [
        (task, length, variant, seed)
        for task, lengths in tasks.items()
        for variant in variants
        for length in sweep_lengths(
            lengths, lambda n, t=task, v=variant: statuses_at(t, n, v), adaptive
        )
        for seed in seeds
    ]


def read_statuses(summaries: Iterable[str | Path]) -> list[str]:
    """The `status` of each summary.json; an unreadable one names its path."""
    out = []
    for path in summaries:
        try:
            out.append(str(json.loads(Path(path).read_text())["status"]))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"cannot read the status of {path}: {err!r}") from None
    return out


# ------------------------------------------------------------------ critical length


def _majority(row: pd.Series) -> bool:
    return bool(row["seeds"] > 0 and 2 * row["solved"] > row["seeds"])


def _critical(cells: pd.DataFrame) -> tuple[float, bool, float]:
    """(critical length, censored, first failure) from one variant's rows, by length."""
    critical, failure = math.nan, math.nan
    for _, row in cells.iterrows():
        if not row["attempted"]:
            break
        if not _majority(row):
            failure = float(row["length"])
            break
        critical = float(row["length"])
    censored = math.isnan(failure) and not math.isnan(critical)
    return critical, censored, failure


def _seed_critical(runs: pd.DataFrame) -> pd.Series:
    """Per seed: the longest length solved before its first failure (0 if the first failed)."""
    out = {}
    for seed, g in runs.sort_values("length").groupby("seed", sort=True):
        best = 0
        for _, row in g.iterrows():
            if row["status"] != SOLVED:
                break
            best = int(row["length"])
        out[seed] = best
    return pd.Series(out, dtype=float)


def _horizons(decay: pd.DataFrame, which: str) -> tuple[float, float, float, float]:
    """(median, q1, q3, censored share) over seeds of the horizon at the first ("init")
    or the last ("final") training probe of each run."""
    if not len(decay):
        return (math.nan,) * 4
    rows = decay.sort_values("probe_step").groupby("seed", sort=True)
    picked = rows.head(1) if which == "init" else rows.tail(1)
    if which == "init":
        picked = picked[picked["probe_step"] == 0]
    h = pd.to_numeric(picked["horizon"], errors="coerce").to_numpy(float)
    censored = picked["horizon_censored"].astype(bool).to_numpy()
    keep = np.isfinite(h)
    if not keep.any():
        return (math.nan,) * 4
    q1, median, q3 = np.quantile(h[keep], [0.25, 0.5, 0.75])
    return float(median), float(q1), float(q3), float(censored[keep].mean())


def critical_table(
    success: pd.DataFrame, decay: pd.DataFrame, runs: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per task and variant: the critical length, its spread over seeds, and the horizons.

    Args:
        success: the success table, one row per (task, length, variant) of the grid
            with `attempted`, `seeds` and `solved` (rows without `attempted` count as
            attempted when they have seeds).
        decay: the decay table; its phase "train" rows give the horizons.
        runs: the runs table (task, length, variant, seed, status) for the per-seed
            columns; without it they are NaN.

    Returns:
        one row per (task, variant), columns CRITICAL_COLUMNS:
        lengths (the grid's, as text "10,20,50"); longest_attempted; critical_length,
        the longest length solved by a majority of seeds before the first length that
        was not (NaN when the first failed); censored, True when no attempted length
        failed (the variant solved every length it was trained at: the critical length
        is at least the longest); first_failure (NaN if none); seeds (trained at the
        first length); seed_critical_min / _max over seeds of the longest length each
        solved before its own first failure (0 when it failed the first);
        horizon_length, the longest attempted length, where the horizons are measured;
        horizon_init_* and horizon_final_*: median, quartiles and censored share over
        seeds of the horizon at the run's first probe (step 0) and its last.

    Example:
        >>> s = pd.DataFrame({"task": "adding", "variant": "rnn", "cell": "rnn_tanh",
        ...     "length": [10, 20, 50], "attempted": [True, True, False],
        ...     "seeds": [3, 3, 0], "solved": [3, 1, 0]})
        >>> row = critical_table(s, pd.DataFrame()).iloc[0]
        >>> row["critical_length"], row["first_failure"], bool(row["censored"])
        (10.0, 20.0, False)
    """
    success = success.copy()
    if "attempted" not in success.columns:
        success["attempted"] = success["seeds"] > 0
    rows = []
    for (task, variant), cells in success.groupby(["task", "variant"], sort=True):
        cells = cells.sort_values("length")
        critical, censored, failure = _critical(cells)
        tried = cells[cells["attempted"].astype(bool)]
        longest = float(tried["length"].max()) if len(tried) else math.nan
        row = {
            "task": task,
            "variant": variant,
            "cell": cells["cell"].dropna().iloc[0] if cells["cell"].notna().any() else None,
            "lengths": ",".join(str(int(n)) for n in cells["length"]),
            "longest_attempted": longest,
            "critical_length": critical,
            "censored": censored,
            "first_failure": failure,
            "seeds": int(tried["seeds"].iloc[0]) if len(tried) else 0,
        }
        seed_crit = pd.Series(dtype=float)
        if runs is not None and len(runs):
            mine = runs[(runs["task"] == task) & (runs["variant"] == variant)]
            if len(mine):
                seed_crit = _seed_critical(mine)
        row["seed_critical_min"] = float(seed_crit.min()) if len(seed_crit) else math.nan
        row["seed_critical_max"] = float(seed_crit.max()) if len(seed_crit) else math.nan
        row["horizon_length"] = longest
        at = decay.iloc[0:0]
        if len(decay) and not math.isnan(longest):
            at = decay[
                (decay["phase"] == "train")
                & (decay["task"] == task)
                & (decay["variant"] == variant)
                & (decay["length"] == longest)
            ]
        for which in ("init", "final"):
            median, q1, q3, cens = _horizons(at, which)
            row[f"horizon_{which}_median"] = median
            row[f"horizon_{which}_q1"] = q1
            row[f"horizon_{which}_q3"] = q3
            row[f"horizon_{which}_censored"] = cens
        rows.append(row)
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in CRITICAL_COLUMNS})
    out = pd.DataFrame(rows)[CRITICAL_COLUMNS]
    out["censored"] = out["censored"].astype(bool)
    out["seeds"] = out["seeds"].astype("int64")
    return out
