"""Runs, probes and benchmarks -> tidy tables (pandas only; no torch, no Snakemake).

Every table has one row per observation and the run keys (task, length, variant,
seed) as columns, so figures and the report select with plain pandas. Tables are
written to `results/tables/{name}.parquet` with a `.csv` twin for people.

The decay measures repeat the definitions of `rnngrad.probes` in NumPy, because
the analysis layer must not import torch:

- decay rate: least-squares slope of log10 ||dL/dh_t|| against distance, over the
  rows with distance >= 0 and a positive norm (Pascanu et al. 2013 motivate the
  exponential model: the norm decays like a product of Jacobian norms);
- horizon: the largest distance at which the norm is still at least 1e-3 of its
  value at distance 0; censored when the norm never fell below that.

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

from rnngrad.columns import CURVE_COLUMNS, PROFILE_COLUMNS, SPECTRA_COLUMNS
from rnngrad.io import atomic_path

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
    "decay_rate",
    "horizon",
    "horizon_censored",
    "mean_ci",
    "t_quantile",
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
)
RUN_KEYS = ["task", "length", "variant", "seed"]
HORIZON_RATIO = 1e-3  # the horizon is where ||dL/dh_t|| falls below this fraction of its start
VARIANT_FIELDS = ["cell", "init", "constraint", "clip_norm", "hidden_size", "lr"]

RUN_COLUMNS = [
    *RUN_KEYS,
    *VARIANT_FIELDS,
    "status",
    "metric_name",
    "solve_threshold",
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
    "threads",
    "torch_version",
    "git_commit",
    "config_hash",
]
BENCH_COLUMNS = {"s": "bench_seconds", "cpu_time": "cpu_seconds", "max_rss": "max_rss_mb"}
_BENCH_PATH = re.compile(
    r"(?P<task>[^/]+)/T(?P<length>\d+)/(?P<variant>[^/]+)/seed(?P<seed>\d+)\.tsv$"
)


class InputError(ValueError):
    """An input file is truncated or malformed; the message names its path."""


# --------------------------------------------------------------------- decay measures


def _profile_points(profile: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    d = pd.to_numeric(profile["distance"], errors="coerce").to_numpy(float)
    g = pd.to_numeric(profile["grad_h"], errors="coerce").to_numpy(float)
    keep = np.isfinite(d) & np.isfinite(g) & (d >= 0) & (g > 0)
    order = np.argsort(d[keep], kind="stable")
    return d[keep][order], g[keep][order]


def decay_rate(profile: pd.DataFrame) -> float:
    """Slope of log10 grad_h against distance (per step); NaN with < 2 distinct distances.

    A profile that decays like a * b**distance has rate log10(b) (negative when the
    gradient vanishes, positive when it explodes).

    Example:
        >>> p = pd.DataFrame({"distance": range(5), "grad_h": [0.5**k for k in range(5)]})
        >>> round(decay_rate(p), 4)
        -0.301
    """
    d, g = _profile_points(profile)
    if np.unique(d).size < 2:
        return math.nan
    slope, _ = np.polyfit(d, np.log10(g), 1)
    return float(slope)


def _horizon(profile: pd.DataFrame, ratio: float) -> tuple[float, bool]:
    # As rnngrad.probes: over rows with distance >= 0; a missing or non-finite norm
    # counts as fallen; censored when no row fell below the threshold.
    d = pd.to_numeric(profile["distance"], errors="coerce").to_numpy(float)
    g = pd.to_numeric(profile["grad_h"], errors="coerce").to_numpy(float)
    ok = np.isfinite(d) & (d >= 0)
    d, g = d[ok], g[ok]
    start = g[d == 0]
    if start.size == 0 or not (np.isfinite(start[0]) and start[0] > 0):
        return math.nan, False
    with np.errstate(invalid="ignore"):
        still = g >= ratio * start[0]  # NaN compares False
    return float(d[still].max()), bool(still.all())


def horizon(profile: pd.DataFrame, ratio: float = HORIZON_RATIO) -> float:
    """Largest distance at which grad_h >= ratio * grad_h at distance 0 (NaN without one).

    When the norm never fell below the threshold the horizon is censored: the true
    one is at least this long (see `horizon_censored`).
    """
    return _horizon(profile, ratio)[0]


def horizon_censored(profile: pd.DataFrame, ratio: float = HORIZON_RATIO) -> bool:
    """True when the norm never fell below ratio of its start within the probed distances."""
    return _horizon(profile, ratio)[1]


# ------------------------------------------------------------------------- statistics


def _t_cdf(x: float, df: float) -> float:
    # Student t CDF through the regularised incomplete beta function.
    if x == 0:
        return 0.5
    ib = _betainc(df / 2.0, 0.5, df / (df + x * x))
    return 1.0 - 0.5 * ib if x > 0 else 0.5 * ib


def _betainc(a: float, b: float, x: float) -> float:
    # Regularised incomplete beta I_x(a, b) by Lentz's continued fraction.
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    front = math.exp(lbeta + a * math.log(x) + b * math.log1p(-x))
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _betainc(b, a, 1.0 - x)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    f = d
    for m in range(1, 300):
        for num in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            f *= c * d
        if abs(c * d - 1.0) < 1e-14:
            break
    return front * f / a


def t_quantile(p: float, df: float) -> float:
    """Quantile of Student's t distribution (no SciPy): t_quantile(0.975, 4) ~ 2.776."""
    if not 0 < p < 1 or not df > 0:
        raise ValueError(f"need 0 < p < 1 and df > 0, got p={p}, df={df}")
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    lo, hi = -1e3, 1e3
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _t_cdf(mid, df) < p else (lo, mid)
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


