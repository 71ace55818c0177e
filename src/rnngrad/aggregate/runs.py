"""Reading runs and probes: summaries and run files -> tables with the run keys.

A missing, truncated or malformed input raises an error that names its path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rnngrad.columns import (
    CURVE_COLUMNS,
    HORIZON_COLUMNS,
    PROFILE_COLUMNS,
    RUN_KEYS,
    RUNS,
    SPECTRA_COLUMNS,
    VARIANT,
    empty_table,
)

RUN_COLUMNS = list(RUNS)
VARIANT_FIELDS = list(VARIANT)
BENCH_GLOBS = ("*/T*/*/seed*.tsv",)  # under results/benchmarks/train: one per run


class InputError(ValueError):
    """An input file is truncated or malformed; the message names its path."""


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
        return _typed_keys(pd.DataFrame({c: pd.Series(dtype=float) for c in columns}))
    out = pd.concat(frames, ignore_index=True)
    return _typed_keys(out[[*columns, *(c for c in out.columns if c not in columns)]])


def runs_table(run_dirs: Iterable[str | Path]) -> pd.DataFrame:
    """One row per run from the summaries; the nested spec is kept as JSON text."""
    rows = []
    for run_dir in run_dirs:
        s = read_summary(run_dir)
        row = {k: v for k, v in s.items() if not isinstance(v, dict | list)}
        row["spec_json"] = json.dumps(s.get("spec"), sort_keys=True)
        rows.append(row)
    if not rows:
        return empty_table("runs").assign(spec_json=pd.Series(dtype=object))
    df = pd.DataFrame(rows)
    for c in RUN_COLUMNS:
        if c not in df.columns:
            df[c] = None
    df = df[[*RUN_COLUMNS, *(c for c in df.columns if c not in RUN_COLUMNS)]]
    for c, dtype in RUNS.items():
        if dtype in ("float64", "Int64"):
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(dtype)
        elif dtype == "boolean":
            df[c] = df[c].astype(dtype)
    df = _typed_keys(df)
    return df.sort_values(RUN_KEYS, ignore_index=True)


def _first(s: pd.Series):
    s = s.dropna()
    return s.iloc[0] if len(s) else None


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
