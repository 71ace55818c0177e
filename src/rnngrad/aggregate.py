"""Runs, probes and benchmarks -> tidy tables (pandas only; no torch, no Snakemake).

Every table has one row per observation and the run keys (task, length, variant,
seed) as columns, so figures and the report select with plain pandas. Tables are
written to `results/tables/{name}.parquet` with a `.csv` twin for people.

The decay measures (decay rate, horizon, the bound's share) are those of
`rnngrad.measures`, the one definition the probes and the figures use too. Statuses and
the success table rest on the held-out test metric (summary field test_metric); the
evaluation batch's final_metric stays in the runs table for transparency.

A missing, truncated or malformed input raises an error that names its path. A
diverged run is a result: it stays in every table with status "diverged".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rnngrad.columns import CURVE_COLUMNS, HORIZON_COLUMNS, PROFILE_COLUMNS, SPECTRA_COLUMNS
from rnngrad.config import climb_criterion
from rnngrad.io import atomic_path
from rnngrad.measures import HORIZON_RATIO, bound_summary, decay_rate, horizon
from rnngrad.stats import bootstrap_mean_ci, finite_values, wilson_interval
from rnngrad.sweep import critical_table
from rnngrad.verdicts import cell_verdict, meets, run_verdict

__all__ = [
    "TABLES",
    "RUN_KEYS",
    "HORIZON_RATIO",
    "InputError",
    "Inputs",
    "discover",
    "read_summary",
    "runs_table",
    "success_table",
    "curves_table",
    "init_profiles_table",
    "train_profiles_table",
    "decay_table",
    "spectra_table",
    "cost_table",
    "variants_table",
    "build_tables",
    "aggregate",
    "write_table",
    "read_table",
    "finite_values",
    "wilson_interval",
    "bootstrap_mean_ci",
]

TABLES = (
    "runs",
    "success",
    "curves",
    "init_profiles",
    "train_profiles",
    "decay",
    "spectra",
    "cost",
    "variants",
    "critical",
)
RUN_KEYS = ["task", "length", "variant", "seed"]
VARIANT_FIELDS = ["cell", "init", "constraint", "clip_norm", "hidden_size", "lr"]

RUN_COLUMNS = [
    *RUN_KEYS,
    *VARIANT_FIELDS,
    "status",
    "metric_name",
    "solve_threshold",
    "test_size",
    "test_metric",
    "test_loss",
    "test_loss_ratio",
    "stopped_early",
    "final_metric",
    "best_metric",
    "final_k",
    "final_loss",
    "baseline_loss",
    "loss_ratio",
    "steps_to_solve",
    "diverged_at",
    "steps_done",
    "wall_seconds",
    "steps_per_second",
    "device",
    "scan_reason",  # why a minGRU run on a CPU had no compiled kernel ("" when it had it)
    "threads",
    "torch_version",
    "git_commit",
    "config_hash",
]
BENCH_COLUMNS = {"s": "bench_seconds", "cpu_time": "cpu_seconds", "max_rss": "max_rss_mb"}
# Train jobs' benchmark files: one per job of all seeds of a task, length and variant
# (benchmarks/train/{task}/T{length}/{variant}.tsv, with the job's own CPU count beside
# it in {variant}.usage.json), or one per run (.../{variant}/seed{seed}.tsv, older grids).
_BENCH_JOB = re.compile(r"(?P<task>[^/]+)/T(?P<length>\d+)/(?P<variant>[^/]+)\.tsv$")
_BENCH_RUN = re.compile(
    r"(?P<task>[^/]+)/T(?P<length>\d+)/(?P<variant>[^/]+)/seed(?P<seed>\d+)\.tsv$"
)
BENCH_GLOBS = ("*/T*/*.tsv", "*/T*/*/seed*.tsv")  # under results/benchmarks/train


class InputError(ValueError):
    """An input file is truncated or malformed; the message names its path."""


# ----------------------------------------------------------------------------- inputs


@dataclass
class Inputs:
    """The input files of the aggregation, as found by `discover` or given by a workflow."""

    run_dirs: list[Path] = field(default_factory=list)
    probe_files: list[Path] = field(default_factory=list)
    benchmark_files: list[Path] = field(default_factory=list)


def discover(results_dir: str | Path) -> Inputs:
    """Find run folders (those with a summary.json), init probes and training benchmarks."""
    root = Path(results_dir)
    return Inputs(
        run_dirs=sorted(p.parent for p in (root / "runs").glob("*/T*/*/seed*/summary.json")),
        probe_files=sorted((root / "probes").glob("*/T*/*.parquet")),
        benchmark_files=sorted(
            p for pattern in BENCH_GLOBS for p in (root / "benchmarks" / "train").glob(pattern)
        ),
    )


def _require(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"missing input file: {path}")
    return path


def _read_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    try:
        df = pd.read_parquet(_require(Path(path)))
    except FileNotFoundError:
        raise
    except Exception as err:  # pyarrow raises several types for a truncated file
        raise InputError(f"cannot read {path}: {err}") from None
    if columns is not None:
        if len(df.columns) == 0:  # a run that never probed writes a frame without columns
            return pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise InputError(f"{path} lacks column(s) {missing}")
    return df


def read_summary(run_dir: str | Path) -> dict:
    """The run's summary.json as a dict; errors name the file."""
    path = _require(Path(run_dir) / "summary.json")
    try:
        summary = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read {path}: {err}") from None
    if not isinstance(summary, dict):
        raise InputError(f"{path}: expected a JSON object")
    missing = [k for k in [*RUN_KEYS, "status"] if k not in summary]
    if missing:
        raise InputError(f"{path} lacks key(s) {missing}")
    return summary


