"""The length sweep, its sequential seed design, and the critical length.

The lengths of `train.tasks.<task>` form a ladder, climbed in increasing order so that
nobody pays for long runs of a variant that already failed a shorter dependency. A
run *passes* a length when it meets the task's climbing criterion (`train.climb`,
rnngrad.verdicts.CRITERIA): "solved", or "off_baseline" (copy: a model that is slow to
memorise ten symbols at a short delay may still beat the memoryless baseline at a long
one, so copy climbs while it uses the input at all).

The seeds are spent where they decide something (`train.sequential`, on by default):

1. one seed, the lead (the first of `train.seeds`), climbs alone while it passes;
2. the last length it passed and the first it failed are run with every seed;
3. if a majority fails the lower one, every seed runs the next length down, until a
   majority passes or the ladder ends; if a majority passes the upper one (the lead was
   unlucky), every seed climbs on while a majority passes.

So the critical length (the longest length a majority passed before the first length a
majority failed) and the length above it always rest on every seed, and the lower
lengths on the lead alone. Without `sequential`, every seed climbs together; with
`train.adaptive: false` every length is trained with every seed.

`sweep_design` makes the decisions from the results known so far, so a workflow can
ask it again as results arrive (a Snakemake checkpoint per run); `critical_table` reads
the outcome. Pure Python and pandas: no torch, no Snakemake.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rnngrad.columns import CRITICAL, empty_table
from rnngrad.verdicts import CRITERIA, SOLVED, majority, majority_of, meets, run_verdict

__all__ = [
    "SOLVED",
    "Design",
    "sweep_design",
    "sweep_runs",
    "read_verdict",
    "critical_table",
    "CRITICAL_COLUMNS",
]

CRITICAL_COLUMNS = list(CRITICAL)

Run = tuple[int, int]  # (length, seed)


@dataclass
class Design:
    """The runs of one task and variant that the design needs so far.

    Attributes:
        needed: every (length, seed) the design has asked for, in the order asked.
        pending: those of them whose verdict is not known yet. Empty: the design is
            complete, and `needed` is every run it trains.
    """

    needed: list[Run] = field(default_factory=list)
    pending: list[Run] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.pending


def sweep_design(
    lengths: Sequence[int],
    seeds: Sequence[int],
    verdict_of: Callable[[int, int], str | None],
    criterion: str = "solved",
    sequential: bool = True,
    adaptive: bool = True,
) -> Design:
    """The runs one variant of one task trains, given the verdicts known so far.

    Args:
        lengths: the task's lengths, increasing (the config checks it).
        seeds: the training seeds; the first is the lead of the sequential design.
        verdict_of: the verdict (rnngrad.verdicts.VERDICTS) of the run at (length,
            seed), or None while it is not known. Asked only for runs the design needs.
        criterion: what passes a length (rnngrad.verdicts.CRITERIA).
        sequential: the lead climbs alone and the lengths that decide the critical
            length get every seed (the module docstring); False: every seed climbs.
        adaptive: False trains every length with every seed (nothing is asked).

    Returns:
        the Design: the runs needed so far and those still pending. Runs needed at the
        same time (the seeds of one length, the two lengths around the lead's failure)
        are all listed before the design waits, so they can run in parallel.

    Example:
        >>> known = {(10, 0): "solved", (20, 0): "at_baseline"}
        >>> d = sweep_design([10, 20, 50], [0, 1, 2], lambda n, s: known.get((n, s)))
        >>> d.pending
        [(20, 1), (20, 2), (10, 1), (10, 2)]
    """
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; options are {list(CRITERIA)}")
    lengths, seeds = list(lengths), list(seeds)
    design = Design()

    def ask(i: int, group: Sequence[int]) -> list[str] | None:
        verdicts = []
        for seed in group:
            run = (lengths[i], seed)
            if run not in design.needed:
                design.needed.append(run)
            verdict = verdict_of(*run)
            if verdict is None and run not in design.pending:
                design.pending.append(run)
            verdicts.append(verdict)
        return None if None in verdicts else verdicts

    def passes(verdicts: list[str]) -> bool:
        return majority(verdicts, criterion)

    top = len(lengths) - 1
    if not adaptive:  # every run, waiting on no verdict
        design.needed.extend((n, s) for n in lengths for s in seeds)
        return design
    if not sequential or len(seeds) == 1:
        for i in range(len(lengths)):
            verdicts = ask(i, seeds)
            if verdicts is None or not passes(verdicts):
                break
        return design
    fail = None  # the first length the lead failed
    for i in range(len(lengths)):
        verdicts = ask(i, seeds[:1])
        if verdicts is None:
            return design
        if not meets(verdicts[0], criterion):
            fail = i
            break
    if fail is None:  # the lead passed the whole ladder: every seed at the top
        verdicts = ask(top, seeds)
        if verdicts is None or passes(verdicts):
            return design
        down = top - 1
    else:
        upper = ask(fail, seeds)
        lower = ask(fail - 1, seeds) if fail > 0 else []
        if upper is None or lower is None:
            return design
        if passes(upper):  # the lead was unlucky: every seed climbs on
            for i in range(fail + 1, len(lengths)):
                verdicts = ask(i, seeds)
                if verdicts is None or not passes(verdicts):
                    break
            return design
        if fail == 0 or passes(lower):
            return design
        down = fail - 2
    for i in range(down, -1, -1):
        verdicts = ask(i, seeds)
        if verdicts is None or passes(verdicts):
            break
    return design


def sweep_runs(
    tasks: Mapping[str, Sequence[int]],
    variants: Sequence[str],
    seeds: Sequence[int],
    verdict_of: Callable[[str, int, str, int], str | None],
    criteria: Mapping[str, str] | None = None,
    sequential: bool = True,
    adaptive: bool = True,
) -> list[tuple[str, int, str, int]]:
    """Every (task, length, variant, seed) the sweep trains, given the verdicts so far.

    verdict_of(task, length, variant, seed) -> a verdict or None (see sweep_design);
    criteria: task -> climbing criterion (default "solved").
    """
    criteria = criteria or {}
    out = []
    for task, lengths in tasks.items():
        for variant in variants:
            design = sweep_design(
                lengths,
                seeds,
                lambda n, s, t=task, v=variant: verdict_of(t, n, v, s),
                criteria.get(task, "solved"),
                sequential,
                adaptive,
            )
            out += [(task, n, variant, s) for n, s in design.needed]
    return out


def read_verdict(summary: str | Path) -> str:
    """The verdict of a run from its summary.json; an unreadable one names its path."""
    try:
        data = json.loads(Path(summary).read_text())
        return run_verdict(str(data["status"]), data.get("test_loss_ratio"))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"cannot read the verdict of {summary}: {err!r}") from None


# ------------------------------------------------------------------ critical length


def _passes(row, criterion: str) -> bool:
    count = row["solved"] if criterion == SOLVED else row["off_baseline"]
    return bool(row["seeds"] > 0 and majority_of(count, row["seeds"]))


def _critical(cells: pd.DataFrame, criterion: str) -> tuple[float, bool, float]:
    """(critical length, censored, first failure) from one variant's rows, by length."""
    critical, failure = math.nan, math.nan
    for _, row in cells.iterrows():
        if not row["attempted"]:
            break
        if not _passes(row, criterion):
            failure = float(row["length"])
            break
        critical = float(row["length"])
    censored = math.isnan(failure) and not math.isnan(critical)
    return critical, censored, failure


def _seed_critical(runs: pd.DataFrame, criterion: str) -> pd.Series:
    """Per seed: the longest length it passed before its own first failure, over the
    lengths it ran (0 when it failed the first of them)."""
    out = {}
    for seed, g in runs.sort_values("length").groupby("seed", sort=True):
        best = 0
        for _, row in g.iterrows():
            if not meets(run_verdict(row["status"], row.get("test_loss_ratio")), criterion):
                break
            best = int(row["length"])
        out[seed] = best
    return pd.Series(out, dtype=float)


def _horizon_stats(rows: pd.DataFrame) -> tuple[float, float, float, float]:
    """(median, q1, q3, censored share) over seeds of the horizon, one row per seed."""
    h = pd.to_numeric(rows["horizon"], errors="coerce").to_numpy(float) if len(rows) else []
    keep = np.isfinite(h)
    if not keep.any():
        return (math.nan,) * 4
    censored = rows["horizon_censored"].astype(bool).to_numpy()
    q1, median, q3 = np.quantile(h[keep], [0.25, 0.5, 0.75])
    return float(median), float(q1), float(q3), float(censored[keep].mean())


def _common_horizons(decay: pd.DataFrame, task: str, variant: str, rung: float, final: float):
    """The horizons at one common length per task: at initialisation, each seed's probe
    at the longest probed length of the task (the same for every variant); after
    training, each seed's last probe at length `final` of the run trained at `rung`."""
    if not len(decay):
        return math.nan, _horizon_stats(decay), _horizon_stats(decay)
    init = decay[(decay["phase"] == "init") & (decay["task"] == task)]
    init_length = float(init["length"].max()) if len(init) else math.nan
    init = init[(init["variant"] == variant) & (init["length"] == init_length)]
    trained = decay.iloc[0:0]
    if not math.isnan(rung):
        trained = decay[
            (decay["phase"] == "trained")
            & (decay["task"] == task)
            & (decay["variant"] == variant)
            & (decay["length"] == rung)
            & (decay["probe_length"] == final)
        ]
        trained = trained.sort_values("probe_step").groupby("seed", sort=True).tail(1)
    return init_length, _horizon_stats(init), _horizon_stats(trained)


def critical_table(
    success: pd.DataFrame,
    decay: pd.DataFrame,
    runs: pd.DataFrame | None = None,
    criteria: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Per task and variant: the critical length, the seeds behind it, and the horizons.

    Args:
        success: the success table, one row per (task, length, variant) of the grid
            with `attempted`, `seeds`, `solved` and `off_baseline`.
        decay: the decay table: its "init" rows and its "train" rows (with probe_length,
            the length a trained model was probed at) give the horizons.
        runs: the runs table (task, length, variant, seed, status, test_loss_ratio) for
            the per-seed columns; without it they are NaN.
        criteria: task -> the criterion a length is passed on (default "solved").

    Returns:
        one row per (task, variant), columns CRITICAL_COLUMNS: criterion; lengths (the
        grid's, as text "10,20,50"); rungs, the seeds each attempted length had
        ("10:1,20:3,50:3"); longest_attempted; critical_length, the longest length a
        majority of seeds passed before the first length a majority did not (NaN when
        the first failed); censored, True when no attempted length failed (the critical
        length is at least the longest); first_failure (NaN if none); seeds (the most
        any length had) and seeds_at_critical / seeds_at_failure; seed_critical_min /
        _max over seeds of the longest length each passed before its own first failure,
        over the lengths it ran. The horizons are measured at one common length per task,
        whatever length a variant reached, so that they can predict the critical length
        without being capped by it: horizon_init_* at the longest probed length
        (horizon_init_length), from the probes at initialisation; horizon_final_* from
        the models trained at horizon_final_from (the critical length, or the first
        length when even that failed), probed at horizon_final_length, the task's
        longest grid length. Each: median, quartiles and censored share over seeds.

    Example:
        >>> s = pd.DataFrame({"task": "adding", "variant": "rnn", "cell": "rnn_tanh",
        ...     "length": [10, 20, 50], "attempted": [True, True, False],
        ...     "seeds": [3, 3, 0], "solved": [3, 1, 0], "off_baseline": [3, 2, 0]})
        >>> row = critical_table(s, pd.DataFrame()).iloc[0]
        >>> row["critical_length"], row["first_failure"], bool(row["censored"])
        (10.0, 20.0, False)
        >>> critical_table(s, pd.DataFrame(), criteria={"adding": "off_baseline"}).iloc[0]["critical_length"]
        20.0
    """
    criteria = dict(criteria or {})
    rows = []
    for (task, variant), cells in success.groupby(["task", "variant"], sort=True):
        criterion = criteria.get(task, SOLVED)
        cells = cells.sort_values("length")
        critical, censored, failure = _critical(cells, criterion)
        tried = cells[cells["attempted"].astype(bool)]
        longest = float(tried["length"].max()) if len(tried) else math.nan
        seeds_at = dict(zip(tried["length"].astype(float), tried["seeds"].astype(int), strict=True))
        row = {
            "task": task,
            "variant": variant,
            "cell": cells["cell"].dropna().iloc[0] if cells["cell"].notna().any() else None,
            "criterion": criterion,
            "lengths": ",".join(str(int(n)) for n in cells["length"]),
            "rungs": ",".join(f"{int(n)}:{k}" for n, k in seeds_at.items()),
            "longest_attempted": longest,
            "critical_length": critical,
            "censored": censored,
            "first_failure": failure,
            "seeds": max(seeds_at.values(), default=0),
            "seeds_at_critical": seeds_at.get(critical, 0),
            "seeds_at_failure": seeds_at.get(failure, 0),
        }
        seed_crit = pd.Series(dtype=float)
        if runs is not None and len(runs):
            mine = runs[(runs["task"] == task) & (runs["variant"] == variant)]
            if len(mine):
                seed_crit = _seed_critical(mine, criterion)
        row["seed_critical_min"] = float(seed_crit.min()) if len(seed_crit) else math.nan
        row["seed_critical_max"] = float(seed_crit.max()) if len(seed_crit) else math.nan
        rung = (
            critical
            if not math.isnan(critical)
            else float(tried["length"].min())
            if len(tried)
            else math.nan
        )
        final = float(cells["length"].max())
        init_length, init, trained = _common_horizons(decay, task, variant, rung, final)
        row["horizon_init_length"] = init_length
        row["horizon_final_length"] = final
        row["horizon_final_from"] = rung
        for which, stats in (("init", init), ("final", trained)):
            for name, value in zip(("median", "q1", "q3", "censored"), stats, strict=True):
                row[f"horizon_{which}_{name}"] = value
        rows.append(row)
    if not rows:
        return empty_table("critical")
    out = pd.DataFrame(rows)[CRITICAL_COLUMNS]
    out["censored"] = out["censored"].astype(bool)
    for col in ("seeds", "seeds_at_critical", "seeds_at_failure"):
        out[col] = out[col].astype("int64")
    return out
