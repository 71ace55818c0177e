"""Do gradients explode, and what does clipping do? The global gradient norm over
training of each clipped variant beside its unclipped twin."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from rnngrad.figures.style import empty_figure, styles_for, subplots, theme
from rnngrad.figures.training import diverged_marks
from rnngrad.findings import twin

__all__ = ["grad_norm", "clip_pairs"]


def clip_pairs(runs: pd.DataFrame) -> list[tuple[str, str | None]]:
    """(clipped variant, its unclipped twin or None): at most one pair per cell, the
    plainest first (default init, no constraint)."""
    v = runs.drop_duplicates("variant").set_index("variant")
    clipped = v[v["clip_norm"].notna()]
    clipped = clipped.assign(
        plain=(clipped["init"] != "default").astype(int) + (clipped["constraint"] != "none")
    ).sort_values(["plain"], kind="stable")
    pairs, cells = [], set()
    for name in clipped.index:
        if v.at[name, "cell"] not in cells:
            cells.add(v.at[name, "cell"])
            pairs.append((name, twin(runs, name)))
    return pairs


def grad_norm(
    curves: pd.DataFrame, runs: pd.DataFrame, *, styles: Mapping[str, dict] | None = None, **_
) -> Figure:
    """Global gradient norm (before clipping) over training, with and without clipping.

    Rows pair a clipped variant with its unclipped twin (one pair per cell), at the
    longest length of each task that both were trained at (the clipped one's alone
    when they share none), lowest seed. Light: every step; dark: a rolling median; dashed:
    the clipping threshold.
    """
    pairs = clip_pairs(runs) if len(runs) else []
    if not pairs or not len(curves):
        return empty_figure("no variant with gradient clipping in this grid")
    styles = styles_for(styles, curves)
    df = curves
    tasks = sorted(df["task"].unique())
    clip = runs.drop_duplicates("variant").set_index("variant")["clip_norm"]
    with theme():
        fig, axes = subplots(len(pairs), len(tasks), figsize=(4.6 * len(tasks) + 2.6, 2.8 * len(pairs)),
                             sharex="col")  # fmt: skip
        for i, pair in enumerate(pairs):
            for j, task in enumerate(tasks):
                ax = axes[i, j]
                handles = []
                length = _shared_longest(df[df["task"] == task], pair)
                for name in [n for n in pair if n is not None]:
                    g = df[
                        (df["task"] == task) & (df["variant"] == name) & (df["length"] == length)
                    ]
                    if not len(g):
                        continue
                    g = g[g["seed"] == g["seed"].min()].sort_values("step")
                    st = styles[name]
                    norm = g["grad_norm"].astype(float).where(np.isfinite(g["grad_norm"]))
                    smooth = norm.rolling(max(1, len(g) // 50), center=True, min_periods=1).median()
                    ax.plot(g["step"], norm, color=st["color"], alpha=0.25, lw=0.6, rasterized=True)
                    ax.plot(g["step"], smooth, color=st["color"], lw=1.5)
                    label = name
                    if name == pair[0]:
                        label += (
                            f" ({100 * g['clipped'].astype(float).mean():.0f}% of steps clipped)"
                        )
                    handles.append(Line2D([], [], color=st["color"], lw=1.5, label=label))
                    if not np.isfinite(g["grad_norm"].astype(float)).all():
                        last = g.loc[np.isfinite(norm), "step"].max()
                        diverged_marks(ax, np.array([last], float), st["color"])
                        handles.append(Line2D([], [], color=st["color"], marker="x", lw=0,
                                              label=f"{name} diverged"))  # fmt: skip
                c = float(clip[pair[0]])
                ax.axhline(c, color=styles[pair[0]]["color"], linestyle="--", lw=1.0)
                handles.append(Line2D([], [], color=styles[pair[0]]["color"], linestyle="--",
                                      label=f"clip threshold {c:g}"))  # fmt: skip
                ax.set_yscale("log")
                shown = "n/a" if length is None else str(length)
                ax.set_title(f"{task}, T = {shown}: " + " vs ".join(n for n in pair if n))
                ax.set_xlabel("training step" if i == len(pairs) - 1 else "")
                ax.set_ylabel("global gradient norm\n(before clipping)" if j == 0 else "")
                ax.legend(handles=handles, fontsize=8, loc="best", frameon=True, framealpha=0.85)
    return fig


def _shared_longest(curves: pd.DataFrame, pair: tuple) -> int | None:
    """The longest length both variants of a pair were trained at, else the first's."""
    lengths = [set(curves.loc[curves["variant"] == n, "length"]) for n in pair if n is not None]
    shared = set.intersection(*lengths) if lengths else set()
    pool = shared or (lengths[0] if lengths else set())
    return int(max(pool)) if pool else None