def _run_keys(run_dir: Path) -> dict:
    s = read_summary(run_dir)
    return {k: s[k] for k in RUN_KEYS}


def _with_keys(df: pd.DataFrame, keys: Mapping) -> pd.DataFrame:
    df = df.copy()
    for i, (k, v) in enumerate(keys.items()):
        df.insert(i, k, v)
    return df


def _typed_keys(df: pd.DataFrame) -> pd.DataFrame:
    for k in ("length", "seed"):
        if k in df.columns:
            df[k] = pd.to_numeric(df[k]).astype("int64")
    for k in ("task", "variant"):
        if k in df.columns:
            df[k] = df[k].astype(str)
    return df


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
    out = pd.concat(frames, ignore_index=True)
    return _typed_keys(out[[*columns, *(c for c in out.columns if c not in columns)]])


# ----------------------------------------------------------------------------- tables


def runs_table(run_dirs: Iterable[str | Path]) -> pd.DataFrame:
    """One row per run from the summaries; the nested spec is kept as JSON text."""
    rows = []
    for run_dir in run_dirs:
        s = read_summary(run_dir)
        row = {k: v for k, v in s.items() if not isinstance(v, dict | list)}
        row["spec_json"] = json.dumps(s.get("spec"), sort_keys=True)
        rows.append(row)
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in [*RUN_COLUMNS, "spec_json"]})
    df = pd.DataFrame(rows)
    for c in RUN_COLUMNS:
        if c not in df.columns:
            df[c] = None
    df = df[[*RUN_COLUMNS, *(c for c in df.columns if c not in RUN_COLUMNS)]]
    for c in (
        "clip_norm",
        "lr",
        "test_metric",
        "test_loss",
        "test_loss_ratio",
        "final_metric",
        "best_metric",
        "final_loss",
        "baseline_loss",
        "loss_ratio",
        "wall_seconds",
        "steps_per_second",
        "solve_threshold",
    ):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    for c in (
        "steps_to_solve",
        "diverged_at",
        "steps_done",
        "hidden_size",
        "threads",
        "final_k",
        "test_size",
    ):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
    df["stopped_early"] = df["stopped_early"].astype("boolean")
    df = _typed_keys(df)
    return df.sort_values(RUN_KEYS, ignore_index=True)


def _first(s: pd.Series):
    s = s.dropna()
    return s.iloc[0] if len(s) else None


