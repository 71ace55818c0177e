"""Table builders: the runs -> success per cell, profiles -> decay, config -> variants.

The decay measures (decay rate, horizon, the bound's share) are those of
`rnngrad.measures`, the one definition the probes and the figures use too. Statuses and
the success table rest on the held-out test metric (summary field test_metric); the
evaluation batch's final_metric stays in the runs table for transparency.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from rnngrad.aggregate.runs import RUN_KEYS, VARIANT_FIELDS, _first, _typed_keys
from rnngrad.columns import DECAY, SUCCESS, VARIANTS, empty_table
from rnngrad.config import variant_specs
from rnngrad.measures import bound_summary, decay_rate, horizon
from rnngrad.stats import bootstrap_mean_ci, wilson_interval
from rnngrad.verdicts import cell_verdict, meets, run_verdict

SUCCESS_COLUMNS = list(SUCCESS)
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
        return empty_table("success")
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
    cols = list(DECAY)
    if not rows:
        return empty_table("decay")
    out = pd.DataFrame(rows)
    if "probe_step" not in out.columns:
        out["probe_step"] = None
    out["probe_step"] = pd.to_numeric(out["probe_step"], errors="coerce").astype("Int64")
    out["probe_length"] = pd.to_numeric(out["probe_length"], errors="coerce").astype("int64")
    out["horizon_censored"] = out["horizon_censored"].astype(bool)
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
        for name, v in variant_specs(config).items():
            rows[name] = {"variant": name, **{f: getattr(v, f) for f in VARIANT_FIELDS}}
            rows[name].update(lr=v.lr or train.get("lr"), trained=name in trained)
    elif runs is not None and len(runs):
        for name, g in runs.groupby("variant", sort=True):
            rows[name] = {"variant": name, **{f: _first(g[f]) for f in VARIANT_FIELDS}}
            rows[name]["trained"] = True
    if not rows:
        return empty_table("variants")
    df = pd.DataFrame([rows[k] for k in sorted(rows)])[list(VARIANTS)]
    df["clip_norm"] = pd.to_numeric(df["clip_norm"], errors="coerce").astype(float)
    df["lr"] = pd.to_numeric(df["lr"], errors="coerce").astype(float)
    df["hidden_size"] = pd.to_numeric(df["hidden_size"], errors="coerce").astype("Int64")
    return df
