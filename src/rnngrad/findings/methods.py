"""What the report's Methods section describes, from the config and the tables: the
tables themselves (loaded once), the resolved config, and the tasks, variants and grid
as small frames."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import yaml

from rnngrad.aggregate import TABLES, variants_table
from rnngrad.columns import empty_table
from rnngrad.findings.outcomes import budget
from rnngrad.specs import TASKS

__all__ = [
    "load_tables",
    "resolve_config",
    "tasks_table",
    "variant_table",
    "grid_table",
]

TASK_TEXT = {
    "adding": (
        "Hochreiter & Schmidhuber 1997; Le et al. 2015",
        "sum of the two marked values among T uniform values, read at the last step",
        "MSE at the last step",
    ),
    "copy": (
        "Arjovsky et al. 2016",
        "reproduce ten symbols after T - 1 blanks and a delimiter (T + 20 steps)",
        "cross-entropy over all positions",
    ),
}


def load_tables(tables_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Every table of rnngrad.aggregate.TABLES from `{tables_dir}/{name}.parquet`; the
    table without rows (its declared columns) for one that is absent."""
    out = {}
    for name in TABLES:
        path = Path(tables_dir) / f"{name}.parquet"
        out[name] = pd.read_parquet(path) if path.is_file() else empty_table(name)
    return out


def _merged(base: dict, over: Mapping) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = (
            _merged(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
        )
    return out


def resolve_config(config) -> dict:
    """The config as a mapping: a mapping itself, or a path or list of paths merged in
    order (as Snakemake merges --configfile), checked and defaulted when it validates."""
    if isinstance(config, Mapping):
        cfg = dict(config)
    else:
        paths = config if isinstance(config, Sequence) and not isinstance(config, str) else [config]
        cfg = {}
        for p in (Path(p) for p in paths if p):
            if p.is_file():
                cfg = _merged(cfg, yaml.safe_load(p.read_text()) or {})
    if not cfg:
        return {}
    from rnngrad.config import ConfigError, check_config

    try:
        return check_config(cfg)
    except ConfigError:  # an older or partial config: describe it as it is
        return cfg


def tasks_table(config: Mapping, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per task of the config (trained or probed): source, what the model must
    do, loss, metric, when it counts as solved, and the baseline loss by length (from
    the runs: the loss of the best input-blind predictor, rnngrad.tasks.baseline_loss)."""
    r = runs
    solve = ((config or {}).get("train") or {}).get("solve") or {}
    names = set(r["task"].dropna())
    for section in ("train", "probes"):
        names |= set(((config or {}).get(section) or {}).get("tasks") or {})
    rows = []
    for task in sorted(names):
        spec = TASKS.get(task)
        source, what, loss = TASK_TEXT.get(task, ("", "see rnngrad.tasks", ""))
        threshold = solve.get(task, spec.solve_threshold if spec else None)
        if spec is None or threshold is None:
            when = "n/a"
        else:
            when = f"{spec.metric_name} {'≥' if spec.higher_is_better else '<'} {threshold:g}"
        base = r[r["task"] == task].groupby("length")["baseline_loss"].first()
        rows.append(
            {
                "task": task,
                "source": source,
                "the model must": what,
                "loss": loss,
                "solved when (test batch)": when,
                "baseline loss": ", ".join(f"T={k}: {v:.4g}" for k, v in base.items())
                or "not trained",
            }
        )
    return pd.DataFrame(rows)


def variant_table(config: Mapping, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """The variants (cell, init, constraint, clip_norm, hidden_size, lr, trained): the
    config's when it has any, else the runs'."""
    return variants_table(config if (config or {}).get("variants") else None, runs)


def _steps_text(per_length: dict | None) -> str:
    if not per_length:
        return "–"
    values = list(per_length.values())
    return str(values[0]) if len(set(values)) == 1 else ", ".join(map(str, values))


def grid_table(config: Mapping) -> pd.DataFrame:
    """The grid: per stage (train, probes) and task, the lengths, variants, seeds, step
    budget (per task) and batch size."""
    cfg = config or {}
    b = budget(cfg)
    rows = []
    for section in ("train", "probes"):
        c = cfg.get(section) or {}
        seeds = c.get("seeds")
        n_seeds = len(seeds) if isinstance(seeds, list) else seeds
        for task, lengths in (c.get("tasks") or {}).items():
            rows.append(
                {
                    "stage": section,
                    "task": task,
                    "lengths T": ", ".join(str(x) for x in lengths),
                    "variants": len(c.get("variants") or cfg.get("variants") or {}),
                    "seeds": n_seeds,
                    "max steps": _steps_text(b.steps.get(task)) if section == "train" else "–",
                    "batch size": c.get("batch_size"),
                }
            )
    return pd.DataFrame(rows)