SUCCESS_COLUMNS = [
    "task",
    "length",
    "variant",
    *VARIANT_FIELDS[:-1],
    "metric_name",
    "attempted",
    "seeds",
    "solved",
    "unsolved",
    "diverged",
    "stopped_early",
    "off_baseline",
    "verdict",
    "solved_rate",
    "solved_rate_ci_low",
    "solved_rate_ci_high",
    "n_metric",
    "test_metric_mean",
    "test_metric_ci_low",
    "test_metric_ci_high",
    "test_loss_ratio_mean",
    "test_loss_ratio_median",
    "steps_to_solve_median",
    "steps_done_median",
]


_COUNTS = ("seeds", "solved", "unsolved", "diverged", "stopped_early", "off_baseline", "n_metric")
_RATES = [c for c in SUCCESS_COLUMNS[SUCCESS_COLUMNS.index("solved_rate") :] if c not in _COUNTS]


def success_table(
    runs: pd.DataFrame, config: Mapping | None = None, level: float = 0.95
) -> pd.DataFrame:
    """Per task, length and variant: seeds, statuses, solved rate and test metric.

    Statuses come from the held-out test metric (see rnngrad.train). solved_rate has a
    Wilson interval; test_metric_mean (over seeds with a finite test metric, n_metric)
    a bootstrap percentile interval that cannot leave the metric's range (NaN with
    fewer than two seeds); test_loss_ratio_* are over finite ratios; steps_to_solve is
    over solved seeds that stopped early.

    With a config, every (task, length, variant) of its training grid
    (`rnngrad.config.train_grid`) has a row: one without runs has attempted False, 0
    seeds and NaN rates and metrics (the adaptive sweep never trained it).
    """
    rows = [
        _success_row(key, g, level)
        for key, g in runs.groupby(["task", "length", "variant"], sort=True)
    ]
    if config is not None:
        rows += _not_attempted(config, {(r["task"], r["length"], r["variant"]) for r in rows})
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in SUCCESS_COLUMNS})
    df = pd.DataFrame(rows)[SUCCESS_COLUMNS]
    df["clip_norm"] = pd.to_numeric(df["clip_norm"], errors="coerce").astype(float)
    df["hidden_size"] = pd.to_numeric(df["hidden_size"], errors="coerce").astype("Int64")
    df["attempted"] = df["attempted"].astype(bool)
    df = _typed_keys(df)
    return df.sort_values(["task", "length", "variant"], ignore_index=True)


def _success_row(key: tuple, g: pd.DataFrame, level: float) -> dict:
    task, length, variant = key
    status = g["status"]
    solved = status == "solved"
    metric = g["test_metric"].astype(float)
    metric = metric[np.isfinite(metric)]
    ratio = g["test_loss_ratio"].astype(float)
    ratio = ratio[np.isfinite(ratio)]
    early = g["stopped_early"].fillna(False).astype(bool)
    steps = g.loc[solved & early, "steps_to_solve"].dropna().astype(float)
    mean, lo, hi = bootstrap_mean_ci(metric, level)
    rate_lo, rate_hi = wilson_interval(int(solved.sum()), len(g), level)
    verdicts = [
        run_verdict(str(st), None if pd.isna(r) else float(r))
        for st, r in zip(status, g["test_loss_ratio"], strict=True)
    ]
    return {
        "task": task,
        "length": length,
        "variant": variant,
        **{f: _first(g[f]) for f in VARIANT_FIELDS[:-1]},
        "metric_name": _first(g["metric_name"]),
        "attempted": True,
        "seeds": len(g),
        "solved": int(solved.sum()),
        "unsolved": int((status == "unsolved").sum()),
        "diverged": int((status == "diverged").sum()),
        "stopped_early": int(early.sum()),
        "off_baseline": sum(meets(v, "off_baseline") for v in verdicts),
        "verdict": cell_verdict(verdicts),
        "solved_rate": float(solved.mean()),
        "solved_rate_ci_low": rate_lo,
        "solved_rate_ci_high": rate_hi,
        "n_metric": len(metric),
        "test_metric_mean": mean,
        "test_metric_ci_low": lo,
        "test_metric_ci_high": hi,
        "test_loss_ratio_mean": float(ratio.mean()) if len(ratio) else math.nan,
        "test_loss_ratio_median": float(ratio.median()) if len(ratio) else math.nan,
        "steps_to_solve_median": float(steps.median()) if len(steps) else math.nan,
        "steps_done_median": float(g["steps_done"].astype(float).median()),
    }


