"""Column names of the files and tables rnngrad writes, declared once.

The run files' columns are shared by their writers (train, probes) and their torch-free
readers (aggregate), so the two can never drift apart. Each table of rnngrad.aggregate
declares its columns and their dtypes here; `check_table` holds a table to them when it
is written, and the findings read them without guards.
"""

from __future__ import annotations

import pandas as pd
from pandas.api import types

__all__ = [
    "RUN_FILES",
    "PROFILE_COLUMNS",
    "HORIZON_COLUMNS",
    "CURVE_COLUMNS",
    "SPECTRA_COLUMNS",
    "RUN_KEYS",
    "TABLE_COLUMNS",
    "check_table",
    "empty_table",
]

# The files of one training run (results/runs/.../seed{seed}/); summary.json is written last
RUN_FILES = (
    "summary.json",
    "curve.parquet",
    "gradients.parquet",
    "spectra.parquet",
    "horizon.parquet",
)

# gradients.parquet / init probes: one row per time step t (see rnngrad.probes)
PROFILE_COLUMNS = (
    "t",
    "distance",
    "grad_h",
    "grad_h_q1",
    "grad_h_q3",
    "grad_c",
    "grad_c_q1",
    "grad_c_q3",
    "jac_norm",
    "bound",
    "bound_holds",
    "tightness",
    "tightness_q90",
    "bound_examples",
)
# horizon.parquet: the final model's profile at the task's common length (probe_length)
HORIZON_COLUMNS = ("probe_step", "probe_length", *PROFILE_COLUMNS)
# curve.parquet: one row per training step (see rnngrad.train)
CURVE_COLUMNS = ("step", "loss", "metric", "eval_loss", "grad_norm", "clipped", "elapsed")
# spectra.parquet: one row per probe step and gate block of W_hh
SPECTRA_COLUMNS = ("probe_step", "gate", "spectral_norm", "spectral_radius")

# ------------------------------------------------------------------------------ tables
# Column -> dtype, in the table's order. "int64" / "Int64" (nullable) hold integers,
# "float64" floats, "bool" / "boolean" truth values, "str" text (or None); "number" is
# an integer column that a NaN turns into floats; None is not checked.

KEYS = {"task": "str", "length": "int64", "variant": "str", "seed": "int64"}
RUN_KEYS = list(KEYS)
VARIANT = {
    "cell": "str",
    "init": "str",
    "constraint": "str",
    "clip_norm": "float64",
    "hidden_size": "Int64",
    "lr": "float64",
}

# runs: one row per run from its summary.json; the summary's other flat fields follow
RUNS = {
    **KEYS,
    **VARIANT,
    "status": "str",
    "metric_name": "str",
    "solve_threshold": "float64",
    "test_size": "Int64",
    "test_metric": "float64",
    "test_loss": "float64",
    "test_loss_ratio": "float64",
    "stopped_early": "boolean",
    "final_metric": "float64",
    "best_metric": "float64",
    "final_k": "Int64",
    "final_loss": "float64",
    "baseline_loss": "float64",
    "loss_ratio": "float64",
    "steps_to_solve": "Int64",
    "diverged_at": "Int64",
    "steps_done": "Int64",
    "wall_seconds": "float64",
    "steps_per_second": "float64",
    "device": "str",
    "scan_reason": "str",  # why a minGRU run on a CPU had no compiled kernel ("" when it had it)
    "threads": "Int64",
    "torch_version": "str",
    "git_commit": "str",
    "config_hash": "str",
}

# success: one row per (task, length, variant) of the training grid
SUCCESS = {
    "task": "str",
    "length": "int64",
    "variant": "str",
    **{c: VARIANT[c] for c in VARIANT if c != "lr"},
    "metric_name": "str",
    "attempted": "bool",
    "seeds": "int64",
    "solved": "int64",
    "unsolved": "int64",
    "diverged": "int64",
    "stopped_early": "int64",
    "off_baseline": "int64",
    "verdict": "str",
    "solved_rate": "float64",
    "solved_rate_ci_low": "float64",
    "solved_rate_ci_high": "float64",
    "n_metric": "int64",
    "test_metric_mean": "float64",
    "test_metric_ci_low": "float64",
    "test_metric_ci_high": "float64",
    "test_loss_ratio_mean": "float64",
    "test_loss_ratio_median": "float64",
    "steps_to_solve_median": "float64",
    "steps_done_median": "float64",
}

