"""What did training reach? The test loss over the baseline's against length, and the
evaluation metric over training."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import blended_transform_factory

from rnngrad.figures.style import (
    LENGTH_LABEL,
    at_longest,
    empty_figure,
    legend_handles,
    lengths_axis,
    log_if_wide,
    styles_for,
    subplots,
    theme,
)
from rnngrad.findings.quoted import loss_thresholds

__all__ = ["loss_ratio", "learning_curves", "threshold_ratio"]


def diverged_marks(ax, x, colour) -> None:
    """Crosses at the top of the axes at data positions x."""
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    ax.scatter(
        x, np.full(len(x), 0.97), transform=trans, marker="x", color=colour, s=30, clip_on=False
    )


def threshold_ratio(runs: pd.DataFrame, task: str) -> float | None:
    """The solve threshold as a loss ratio (findings.loss_thresholds) for tasks whose
    metric is their loss (MSE), e.g. adding: 0.01 / (1/6) = 0.06; None otherwise."""
    row = loss_thresholds(runs).query("task == @task")
    return float(row["ratio"].iloc[0]) if len(row) else None


def loss_ratio(runs: pd.DataFrame, *, styles: Mapping[str, dict] | None = None, **_) -> Figure:
    """Test loss / baseline loss against length per variant: lines are medians over
    seeds, dots seeds, crosses at the top diverged runs; dotted, the input-blind
    baseline (1); dashed, the solve threshold as a loss ratio where the metric is the
    loss (adding: 0.01 / (1/6))."""
    if not len(runs):
        return empty_figure("no training runs in this grid")
    styles = styles_for(styles, runs)
    tasks = sorted(runs["task"].unique())
    names = sorted(runs["variant"].unique())
    column = "test_loss_ratio" if "test_loss_ratio" in runs.columns else "loss_ratio"
    with theme():
        fig, axes = subplots(1, len(tasks), figsize=(4.5 * len(tasks) + 1.8, 3.6))
        for j, task in enumerate(tasks):
            ax = axes[0, j]
            sub = runs[runs["task"] == task]
            ratio = sub[column].astype(float)
            ok = sub[np.isfinite(ratio) & (sub["status"] != "diverged")]
            for name, g in ok.groupby("variant", sort=True):
                st = styles[name]
                m = g.groupby("length")[column].median()
                ax.plot(m.index, m.to_numpy(), color=st["color"], linestyle=st["linestyle"],
                        marker=st["marker"], ms=5, label=name, gid=f"median:{name}")  # fmt: skip
                ax.scatter(g["length"], g[column], color=st["color"], s=8, alpha=0.5)
            div = sub[sub["status"] == "diverged"]
            if len(div):
                diverged_marks(ax, div["length"].to_numpy(float), "black")
            ax.axhline(1.0, color="0.3", lw=0.9, linestyle=":")
            thr = threshold_ratio(runs, task)
            if thr is not None:
                ax.axhline(thr, color="0.3", lw=0.9, linestyle="--", gid="threshold")
            log_if_wide(ax, [*ok[column], *([thr] if thr else [])], span=5)
            lengths_axis(ax, sub["length"])
            ax.set_title(task)
            ax.set_xlabel(LENGTH_LABEL)
            ax.set_ylabel("test loss / baseline loss" if j == 0 else "")
        handles = legend_handles(names, styles, marker=True)
        handles.append(Line2D([], [], color="0.3", linestyle=":", label="baseline (input-blind)"))
        if any(threshold_ratio(runs, t) is not None for t in tasks):
            handles.append(
                Line2D([], [], color="0.3", linestyle="--", label="solve threshold (MSE)")
            )
        if (runs["status"] == "diverged").any():
            handles.append(Line2D([], [], color="black", marker="x", lw=0, label="diverged run"))
        fig.legend(handles=handles, loc="outside right upper")
    return fig


def learning_curves(
    curves: pd.DataFrame, runs: pd.DataFrame, *, styles: Mapping[str, dict] | None = None, **_
) -> Figure:
    """Evaluation metric over training at the longest trained length per task, one thin
    line per seed; dotted, the solve threshold; crosses, divergences."""
    if not len(curves):
        return empty_figure("no training runs in this grid")
    styles = styles_for(styles, curves)
    df = at_longest(curves)
    df = df[np.isfinite(df["metric"].astype(float))]
    tasks = sorted(df["task"].unique())
    names = sorted(df["variant"].unique())
    with theme():
        fig, axes = subplots(1, len(tasks), figsize=(4.6 * len(tasks) + 1.8, 3.6))
        for j, task in enumerate(tasks):
            ax = axes[0, j]
            sub = df[df["task"] == task]
            length = int(sub["length"].max())
            for (name, _seed), g in sub.groupby(["variant", "seed"], sort=True):
                st = styles[name]
                ax.plot(g["step"], g["metric"], color=st["color"], linestyle=st["linestyle"],
                        lw=1.0, alpha=0.85)  # fmt: skip
            meta = runs[(runs["task"] == task) & (runs["length"] == length)]
            div = meta[meta["status"] == "diverged"]
            if len(div):
                diverged_marks(ax, div["steps_done"].to_numpy(float), "black")
            thr = meta["solve_threshold"].dropna()
            if len(thr):
                ax.axhline(float(thr.iloc[0]), color="0.3", lw=0.9, linestyle=":")
            metric = str(meta["metric_name"].dropna().iloc[0]) if len(meta) else "metric"
            if metric == "mse":
                ax.set_yscale("log")
                ax.set_ylabel("evaluation MSE (lower is better)")
            else:
                ax.set_ylim(-0.02, 1.02)
                ax.set_ylabel(f"evaluation {metric} (higher is better)")
            ax.set_title(f"{task}, T = {length}")
            ax.set_xlabel("training step")
        handles = legend_handles(names, styles)
        handles.append(Line2D([], [], color="0.3", linestyle=":", label="solve threshold"))
        if (runs["status"] == "diverged").any():
            handles.append(Line2D([], [], color="black", marker="x", lw=0, label="diverged"))
        fig.legend(handles=handles, loc="outside right upper")
    return fig