def _not_attempted(config: Mapping, seen: set) -> list[dict]:
    """Rows for the (task, length, variant) cells of the config's grid without runs."""
    from rnngrad import config as cfgmod  # torch-free; only needed with a config
    from rnngrad.specs import get_task

    specs = cfgmod.variant_specs(dict(config))
    cells = sorted({(p.task, p.length, p.variant) for p in cfgmod.train_grid(dict(config))})
    nan = math.nan
    rows = []
    for task, length, variant in cells:
        if (task, length, variant) in seen:
            continue
        spec = specs[variant]
        rows.append(
            {
                "task": task,
                "length": length,
                "variant": variant,
                **{f: getattr(spec, f) for f in VARIANT_FIELDS[:-1]},
                "metric_name": get_task(task).metric_name,
                "attempted": False,
                "verdict": "not attempted",
                **dict.fromkeys(_COUNTS, 0),
                **dict.fromkeys(_RATES, nan),
            }
        )
    return rows


def _run_files(run_dirs: Iterable[str | Path], name: str, columns: list[str]) -> pd.DataFrame:
    frames = []
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        keys = _run_keys(run_dir)
        frames.append(_with_keys(_read_parquet(run_dir / name, columns), keys))
    return _concat(frames, [*RUN_KEYS, *columns])


def curves_table(run_dirs: Iterable[str | Path]) -> pd.DataFrame:
    """Every run's training curve (curve.parquet) with the run keys."""
    return _run_files(run_dirs, "curve.parquet", list(CURVE_COLUMNS))


def train_profiles_table(run_dirs: Iterable[str | Path]) -> pd.DataFrame:
    """Every training-time gradient profile (gradients.parquet) with the run keys."""
    return _run_files(run_dirs, "gradients.parquet", ["probe_step", *PROFILE_COLUMNS])


def trained_profiles_table(run_dirs: Iterable[str | Path]) -> pd.DataFrame:
    """Every run's final model probed at the task's common length (horizon.parquet)."""
    return _run_files(run_dirs, "horizon.parquet", list(HORIZON_COLUMNS))


def spectra_table(run_dirs: Iterable[str | Path]) -> pd.DataFrame:
    """W_hh gate-block spectra over training (spectra.parquet) with the run keys."""
    return _run_files(run_dirs, "spectra.parquet", list(SPECTRA_COLUMNS))


def init_profiles_table(probe_files: Iterable[str | Path]) -> pd.DataFrame:
    """All gradient profiles at initialisation (results/probes/...parquet)."""
    cols = [*RUN_KEYS, *PROFILE_COLUMNS]
    return _concat([_read_parquet(Path(p), cols) for p in probe_files], cols)


