"""What every figure shares: the theme, a variant's colour, line style and marker, the
grouping of cells into rows, and saving to PNG and SVG without pyplot.

A variant has one style in every figure: `variant_styles` derives it from the sorted
variant names of the config, so the same config gives a variant the same look
everywhere. Figures are built on a bare matplotlib Figure (no pyplot), so drawing one
changes no global state; saving to .png renders with Agg.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from rnngrad.findings._common import at_longest  # one definition, shared with the findings
from rnngrad.io import atomic_path
from rnngrad.measures import HORIZON_RATIO

__all__ = [
    "HORIZON_RATIO",
    "CELL_GROUPS",
    "GROUP_ORDER",
    "variant_palette",
    "variant_styles",
    "styles_for",
    "cell_group",
    "theme",
    "subplots",
    "save",
    "note",
    "empty_figure",
    "legend_handles",
    "lengths_axis",
    "log_if_wide",
    "at_longest",
    "at_longest_per_variant",
    "GRAD_LABEL",
    "DIST_LABEL",
    "LENGTH_LABEL",
]

LINESTYLES = ["-", "--", ":", "-."]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p", "d"]
DIAGONAL = "diagonal (LRU, minGRU, IndRNN)"
CELL_GROUPS = {
    "rnn_tanh": "vanilla RNN",
    "rnn_relu": "vanilla RNN",
    "lstm": "LSTM",
    "gru": "GRU",
    "lru": DIAGONAL,
    "mingru": DIAGONAL,
    "indrnn": DIAGONAL,
}
OTHER = "other cells"
GROUP_ORDER = ["vanilla RNN", "LSTM", "GRU", DIAGONAL, OTHER]
GRAD_LABEL = r"$\|\partial L / \partial h_t\|_2$ (median over examples)"
DIST_LABEL = "distance from $t$ to the loss (steps)"
LENGTH_LABEL = "sequence length T (steps)"


def variant_palette(variants: Iterable[str]) -> dict[str, str]:
    """One colour-blind safe colour per variant, from the sorted names (hex strings).

    Example:
        >>> variant_palette(["lstm", "gru"])
        {'gru': '#0173b2', 'lstm': '#de8f05'}
    """
    colours = sns.color_palette("colorblind", 10).as_hex()
    return {v: colours[i % 10] for i, v in enumerate(sorted(set(variants)))}


def variant_styles(variants: Iterable[str]) -> dict[str, dict]:
    """Colour, line style and marker per variant, from the sorted names; past ten
    variants the (colour, line style) pairs stay distinct."""
    colours = variant_palette(variants)
    return {
        v: {
            "color": colours[v],
            "linestyle": LINESTYLES[(i // 10) % len(LINESTYLES)],
            "marker": MARKERS[i % len(MARKERS)],
        }
        for i, v in enumerate(sorted(colours))
    }


def styles_for(styles: Mapping[str, dict] | None, *frames: pd.DataFrame) -> dict[str, dict]:
    """`styles`, completed with a stable style for any variant of `frames` it lacks."""
    names = {str(v) for f in frames if "variant" in f.columns for v in f["variant"].unique()}
    out = dict(styles or {})
    missing = names - set(out)
    if missing:
        out.update({k: v for k, v in variant_styles(names | set(out)).items() if k in missing})
    return out


def cell_group(cell) -> str:
    """The row a cell's variants go in; unknown cells go in 'other cells'."""
    return CELL_GROUPS.get(cell, OTHER) if isinstance(cell, str) else OTHER


@contextlib.contextmanager
def theme():
    with (
        sns.axes_style("whitegrid"),
        sns.plotting_context("paper", font_scale=1.15),
        mpl.rc_context({"svg.hashsalt": "rnngrad", "figure.dpi": 100, "legend.frameon": False}),
    ):
        yield


def subplots(nrows: int = 1, ncols: int = 1, *, figsize, **kwargs):
    """A constrained-layout Figure without pyplot and its axes (always a 2-D array)."""
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def save(fig: Figure, out_stem: str | Path) -> list[Path]:
    """Write `{stem}.png` (150 dpi) and `{stem}.svg` (no date: reproducible), atomically."""
    stem = Path(out_stem)
    paths = []
    for ext, kwargs in (("png", {"dpi": 150}), ("svg", {"metadata": {"Date": None}})):
        path = stem.with_name(f"{stem.name}.{ext}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, **kwargs)
        paths.append(path)
    return paths


def note(ax, text: str) -> None:
    """A centred note in place of a plot."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def empty_figure(text: str) -> Figure:
    """A small figure that says what is missing from the grid."""
    with theme():
        fig, axes = subplots(figsize=(6, 2.5))
        note(axes[0, 0], text)
    return fig


def legend_handles(names: Iterable[str], styles: Mapping[str, dict], marker=False) -> list:
    return [
        Line2D(
            [],
            [],
            color=styles[n]["color"],
            linestyle=styles[n]["linestyle"],
            marker=styles[n]["marker"] if marker else None,
            label=n,
        )
        for n in names
    ]


def log_if_wide(ax, values, axis: str = "y", span: float = 20.0) -> None:
    """Log scale when the positive values span more than `span`."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size and v.max() / v.min() > span:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")


def lengths_axis(ax, lengths, axis: str = "x") -> None:
    """Ticks at the grid's lengths; log scale when they span more than 4x."""
    lengths = sorted({int(x) for x in lengths if np.isfinite(x)})
    if not lengths:
        return
    if len(lengths) > 1 and lengths[-1] / lengths[0] > 4:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    set_ticks = ax.set_xticks if axis == "x" else ax.set_yticks
    set_ticks(lengths, [str(x) for x in lengths])
    ax.minorticks_off()


def at_longest_per_variant(df: pd.DataFrame) -> pd.DataFrame:
    """The rows at the longest length each variant was trained at, per task: with the
    length sweep, few variants reach a task's longest length."""
    if not len(df):
        return df
    top = df.groupby(["task", "variant"])["length"].transform("max")
    return df[df["length"] == top]