def mean_ci(values: Iterable[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and t-interval of the finite values; NaN bounds with fewer than two.

    Example:
        >>> m, lo, hi = mean_ci([1.0, 2.0, 3.0])
        >>> m, round(hi - m, 3)
        (2.0, 2.484)
    """
    x = np.asarray([v for v in values if v is not None], dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    half = t_quantile(0.5 + level / 2, x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, mean - half, mean + half


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
        benchmark_files=sorted((root / "benchmarks" / "train").glob("*/T*/*/seed*.tsv")),
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
    for c in ("steps_to_solve", "diverged_at", "steps_done", "hidden_size", "threads", "final_k"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
    df = _typed_keys(df)
    return df.sort_values(RUN_KEYS, ignore_index=True)


def _first(s: pd.Series):
    s = s.dropna()
    return s.iloc[0] if len(s) else None


def success_table(runs: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per task, variant and length: seeds, solved rate, final metric mean and CI, ...

    The final metric's interval is a t-interval over the seeds with a final metric
    (NaN with fewer than two); loss_ratio_mean is over runs with a finite ratio;
    steps_to_solve_median is over solved seeds (NaN when none solved).
    """
    cols = [
        "task",
        "length",
        "variant",
        *VARIANT_FIELDS[:-1],
        "metric_name",
        "seeds",
        "solved",
        "unsolved",
        "diverged",
        "solved_rate",
        "n_metric",
        "final_metric_mean",
        "final_metric_ci_low",
        "final_metric_ci_high",
        "loss_ratio_mean",
        "loss_ratio_median",
        "steps_to_solve_median",
        "steps_done_median",
    ]
    rows = []
    for (task, length, variant), g in runs.groupby(["task", "length", "variant"], sort=True):
        mean, lo, hi = mean_ci(g["final_metric"], level)
        ratio = g["loss_ratio"].astype(float)
        ratio = ratio[np.isfinite(ratio)]
        solved = g["status"] == "solved"
        steps = g.loc[solved, "steps_to_solve"].dropna().astype(float)
        rows.append(
            {
                "task": task,
                "length": length,
                "variant": variant,
                **{f: _first(g[f]) for f in VARIANT_FIELDS[:-1]},
                "metric_name": _first(g["metric_name"]),
                "seeds": len(g),
                "solved": int(solved.sum()),
                "unsolved": int((g["status"] == "unsolved").sum()),
                "diverged": int((g["status"] == "diverged").sum()),
                "solved_rate": float(solved.mean()),
                "n_metric": int(np.isfinite(g["final_metric"].astype(float)).sum()),
                "final_metric_mean": mean,
                "final_metric_ci_low": lo,
                "final_metric_ci_high": hi,
                "loss_ratio_mean": float(ratio.mean()) if len(ratio) else math.nan,
                "loss_ratio_median": float(ratio.median()) if len(ratio) else math.nan,
                "steps_to_solve_median": float(steps.median()) if len(steps) else math.nan,
                "steps_done_median": float(g["steps_done"].astype(float).median()),
            }
        )
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in cols})
    df = pd.DataFrame(rows)[cols]
    df["clip_norm"] = pd.to_numeric(df["clip_norm"], errors="coerce").astype(float)
    df["hidden_size"] = pd.to_numeric(df["hidden_size"], errors="coerce").astype("Int64")
    return _typed_keys(df)


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