def decay_table(
    init_profiles: pd.DataFrame,
    train_profiles: pd.DataFrame,
    trained_profiles: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Decay rate and horizon of every profile: phase 'init' per (task, length, variant,
    seed), phase 'train' per run and probe step (probe_step is <NA> at init), and phase
    'trained' per run: its final model probed at the task's common length (horizon.parquet).
    probe_length is the length of the probe's input: the run's own length but for
    'trained'."""
    rows = []
    trained = trained_profiles if trained_profiles is not None else pd.DataFrame()
    for phase, df, keys in (
        ("init", init_profiles, RUN_KEYS),
        ("train", train_profiles, [*RUN_KEYS, "probe_step"]),
        ("trained", trained, [*RUN_KEYS, "probe_step", "probe_length"]),
    ):
        if not len(df):
            continue
        for key, g in df.groupby(keys, sort=True):
            d = pd.to_numeric(g["distance"], errors="coerce").astype(float)
            gn = pd.to_numeric(g["grad_h"], errors="coerce").astype(float)
            points = d[(d >= 0) & np.isfinite(gn) & (gn > 0)]
            h, censored = horizon(g)
            start = g.loc[g["distance"] == 0, "grad_h"]
            named = dict(zip(keys, key, strict=True))
            rows.append(
                {
                    "phase": phase,
                    **named,
                    "probe_length": named.get("probe_length", named["length"]),
                    "decay_rate": decay_rate(g),
                    "horizon": h,
                    "horizon_censored": censored,
                    "max_distance": float(points.max()) if len(points) else math.nan,
                    "grad_h_start": float(start.iloc[0]) if len(start) else math.nan,
                    "n_points": len(points),
                    **bound_summary(g),
                }
            )
    cols = [
        "phase",
        *RUN_KEYS,
        "probe_step",
        "probe_length",
        "decay_rate",
        "horizon",
        "horizon_censored",
        "max_distance",
        "grad_h_start",
        "n_points",
        "bound_share",
        "bound_pairs",
    ]
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in cols})
    out = pd.DataFrame(rows)
    if "probe_step" not in out.columns:
        out["probe_step"] = None
    out["probe_step"] = pd.to_numeric(out["probe_step"], errors="coerce").astype("Int64")
    out["probe_length"] = pd.to_numeric(out["probe_length"], errors="coerce").astype("int64")
    out["horizon_censored"] = out["horizon_censored"].astype(bool)
    return _typed_keys(out[cols])


def _read_benchmark(path: Path) -> dict:
    """One benchmark file as a row: its job's keys, wall and CPU seconds, peak memory.

    Snakemake samples a job's CPU time, every 0.5 s for 15 s and then every 30 s, and
    keeps the last sample, so its `cpu_time` (kept as bench_cpu_seconds) misses up to 30 s
    at the end of a job. A job may write its own count (getrusage) beside the file, in
    `{name}.usage.json`, which misses only the interpreter's exit: cpu_seconds is the
    larger of the two lower bounds.
    """
    posix = Path(path).as_posix()
    m = _BENCH_RUN.search(posix) or _BENCH_JOB.search(posix)
    if m is None:
        raise InputError(
            f"{path}: benchmark path must end in {{task}}/T{{length}}/{{variant}}.tsv "
            "(a train job) or {task}/T{length}/{variant}/seed{seed}.tsv (one run)"
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
    row = {k: v for k, v in m.groupdict().items() if v is not None}
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
    """Speed and memory per task, cell, variant and length (one train job of all its seeds).

    From the summaries: runs, steps per second and wall seconds (means over seeds);
    from Snakemake's benchmark files, when given: per train job, its wall and CPU
    seconds (CPU from the job's own count where it wrote one, see `_read_benchmark`) and
    peak resident memory (MB), means over the cell's jobs (`jobs`: one when a job trains
    every seed, one per run in older grids); cpu_seconds_per_run: all its jobs' CPU
    seconds over its runs.
    """
    bench = pd.DataFrame([_read_benchmark(Path(p)) for p in benchmark_files])
    bench_cols = [*BENCH_COLUMNS.values(), "bench_cpu_seconds"]
    cols = [
        "task",
        "cell",
        "variant",
        "length",
        "device",
        "threads",
        "runs",
        "steps_per_second",
        "seconds_per_step",
        "wall_seconds",
        "steps_done",
        "jobs",
        *bench_cols,
        "cpu_seconds_per_run",
    ]
    if not len(runs):
        return pd.DataFrame({c: pd.Series(dtype=float) for c in cols})
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
        if "seed" in bench.columns:  # per-run files: only those of runs in the table
            per_run = _typed_keys(bench[bench["seed"].notna()].copy())
            keep = per_run.merge(df[RUN_KEYS], on=RUN_KEYS, how="inner").drop(columns="seed")
            bench = pd.concat([bench[bench["seed"].isna()].drop(columns="seed"), keep])
        bench = _typed_keys(bench.reset_index(drop=True))
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


def variants_table(config: Mapping | None = None, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per variant: cell, init, constraint, clip_norm, hidden_size, lr.

    From the config (its defaults filled in: init default, constraint none, no
    clipping, the top-level hidden_size, the training lr) when given, else from the
    runs. Column `trained` says whether the training grid includes the variant.
    """
    rows = {}
    if config and config.get("variants"):
        train = config.get("train") or {}
        trained = set(train.get("variants") or config["variants"])
        for name, v in config["variants"].items():
            rows[name] = {
                "variant": name,
                "cell": v.get("cell"),
                "init": v.get("init", "default"),
                "constraint": v.get("constraint", "none"),
                "clip_norm": v.get("clip_norm"),
                "hidden_size": v.get("hidden_size", config.get("hidden_size", 64)),
                "lr": v.get("lr") or train.get("lr"),
                "trained": name in trained,
            }
    elif runs is not None and len(runs):
        for name, g in runs.groupby("variant", sort=True):
            rows[name] = {"variant": name, **{f: _first(g[f]) for f in VARIANT_FIELDS}}
            rows[name]["trained"] = True
    cols = ["variant", *VARIANT_FIELDS, "trained"]
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in cols})
    df = pd.DataFrame([rows[k] for k in sorted(rows)])[cols]
    df["clip_norm"] = pd.to_numeric(df["clip_norm"], errors="coerce").astype(float)
    df["lr"] = pd.to_numeric(df["lr"], errors="coerce").astype(float)
    df["hidden_size"] = pd.to_numeric(df["hidden_size"], errors="coerce").astype("Int64")
    return df


