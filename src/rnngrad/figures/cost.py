"""What does a training step cost? Milliseconds per step against length, per variant."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rnngrad.figures.style import (
    LENGTH_LABEL,
    empty_figure,
    legend_handles,
    lengths_axis,
    log_if_wide,
    styles_for,
    subplots,
    theme,
)

__all__ = ["cost"]


def cost(cost: pd.DataFrame, *, styles: Mapping[str, dict] | None = None, **_) -> Figure:
    """Milliseconds per training step against length per variant (labelled with its
    cell), one panel per task; the peak memory of the training job in a second row
    when Snakemake's benchmark files recorded it."""
    if not len(cost):
        return empty_figure("no training runs in this grid")
    styles = styles_for(styles, cost)
    tasks = sorted(cost["task"].unique())
    names = sorted(cost["variant"].unique())
    cell = dict(zip(cost["variant"], cost["cell"], strict=False))
    rows = [("seconds_per_step", "ms per training step", 1e3)]
    if "max_rss_mb" in cost and np.isfinite(cost["max_rss_mb"].astype(float)).any():
        rows.append(("max_rss_mb", "peak memory of the job (MB)", 1.0))
    with theme():
        fig, axes = subplots(len(rows), len(tasks), figsize=(4.5 * len(tasks) + 2.8, 3.2 * len(rows)),
                             sharex="col")  # fmt: skip
        for j, task in enumerate(tasks):
            sub = cost[cost["task"] == task]
            for i, (column, label, scale) in enumerate(rows):
                ax = axes[i, j]
                for name, g in sub.groupby("variant", sort=True):
                    st = styles[name]
                    g = g.sort_values("length")
                    ax.plot(g["length"], g[column].astype(float) * scale, color=st["color"],
                            linestyle=st["linestyle"], marker=st["marker"], ms=5)  # fmt: skip
                log_if_wide(ax, sub[column].astype(float), span=8)
                lengths_axis(ax, sub["length"])
                ax.set_title(task)
                ax.set_ylabel(label if j == 0 else "")
                ax.set_xlabel(LENGTH_LABEL if i == len(rows) - 1 else "")
        handles = legend_handles(names, styles, marker=True)
        for h in handles:
            h.set_label(f"{h.get_label()} ({cell.get(h.get_label(), '?')})")
        fig.legend(handles=handles, loc="outside right upper")
    return fig
