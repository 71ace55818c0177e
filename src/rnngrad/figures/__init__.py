"""Figures of the report, from the tables of rnngrad.aggregate (matplotlib + seaborn).

One module per question: decay (how fast the gradient vanishes), success (which
variants learn which lengths; the critical length), training (loss and metric),
clipping, spectra, cost; `style` holds what they share. Each figure function takes
the tables it reads as DataFrames (keyword arguments named like the tables) and a
`styles` mapping, and returns a matplotlib Figure; FIGURES is the explicit registry
name -> (function, tables), which the workflow reads to wire one rule per figure.
A figure whose data is absent from the grid still draws a note saying what is missing.

`make_figure(name, tables_dir, out_stem, config)` reads the tables, draws, and writes
`{out_stem}.png` and `.svg` atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from rnngrad.aggregate import variants_table
from rnngrad.figures import clipping, cost, decay, spectra, success, training
from rnngrad.figures.style import save, variant_palette, variant_styles

__all__ = ["FIGURES", "FIGURE_TABLES", "make_figure", "draw", "variant_palette", "variant_styles"]

# name -> (function, the tables it reads); the report shows them in this order
FIGURES: dict[str, tuple[Callable[..., Figure], tuple[str, ...]]] = {
    "decay_init": (decay.decay_init, ("init_profiles", "variants")),
    "decay_rate": (decay.decay_rate, ("decay",)),
    "decay_train": (decay.decay_train, ("train_profiles", "variants")),
    "success": (success.success, ("success",)),
    "critical": (success.critical, ("critical",)),
    "loss_ratio": (training.loss_ratio, ("runs",)),
    "learning_curves": (training.learning_curves, ("curves", "runs")),
    "grad_norm": (clipping.grad_norm, ("curves", "runs")),
    "spectra": (spectra.spectra, ("spectra",)),
    "cost": (cost.cost, ("cost",)),
}
# The tables each figure reads: its inputs in the workflow.
FIGURE_TABLES: dict[str, tuple[str, ...]] = {name: tables for name, (_, tables) in FIGURES.items()}


def _read(tables_dir: Path, name: str) -> pd.DataFrame:
    path = Path(tables_dir) / f"{name}.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"missing table {path} (run the aggregate step first)")
    return pd.read_parquet(path)


def draw(name: str, tables: Mapping[str, pd.DataFrame], config: Mapping | None = None) -> Figure:
    """Figure `name` from tables given as DataFrames (those of FIGURE_TABLES[name]).

    The config's variant names fix the styles, and its variants replace the `variants`
    table; without a config the tables' names do.
    """
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; figures are {sorted(FIGURES)}")
    fn, needed = FIGURES[name]
    tables = {t: tables[t] for t in needed}
    if "variants" in tables and config and config.get("variants"):
        tables["variants"] = variants_table(config)
    names = set(config.get("variants") or {}) if config else set()
    for df in tables.values():
        if "variant" in df.columns:
            names |= set(df["variant"].astype(str))
    return fn(**tables, styles=variant_styles(names))


def make_figure(
    name: str, tables_dir: str | Path, out_stem: str | Path, config: Mapping | None = None
) -> list[Path]:
    """Draw figure `name` from the tables in tables_dir; write `{out_stem}.png` and `.svg`.

    Args:
        name: a key of FIGURES.
        tables_dir: folder of the aggregated tables (`{table}.parquet`).
        out_stem: output path without extension.
        config: the experiment config (see `draw`).

    Returns:
        The paths written (png, svg).

    Raises:
        ValueError: unknown figure name (the message lists the names).
        FileNotFoundError: a table the figure needs is missing (names its path).
    """
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; figures are {sorted(FIGURES)}")
    tables = {t: _read(Path(tables_dir), t) for t in FIGURE_TABLES[name]}
    fig = draw(name, tables, config)
    Path(out_stem).parent.mkdir(parents=True, exist_ok=True)
    return save(fig, out_stem)