def build_tables(
    run_dirs: Iterable[str | Path],
    probe_files: Iterable[str | Path] = (),
    benchmark_files: Iterable[str | Path] = (),
    config: Mapping | None = None,
) -> dict[str, pd.DataFrame]:
    """Every table of TABLES from the given inputs, by name."""
    run_dirs = [Path(p) for p in run_dirs]
    runs = runs_table(run_dirs)
    init = init_profiles_table(probe_files)
    train = train_profiles_table(run_dirs)
    success = success_table(runs, config)
    decay = decay_table(init, train, trained_profiles_table(run_dirs))
    criteria = (
        {t: climb_criterion(dict(config), t) for t in success["task"].unique()} if config else {}
    )
    tables = {
        "runs": runs,
        "success": success,
        "curves": curves_table(run_dirs),
        "init_profiles": init,
        "train_profiles": train,
        "decay": decay,
        "spectra": spectra_table(run_dirs),
        "cost": cost_table(runs, benchmark_files),
        "variants": variants_table(config, runs),
        "critical": critical_table(success, decay, runs, criteria),
    }
    assert tuple(tables) == TABLES
    return tables


def write_table(df: pd.DataFrame, path_without_ext: str | Path) -> tuple[Path, Path]:
    """Write `df` as `{path}.parquet` and a `{path}.csv` twin, each atomically."""
    stem = Path(path_without_ext)
    parquet, csv = stem.with_name(stem.name + ".parquet"), stem.with_name(stem.name + ".csv")
    with atomic_path(parquet) as tmp:
        df.to_parquet(tmp, index=False)
    with atomic_path(csv) as tmp:
        df.to_csv(tmp, index=False)
    return parquet, csv


def aggregate(
    results_dir: str | Path, tables_dir: str | Path, config: Mapping | None = None
) -> dict[str, pd.DataFrame]:
    """Discover the inputs under results_dir, build every table and write it to tables_dir."""
    inputs = discover(results_dir)
    tables = build_tables(inputs.run_dirs, inputs.probe_files, inputs.benchmark_files, config)
    for name, df in tables.items():
        write_table(df, Path(tables_dir) / name)
    return tables


def read_table(tables_dir: str | Path, name: str) -> pd.DataFrame:
    """Read `{tables_dir}/{name}.parquet`; errors name the file and the known tables."""
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; tables are {list(TABLES)}")
    return _read_parquet(Path(tables_dir) / f"{name}.parquet")