# decay: one row per profile (phase init, train or trained)
DECAY = {
    "phase": "str",
    **KEYS,
    "probe_step": "Int64",
    "probe_length": "int64",
    "decay_rate": "float64",
    "horizon": "number",
    "horizon_censored": "bool",
    "max_distance": "float64",
    "grad_h_start": "float64",
    "n_points": "int64",
    "bound_share": "float64",
    "bound_pairs": "number",
}

# cost: one row per (task, cell, variant, length) that was trained
COST = {
    "task": "str",
    "cell": "str",
    "variant": "str",
    "length": "int64",
    "device": "str",
    "threads": "number",
    "runs": "int64",
    "steps_per_second": "float64",
    "seconds_per_step": "float64",
    "wall_seconds": "float64",
    "steps_done": "float64",
    "jobs": "int64",
    "bench_seconds": "float64",
    "cpu_seconds": "float64",
    "max_rss_mb": "float64",
    "bench_cpu_seconds": "float64",
    "cpu_seconds_per_run": "float64",
}

VARIANTS = {"variant": "str", **VARIANT, "trained": "bool"}

# critical: one row per (task, variant); see rnngrad.sweep.critical_table
CRITICAL = {
    "task": "str",
    "variant": "str",
    "cell": "str",
    "criterion": "str",
    "lengths": "str",
    "rungs": "str",
    "longest_attempted": "float64",
    "critical_length": "float64",
    "censored": "bool",
    "first_failure": "float64",
    "seeds": "int64",
    "seeds_at_critical": "int64",
    "seeds_at_failure": "int64",
    "seed_critical_min": "float64",
    "seed_critical_max": "float64",
    **{
        f"horizon_{phase}_{c}": "float64"
        for phase, extra in (("init", ()), ("final", ("from",)))
        for c in ("length", *extra, "median", "q1", "q3", "censored")
    },
}


def _untyped(columns) -> dict:
    return {**KEYS, **dict.fromkeys(columns)}


TABLE_COLUMNS = {
    "runs": RUNS,
    "success": SUCCESS,
    "curves": _untyped(CURVE_COLUMNS),
    "init_profiles": _untyped(PROFILE_COLUMNS),
    "train_profiles": _untyped(("probe_step", *PROFILE_COLUMNS)),
    "decay": DECAY,
    "spectra": _untyped(SPECTRA_COLUMNS),
    "cost": COST,
    "variants": VARIANTS,
    "critical": CRITICAL,
}
# tables that keep the further columns of their inputs after the declared ones
OPEN_TABLES = {"runs", "curves", "init_profiles", "train_profiles", "spectra"}

_KINDS = {
    "int64": types.is_integer_dtype,
    "Int64": types.is_integer_dtype,
    "float64": types.is_float_dtype,
    "number": types.is_numeric_dtype,
    "bool": types.is_bool_dtype,
    "boolean": types.is_bool_dtype,
    "str": lambda t: types.is_string_dtype(t) or types.is_object_dtype(t),
}
_EMPTY = {"number": "float64", "str": "object", None: "object"}


def check_table(name: str, df: pd.DataFrame) -> None:
    """Raise ValueError unless `df` has table `name`'s declared columns, in order and of
    their dtypes (further columns only where the table keeps its inputs' columns)."""
    if name not in TABLE_COLUMNS:
        raise ValueError(f"unknown table {name!r}; tables are {list(TABLE_COLUMNS)}")
    declared = TABLE_COLUMNS[name]
    cols = list(df.columns)
    head = cols[: len(declared)] if name in OPEN_TABLES else cols
    if head != list(declared):
        missing = [c for c in declared if c not in cols]
        extra = [c for c in head if c not in declared]
        raise ValueError(
            f"table {name}: columns {cols} are not the declared {list(declared)} "
            f"(missing {missing}, unexpected {extra})"
        )
    wrong = {
        c: str(df[c].dtype)
        for c, dtype in declared.items()
        if dtype is not None and not _KINDS[dtype](df[c].dtype)
    }
    if wrong:
        raise ValueError(f"table {name}: columns of the wrong dtype {wrong} (declared {declared})")


def empty_table(name: str) -> pd.DataFrame:
    """Table `name` without rows: its declared columns and dtypes."""
    return pd.DataFrame(
        {c: pd.Series(dtype=_EMPTY.get(t, t)) for c, t in TABLE_COLUMNS[name].items()}
    )