def spectra_table(run_dirs: Iterable[str | Path]) -> pd.DataFrame:
    """W_hh gate-block spectra over training (spectra.parquet) with the run keys."""
    return _run_files(run_dirs, "spectra.parquet", list(SPECTRA_COLUMNS))


def init_profiles_table(probe_files: Iterable[str | Path]) -> pd.DataFrame:
    """All gradient profiles at initialisation (results/probes/...parquet)."""
    cols = [*RUN_KEYS, *PROFILE_COLUMNS]
    return _concat([_read_parquet(Path(p), cols) for p in probe_files], cols)


def decay_table(init_profiles: pd.DataFrame, train_profiles: pd.DataFrame) -> pd.DataFrame:
    """Decay rate and horizon of every profile: phase 'init' per (task, length, variant,
    seed), phase 'train' per run and probe step (probe_step is <NA> at init)."""
    rows = []
    for phase, df, keys in (
        ("init", init_profiles, RUN_KEYS),
        ("train", train_profiles, [*RUN_KEYS, "probe_step"]),
    ):
        if not len(df):
            continue
        for key, g in df.groupby(keys, sort=True):
            d, gn = _profile_points(g)
            h, censored = _horizon(g, HORIZON_RATIO)
            start = g.loc[g["distance"] == 0, "grad_h"]
            rows.append(
                {
                    "phase": phase,
                    **dict(zip(keys, key, strict=True)),
                    "decay_rate": decay_rate(g),
                    "horizon": h,
                    "horizon_censored": censored,
                    "max_distance": float(d.max()) if d.size else math.nan,
                    "grad_h_start": float(start.iloc[0]) if len(start) else math.nan,
                    "n_points": int(d.size),
                }
            )
    cols = [
        "phase",
        *RUN_KEYS,
        "probe_step",
        "decay_rate",
        "horizon",
        "horizon_censored",
        "max_distance",
        "grad_h_start",
        "n_points",
    ]
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in cols})
    out = pd.DataFrame(rows)
    if "probe_step" not in out.columns:
        out["probe_step"] = None
    out["probe_step"] = pd.to_numeric(out["probe_step"], errors="coerce").astype("Int64")
    out["horizon_censored"] = out["horizon_censored"].astype(bool)
    return _typed_keys(out[cols])


def _read_benchmark(path: Path) -> dict:
    m = _BENCH_PATH.search(Path(path).as_posix())
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
    row = {k: m[k] for k in RUN_KEYS}
    for src, dst in BENCH_COLUMNS.items():
        row[dst] = float(pd.to_numeric(df[src], errors="coerce").mean())
    return row


def cost_table(runs: pd.DataFrame, benchmark_files: Iterable[str | Path] = ()) -> pd.DataFrame:
    """Speed and memory per task, cell, variant and length.

    From the summaries: steps per second and wall seconds (means over seeds); from
    Snakemake's benchmark files, when given: wall and CPU seconds of the whole job
    and the peak resident memory (MB).
    """
    bench = pd.DataFrame([_read_benchmark(Path(p)) for p in benchmark_files])
    bench_cols = list(BENCH_COLUMNS.values())
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
        *bench_cols,
    ]
    if not len(runs):
        return pd.DataFrame({c: pd.Series(dtype=float) for c in cols})
    df = runs[
        [*RUN_KEYS, "cell", "device", "threads", "steps_per_second", "wall_seconds", "steps_done"]
    ].copy()
    if len(bench):
        df = df.merge(_typed_keys(bench), on=RUN_KEYS, how="left")
    else:
        for c in bench_cols:
            df[c] = math.nan
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
            **{c: (c, "mean") for c in bench_cols},
        )
        .reset_index()
    )
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
    tables = {
        "runs": runs,
        "success": success_table(runs),
        "curves": curves_table(run_dirs),
        "init_profiles": init,
        "train_profiles": train,
        "decay": decay_table(init, train),
        "spectra": spectra_table(run_dirs),
        "cost": cost_table(runs, benchmark_files),
        "variants": variants_table(config, runs),
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
