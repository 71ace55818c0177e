"""Runs, probes and benchmarks -> tidy tables (pandas only; no torch, no Snakemake).

Every table has one row per observation and the run keys (task, length, variant,
seed) as columns, so figures and the report select with plain pandas. Tables are
written to `results/tables/{name}.parquet` with a `.csv` twin for people.

- runs: reading run folders and init probes (`discover`, `runs_table`, the run files);
- cost: the benchmark files and `cost_table`;
- builders: `success_table`, `decay_table`, `variants_table`.

A missing, truncated or malformed input raises an error that names its path. A
diverged run is a result: it stays in every table with status "diverged".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from rnngrad.aggregate.builders import decay_table, success_table, variants_table
from rnngrad.aggregate.cost import cost_table
from rnngrad.aggregate.runs import (
    RUN_KEYS,
    InputError,
    Inputs,
    _read_parquet,
    curves_table,
    discover,
    init_profiles_table,
    read_summary,
    runs_table,
    spectra_table,
    train_profiles_table,
    trained_profiles_table,
)
from rnngrad.columns import TABLE_COLUMNS, check_table
from rnngrad.config import climb_criterion
from rnngrad.io import atomic_path
from rnngrad.measures import HORIZON_RATIO
from rnngrad.stats import bootstrap_mean_ci, finite_values, wilson_interval
from rnngrad.sweep import critical_table

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

TABLES = tuple(TABLE_COLUMNS)  # declared in rnngrad.columns, with their columns


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
    """Write table `df` as `{path}.parquet` and a `{path}.csv` twin, each atomically.

    The file's name is the table's: its columns and dtypes must be those declared in
    rnngrad.columns (ValueError otherwise, and nothing is written).
    """
    stem = Path(path_without_ext)
    check_table(stem.name, df)
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
