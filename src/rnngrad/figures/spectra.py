"""How does training move the recurrent weights? Spectral norm and radius of W_hh."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.figure import Figure

from rnngrad.figures.style import (
    at_longest_per_variant,
    empty_figure,
    legend_handles,
    log_if_wide,
    styles_for,
    subplots,
    theme,
)

__all__ = ["spectra"]

LABELS = {
    "spectral_norm": r"spectral norm $\|W_{hh}\|_2$",
    "spectral_radius": r"spectral radius $\rho(W_{hh})$",
}


def spectra(spectra: pd.DataFrame, *, styles: Mapping[str, dict] | None = None, **_) -> Figure:
    """Spectral norm and spectral radius of W_hh over training: per run the largest
    over gate blocks, then the median over seeds at each probe step, each variant at the
    longest length it was trained at. Cells without recurrent blocks (none recorded) are absent."""
    if not len(spectra):
        return empty_figure("no weight spectra in this grid")
    styles = styles_for(styles, spectra)
    df = at_longest_per_variant(spectra)
    per_run = df.groupby(["task", "length", "variant", "seed", "probe_step"])[list(LABELS)].max()
    med = per_run.groupby(["task", "variant", "probe_step"]).median().reset_index()
    tasks = sorted(med["task"].unique())
    names = sorted(med["variant"].unique())
    with theme():
        fig, axes = subplots(2, len(tasks), figsize=(4.6 * len(tasks) + 1.8, 5.6), sharex="col")
        for j, task in enumerate(tasks):
            sub = med[med["task"] == task]
            for i, column in enumerate(LABELS):
                ax = axes[i, j]
                for name, g in sub.groupby("variant", sort=True):
                    st = styles[name]
                    ax.plot(g["probe_step"], g[column], color=st["color"], linestyle=st["linestyle"],
                            marker=st["marker"], ms=4)  # fmt: skip
                ax.axhline(1.0, color="0.3", lw=0.9, linestyle=":")
                log_if_wide(ax, sub[column], span=10)
                ax.set_title(f"{task}, longest trained T per variant")
                ax.set_ylabel(LABELS[column] + "\n(largest gate block)" if j == 0 else "")
                ax.set_xlabel("training step" if i == 1 else "")
        fig.legend(handles=legend_handles(names, styles, marker=True), loc="outside right upper")
    return fig
