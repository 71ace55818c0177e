"""What a grid will cost, before it runs: CPU-hours from measured step costs.

A training run costs its steps times the cost of one step (`step_seconds`, the one
definition the workflow's job runtimes use too), plus its evaluations, its test pass
and its gradient probes. How many runs the adaptive sweep trains depends on results
nobody has yet (rnngrad.sweep), so `plan` gives two scenarios per task and variant:

- **min**: the lead fails the first length, which is then run with every seed;
- **max**: the lead passes every length spending its full budget at each, and the top
  two lengths then get every seed. Without `train.sequential`: every seed passes every
  length. With `train.adaptive: false`: every length with every seed, min and max alike.

Every run in either scenario spends its whole budget (a solved run stops early and
costs less). `max` is the likely upper end, not a bound: if a majority fails the top
length, the design goes down with every seed, up to the full grid of every length
with every seed. Probes at initialisation are one job per task, length and variant.
A job's start-up (Python, torch, Snakemake: seconds each) is not counted.
Pure Python and pandas: no torch, no Snakemake.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from rnngrad import config as cfgmod
from rnngrad.specs import get_task

__all__ = [
    "STEP_SECONDS",
    "PLAN_COLUMNS",
    "PlanSummary",
    "step_seconds",
    "probe_seconds",
    "plan",
    "plan_summary",
]

# Seconds per training step (forward, backward, Adam) at T = 1024 time steps of adding,
# H = 64, batch 64. Measured 2026-12-06 on a 2-core Intel Xeon VM, torch 2.13 CPU, one
# thread, glibc MALLOC_MMAP_THRESHOLD_ = MALLOC_TRIM_THRESHOLD_ = 2^30 (as the workflow
# sets them). Step time is linear in the number of time steps (log-log slopes 0.94 to
# 1.10 from T = 50 to 4000); a copy step costs about the same per time step (its input
# is embedded). Recalibrate here when the machine or torch changes.
STEP_SECONDS = {
    "rnn_tanh": 0.091,
    "rnn_relu": 0.090,
    "lstm": 0.139,
    "gru": 0.293,
    "lru": 0.084,
    "mingru": 0.106,
    "indrnn": 0.132,
}
_AT_STEPS, _AT_WIDTH, _AT_BATCH = 1024, 64, 64  # where STEP_SECONDS was measured
# Assumed, not measured: a step costs ~ (H/64)^1.5 above H = 64 and no less below it
# (one thread, overhead-bound at small widths). To recalibrate.
WIDTH_EXPONENT = 1.5
EVAL_FRACTION = 1 / 3  # a forward pass of a batch costs about a third of a training step
# Probes (workflow/rules/common.smk, probe_runtime): 2 ms per probed time step and seed,
# LSTM, H = 64, 2 Jacobian examples; linear in the examples, ~ (H/64)^2.5 (eigenproblems)
PROBE_STEP_SECONDS, PROBE_JAC_EXAMPLES, PROBE_WIDTH_EXPONENT = 0.002, 2, 2.5
TRAIN_JAC_EXAMPLES = 2  # rnngrad.probes.TRAIN_JAC_EXAMPLES (that module imports torch)
EFFICIENCY = 0.9  # share of the cores a scheduled grid keeps busy

PLAN_COLUMNS = [
    "task",
    "variant",
    "cell",
    "hidden_size",
    "lengths",  # the trained lengths as text, "10,20,50" ("" when only probed)
    "runs_min",
    "runs_max",
    "cpu_seconds_min",
    "cpu_seconds_max",
    "chain_seconds_min",  # the longest chain of runs that must follow one another
    "chain_seconds_max",
    "probe_cpu_seconds",  # probes at initialisation, every length and seed
    "probe_job_seconds",  # the longest probe job (one length, every seed)
]


def _width(hidden_size: int, exponent: float) -> float:
    return max(1.0, hidden_size / _AT_WIDTH) ** exponent


def step_seconds(
    cell: str, task: str, length: int, hidden_size: int = 64, batch_size: int = 64
) -> float:
    """CPU seconds of one training step, on one thread (STEP_SECONDS, scaled).

    Linear in the task's time steps (copy: T + 20) and in the batch, and ~ (H/64)^1.5
    above H = 64 (WIDTH_EXPONENT, an assumption).

    Raises:
        ValueError: an unknown cell or task, naming the known ones.

    Example:
        >>> round(step_seconds("lstm", "adding", 1024), 3)
        0.139
    """
    if cell not in STEP_SECONDS:
        raise ValueError(f"unknown cell {cell!r}; options are {sorted(STEP_SECONDS)}")
    steps = get_task(task).seq_len(length)
    scale = steps / _AT_STEPS * batch_size / _AT_BATCH * _width(hidden_size, WIDTH_EXPONENT)
    return STEP_SECONDS[cell] * scale


def probe_seconds(
    task: str, length: int, hidden_size: int = 64, jac_examples: int = 2, seeds: int = 1
) -> float:
    """CPU seconds of a gradient probe of `seeds` models at one length (any cell)."""
    per_step = PROBE_STEP_SECONDS * jac_examples / PROBE_JAC_EXAMPLES
    return (
        per_step
        * get_task(task).seq_len(length)
        * seeds
        * _width(hidden_size, PROBE_WIDTH_EXPONENT)
    )


def run_seconds(cfg: dict, cell: str, width: int, task: str, length: int) -> float:
    """CPU seconds of one run that spends its whole budget: steps, evaluations, test,
    probes (the Slurm runtime of a train job is this with room to spare)."""
    train = cfg["train"]
    steps = cfgmod.train_steps(cfg, task, length)
    step = step_seconds(cell, task, length, width, train["batch_size"])
    forward = EVAL_FRACTION / train["batch_size"] * step  # per example
    evals = math.ceil(steps / train["eval_every"])
    probes = math.ceil(steps / train["probe_every"]) if train["probe_every"] > 0 else 1
    horizon = cfgmod.horizon_length(cfg, task) or length
    return (
        steps * step
        + forward * (evals * train["eval_size"] + train["test_size"])
        + probes * probe_seconds(task, length, width, TRAIN_JAC_EXAMPLES)
        + probe_seconds(task, horizon, width, 1)
    )


def _scenarios(cost: list[float], seeds: int, adaptive: bool, sequential: bool):
    """(runs, seconds, chain) for min and max from the full-budget cost per length."""
    n = len(cost)
    if not adaptive:
        every = (n * seeds, seeds * sum(cost), max(cost))
        return every, every
    if not sequential or seeds == 1:  # every seed climbs together
        return (seeds, seeds * cost[0], cost[0]), (n * seeds, seeds * sum(cost), sum(cost))
    low = (seeds, seeds * cost[0], 2 * cost[0])  # the lead, then the other seeds
    top = cost[-2:]  # the top two lengths, run with every seed at the same time
    high = (n + (seeds - 1) * len(top), sum(cost) + (seeds - 1) * sum(top), sum(cost) + max(top))
    return low, high


def plan(cfg: dict) -> pd.DataFrame:
    """The expected cost of a config's grid, per task and variant.

    Args:
        cfg: a config returned by rnngrad.config.load_config.

    Returns:
        one row per (task, variant) that is trained or probed, columns PLAN_COLUMNS:
        runs_min / runs_max and cpu_seconds_min / cpu_seconds_max of training under the
        config's sweep settings (the scenarios of the module docstring), the longest
        chain of runs that must follow one another in each, and the CPU seconds of the
        probes at initialisation (0 for a task or variant that is not probed).

    Example:
        >>> cfg = cfgmod.check_config({"variants": {"rnn": {"cell": "rnn_tanh"}},
        ...     "train": {"tasks": {"adding": [10, 20, 50]}, "seeds": [0, 1, 2]},
        ...     "probes": {"tasks": {"adding": [10]}}})
        >>> plan(cfg)[["runs_min", "runs_max"]].values.tolist()
        [[3, 7]]
    """
    specs = cfgmod.variant_specs(cfg)
    train, probes = cfg["train"], cfg["probes"]
    rows: dict[tuple[str, str], dict] = {}

    def row(task: str, name: str) -> dict:
        new = dict.fromkeys(PLAN_COLUMNS, 0) | {"task": task, "variant": name, "lengths": ""}
        new |= {"cell": specs[name].cell, "hidden_size": specs[name].hidden_size}
        return rows.setdefault((task, name), new)

    for task, lengths in train["tasks"].items():
        for name in train.get("variants") or list(cfg["variants"]):
            spec = specs[name]
            cost = [run_seconds(cfg, spec.cell, spec.hidden_size, task, n) for n in lengths]
            low, high = _scenarios(
                cost, len(train["seeds"]), train["adaptive"], train["sequential"]
            )
            r = row(task, name)
            r["lengths"] = ",".join(str(n) for n in lengths)
            for suffix, (runs, seconds, chain) in (("min", low), ("max", high)):
                r[f"runs_{suffix}"] = runs
                r[f"cpu_seconds_{suffix}"] = seconds
                r[f"chain_seconds_{suffix}"] = chain
    for task, lengths in probes["tasks"].items():
        for name in probes.get("variants") or list(cfg["variants"]):
            jobs = [
                probe_seconds(task, n, specs[name].hidden_size, probes["jac_examples"])
                * probes["seeds"]
                for n in lengths
            ]
            r = row(task, name)
            r["probe_cpu_seconds"], r["probe_job_seconds"] = sum(jobs), max(jobs)
    out = pd.DataFrame(list(rows.values()), columns=PLAN_COLUMNS)
    for col in ("runs_min", "runs_max", "hidden_size"):
        out[col] = out[col].astype("int64")
    return out


@dataclass(frozen=True)
class PlanSummary:
    """A grid's totals: training runs, CPU-hours, and wall time on `cores` cores.

    The wall time is the CPU time over cores x efficiency, but never less than the
    longest chain of jobs that must follow one another (a lead's climb, a probe job).
    """

    runs_min: int
    runs_max: int
    train_hours_min: float
    train_hours_max: float
    probe_hours: float
    cores: int
    efficiency: float
    chain_hours_min: float
    chain_hours_max: float
    wall_hours_min: float
    wall_hours_max: float


def plan_summary(df: pd.DataFrame, cores: int = 8, efficiency: float = EFFICIENCY) -> PlanSummary:
    """Totals of a `plan` table on `cores` cores kept busy at `efficiency`.

    Raises:
        ValueError: cores < 1 or efficiency outside (0, 1].
    """
    if cores < 1 or not 0 < efficiency <= 1:
        raise ValueError(f"need cores >= 1 and 0 < efficiency <= 1, got {cores}, {efficiency}")
    probe = df["probe_cpu_seconds"].sum() / 3600
    longest_probe = df["probe_job_seconds"].max() / 3600 if len(df) else 0.0
    totals = {}
    for suffix in ("min", "max"):
        cpu = df[f"cpu_seconds_{suffix}"].sum() / 3600
        chain = max(df[f"chain_seconds_{suffix}"].max() / 3600 if len(df) else 0.0, longest_probe)
        totals[suffix] = (cpu, chain, max((cpu + probe) / (cores * efficiency), chain))
    return PlanSummary(
        runs_min=int(df["runs_min"].sum()),
        runs_max=int(df["runs_max"].sum()),
        train_hours_min=float(totals["min"][0]),
        train_hours_max=float(totals["max"][0]),
        probe_hours=float(probe),
        cores=cores,
        efficiency=efficiency,
        chain_hours_min=float(totals["min"][1]),
        chain_hours_max=float(totals["max"][1]),
        wall_hours_min=float(totals["min"][2]),
        wall_hours_max=float(totals["max"][2]),
    )
