"""Which variants learn long dependencies? The solved rate of every cell of the grid
(not-attempted cells drawn apart), and the critical length beside the horizons."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from rnngrad.figures.style import (
    LENGTH_LABEL,
    empty_figure,
    styles_for,
    subplots,
    theme,
)
from rnngrad.findings import critical_length

__all__ = ["success", "critical", "NOT_ATTEMPTED"]

NOT_ATTEMPTED = "not attempted"
HATCH = {"facecolor": "0.88", "edgecolor": "0.55", "hatch": "///", "lw": 0}


def _label(r) -> str:
    if not r.attempted:
        return "n.a."
    return f"{int(r.solved)}/{int(r.seeds)}" + (f" \u2020{int(r.diverged)}" if r.diverged else "")


def success(success: pd.DataFrame, **_) -> Figure:
    """Heatmap of the solved rate on the test batch, variant x length, per task.

    Cells read solved seeds / seeds (a dagger: diverged runs). Cells of the grid that
    the adaptive sweep never trained are hatched grey and read "n.a." (not attempted,
    which is not a failure); a blank cell is not in the grid.
    """
    if not len(success):
        return empty_figure("no training runs in this grid")
    s = success.copy()
    s["attempted"] = s["attempted"].astype(bool) if "attempted" in s else True
    s["label"] = [_label(r) for r in s.itertuples()]
    s["rate"] = s["solved_rate"].where(s["attempted"])
    tasks = sorted(s["task"].unique())
    names = sorted(s["variant"].unique())
    n_lengths = s.groupby("task")["length"].nunique().sum()
    with theme():
        fig, axes = subplots(
            1, len(tasks), figsize=(2.6 + 0.75 * n_lengths + 1.4 * len(tasks), 0.34 * len(names) + 1.9),
            sharey=True, width_ratios=[s.loc[s["task"] == t, "length"].nunique() for t in tasks],
        )  # fmt: skip
        for j, task in enumerate(tasks):
            ax = axes[0, j]
            sub = s[s["task"] == task]
            rate = sub.pivot(index="variant", columns="length", values="rate").reindex(names)
            text = sub.pivot(index="variant", columns="length", values="label").reindex(names)
            sns.heatmap(rate.astype(float), ax=ax, vmin=0, vmax=1, cmap="viridis",
                        annot=text.fillna("").to_numpy(), fmt="", cbar=j == len(tasks) - 1,
                        linewidths=0.5, linecolor="white", annot_kws={"size": 8},
                        cbar_kws={"label": "solved rate on the test batch"})  # fmt: skip
            columns = list(rate.columns)
            for r in sub[~sub["attempted"]].itertuples():
                ax.add_patch(Rectangle((columns.index(r.length), names.index(r.variant)), 1, 1,
                                       gid=f"{NOT_ATTEMPTED}:{task}:{r.variant}:{r.length}",
                                       zorder=0.5, **HATCH))  # fmt: skip
                ax.text(columns.index(r.length) + 0.5, names.index(r.variant) + 0.5, "n.a.",
                        ha="center", va="center", fontsize=8, color="0.25")  # fmt: skip
            ax.set_title(task)
            ax.set_xlabel(LENGTH_LABEL)
            ax.set_ylabel("variant" if j == 0 else "")
            ax.tick_params(axis="y", rotation=0)
        if (~s["attempted"]).any():
            fig.legend(handles=[Patch(label=f"n.a.: {NOT_ATTEMPTED} (a shorter length failed)", **HATCH)],
                       loc="outside lower center", fontsize=8)  # fmt: skip
    return fig


def critical(critical: pd.DataFrame, *, styles: Mapping[str, dict] | None = None) -> Figure:
    """Critical length per variant and task, with the seeds' spread and the horizons.

    Filled marker: the critical length (longest length solved by a majority of seeds
    before the first that was not; an arrow when the variant solved the whole grid);
    thick bar: the seeds' own critical lengths (min to max); a cross at the first length
    when even that failed. Open circle and square: the median horizon at initialisation
    and after training at the horizon length, with the seeds' quartiles.
    """
    if not len(critical):
        return empty_figure("no critical lengths in this grid (no training runs)")
    styles = styles_for(styles, critical)
    tasks = sorted(critical["task"].unique())
    with theme():
        n = critical.groupby("task")["variant"].nunique().max()
        fig, axes = subplots(1, len(tasks), figsize=(5.2 * len(tasks) + 2.4, 0.36 * n + 1.8))
        for j, task in enumerate(tasks):
            ax = axes[0, j]
            sub = critical_length(critical[critical["task"] == task])  # longest first
            lengths = sorted({int(x) for t in sub["lengths"] for x in str(t).split(",") if x})
            first = lengths[0] if lengths else 1
            for k, r in enumerate(sub.itertuples()):
                st = styles[r.variant]
                lo, hi = max(r.seed_critical_min, first / 2), max(r.seed_critical_max, first / 2)
                ax.plot(
                    [lo, hi], [k, k], color=st["color"], lw=5, alpha=0.35, solid_capstyle="butt"
                )
                if np.isnan(r.critical_length):
                    ax.scatter(
                        [first], [k], marker="x", color=st["color"], s=40, gid=f"failed:{r.variant}"
                    )
                else:
                    ax.scatter([r.critical_length], [k], marker=">" if r.censored else "o",
                               color=st["color"], s=50, zorder=3, gid=f"critical:{r.variant}")  # fmt: skip
                for phase, marker, dy in (("init", "o", -0.2), ("final", "s", 0.2)):
                    med = getattr(r, f"horizon_{phase}_median")
                    if np.isfinite(med) and med > 0:
                        q1, q3 = (
                            getattr(r, f"horizon_{phase}_q1"),
                            getattr(r, f"horizon_{phase}_q3"),
                        )
                        ax.errorbar([med], [k + dy], xerr=[[max(med - q1, 0)], [max(q3 - med, 0)]],
                                    fmt=marker, mfc="none", color=st["color"], ms=5, lw=0.8,
                                    gid=f"horizon_{phase}:{r.variant}")  # fmt: skip
            ax.set_xscale("log")
            ax.set_xticks(lengths, [str(x) for x in lengths])
            ax.minorticks_off()
            ax.set_yticks(range(len(sub)), sub["variant"])
            ax.set_ylim(len(sub) - 0.5, -0.5)
            ax.set_title(task)
            ax.set_xlabel("length or distance (steps)")
        handles = [
            Line2D(
                [], [], marker="o", color="0.2", lw=0, label="critical length (majority of seeds)"
            ),
            Line2D([], [], marker=">", color="0.2", lw=0, label="solved the whole grid (censored)"),
            Line2D([], [], marker="x", color="0.2", lw=0, label="failed the first length"),
            Line2D([], [], color="0.2", lw=5, alpha=0.35, label="seeds' critical lengths"),
            Line2D([], [], marker="o", mfc="none", color="0.2", lw=0, label="horizon at init"),
            Line2D(
                [], [], marker="s", mfc="none", color="0.2", lw=0, label="horizon after training"
            ),
        ]
        fig.legend(handles=handles, loc="outside right upper", fontsize=8)
    return fig
