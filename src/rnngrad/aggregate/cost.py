"""Cost: speed from the run summaries, time and memory from Snakemake's benchmark files."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from rnngrad.aggregate.runs import RUN_KEYS, InputError, _require, _typed_keys
from rnngrad.columns import COST, empty_table

BENCH_COLUMNS = {"s": "bench_seconds", "cpu_time": "cpu_seconds", "max_rss": "max_rss_mb"}
# A train job's benchmark file, one per run (the workflow's TRAIN_BENCHMARK), with the
# job's own CPU count beside it in seed{seed}.usage.json
_BENCH_RUN = re.compile(
    r"(?P<task>[^/]+)/T(?P<length>\d+)/(?P<variant>[^/]+)/seed(?P<seed>\d+)\.tsv$"
)


def _read_benchmark(path: Path) -> dict:
    """One benchmark file as a row: its job's keys, wall and CPU seconds, peak memory.

    Snakemake samples a job's CPU time, every 0.5 s for 15 s and then every 30 s, and
    keeps the last sample, so its `cpu_time` (kept as bench_cpu_seconds) misses up to 30 s
    at the end of a job. A job may write its own count (getrusage) beside the file, in
    `{name}.usage.json`, which misses only the interpreter's exit: cpu_seconds is the
    larger of the two lower bounds.
    """
    posix = Path(path).as_posix()
    m = _BENCH_RUN.search(posix)
    if m is None:
        raise InputError(
            f"{path}: benchmark path must end in {{task}}/T{{length}}/{{variant}}/seed{{seed}}.tsv"
        )
    try:
        df = pd.read_csv(_require(Path(path)), sep="\t")
    except FileNotFoundError:
        raise
    except Exception as err:
        raise InputError(f"cannot read {path}: {err}") from None
    missing = [c for c in BENCH_COLUMNS if c not in df.columns]
    if missing or not len(df):
        raise InputError(f"{path} lacks column(s) {missing} or rows")
    row = m.groupdict()
    for src, dst in BENCH_COLUMNS.items():
        row[dst] = float(pd.to_numeric(df[src], errors="coerce").mean())
    row["bench_cpu_seconds"] = row["cpu_seconds"]
    usage = Path(path).with_suffix(".usage.json")
    if usage.is_file():
        try:
            own = float(json.loads(usage.read_text())["cpu_seconds"])
            row["cpu_seconds"] = max(own, row["bench_cpu_seconds"])
        except (ValueError, KeyError, TypeError) as err:
            raise InputError(f"cannot read {usage}: {err!r}") from None
    return row


JOB_KEYS = ["task", "length", "variant"]


def cost_table(runs: pd.DataFrame, benchmark_files: Iterable[str | Path] = ()) -> pd.DataFrame:
    """Speed and memory per task, cell, variant and length (one train job per run).

    From the summaries: runs, steps per second and wall seconds (means over seeds);
    from Snakemake's benchmark files, when given: per train job, its wall and CPU
    seconds (CPU from the job's own count where it wrote one, see `_read_benchmark`) and
    peak resident memory (MB), means over the cell's jobs (`jobs`: the runs with a
    benchmark file); cpu_seconds_per_run: all its jobs' CPU seconds over its runs.
    """
    bench = pd.DataFrame([_read_benchmark(Path(p)) for p in benchmark_files])
    bench_cols = [*BENCH_COLUMNS.values(), "bench_cpu_seconds"]
    cols = list(COST)
    if not len(runs):
        return empty_table("cost")
    df = runs[
        [*RUN_KEYS, "cell", "device", "threads", "steps_per_second", "wall_seconds", "steps_done"]
    ].copy()
    df["seconds_per_step"] = 1.0 / df["steps_per_second"].astype(float)
    df["steps_done"] = df["steps_done"].astype(float)
    out = (
        df.groupby(["task", "cell", "variant", "length"], sort=True)
        .agg(
            device=("device", lambda s: ",".join(sorted({str(v) for v in s.dropna()}))),
            threads=("threads", "max"),
            runs=("seed", "size"),
            steps_per_second=("steps_per_second", "mean"),
            seconds_per_step=("seconds_per_step", "mean"),
            wall_seconds=("wall_seconds", "mean"),
            steps_done=("steps_done", "mean"),
        )
        .reset_index()
    )
    if len(bench):
        # only the benchmarks of runs in the table
        bench = _typed_keys(bench).merge(df[RUN_KEYS], on=RUN_KEYS, how="inner")
        jobs = (
            bench.groupby(JOB_KEYS, sort=True)
            .agg(
                jobs=("bench_seconds", "size"),
                cpu_total=("cpu_seconds", "sum"),
                **{c: (c, "mean") for c in bench_cols},
            )
            .reset_index()
        )
        out = out.merge(_typed_keys(jobs), on=JOB_KEYS, how="left")
        out["cpu_seconds_per_run"] = out["cpu_total"] / out["runs"]
        out["jobs"] = out["jobs"].fillna(0).astype("int64")
    else:
        for c in [*bench_cols, "cpu_seconds_per_run"]:
            out[c] = math.nan
        out["jobs"] = 0
    return _typed_keys(out[cols])
