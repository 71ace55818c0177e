"""How fast does the gradient vanish? Profiles at initialisation and during training,
and the decay rate and horizon per variant."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from rnngrad.figures.style import (
    DIST_LABEL,
    GRAD_LABEL,
    GROUP_ORDER,
    HORIZON_RATIO,
    at_longest,
    at_longest_per_variant,
    cell_group,
    empty_figure,
    legend_handles,
    log_if_wide,
    note,
    styles_for,
    subplots,
    theme,
)

__all__ = ["decay_init", "decay_train", "decay_rate", "profile_band", "plain_variants"]

BOUND_STYLE = (0, (1, 1.5))  # dotted: apart from the variants' solid and dashed lines


def profile_band(g: pd.DataFrame, column: str = "grad_h") -> pd.DataFrame:
    """Per distance >= 0: the median and quartiles over seeds (rows) of `column`."""
    g = g[(g["distance"] >= 0) & np.isfinite(g[column].astype(float))]
    q = g.groupby("distance")[column].quantile([0.25, 0.5, 0.75]).unstack()
    q.columns = ["q1", "median", "q3"]
    return q.reset_index()


def _scaled_bound(g: pd.DataFrame) -> pd.DataFrame:
    # The bound is on ||dL/dh_t|| / ||dL/dh_r|| (1 at the first read r): times each
    # seed's norm at distance 0, it draws beside the norms.
    start = g[g["distance"] == 0].set_index("seed")["grad_h"]
    return g.assign(bound=g["bound"] * g["seed"].map(start))


def _positive(s: pd.Series) -> pd.Series:
    return s.where(s > 0)


def _cells(variants: pd.DataFrame | None) -> dict[str, str]:
    if variants is None or not len(variants) or "cell" not in variants.columns:
        return {}
    return dict(zip(variants["variant"].astype(str), variants["cell"].astype(str), strict=True))


def decay_init(
    init_profiles: pd.DataFrame,
    variants: pd.DataFrame | None = None,
    *,
    styles: Mapping[str, dict] | None = None,
) -> Figure:
    """Gradient norm against distance at initialisation, at the longest length per task.

    Lines: median over seeds of the per-seed median over examples; bands: the seeds'
    interquartile range; dotted: the per-example product bound of the cells that have
    one (median over seeds), times the norm at distance 0. Rows group the variants by
    cell (vanilla, LSTM, GRU, the diagonal cells LRU/minGRU/IndRNN, other cells);
    columns are tasks.
    """
    if not len(init_profiles):
        return empty_figure("no probes at initialisation in this grid")
    styles = styles_for(styles, init_profiles)
    df = at_longest(init_profiles)
    cells = _cells(variants)
    df = df.assign(group=df["variant"].map(lambda v: cell_group(cells.get(v))))
    groups = [g for g in GROUP_ORDER if g in set(df["group"])]
    tasks = sorted(df["task"].unique())
    with theme():
        fig, axes = subplots(
            len(groups),
            len(tasks),
            figsize=(4.6 * len(tasks) + 2.2, 2.9 * len(groups)),
            sharex="col",
        )
        for j, task in enumerate(tasks):
            for i, group in enumerate(groups):
                ax = axes[i, j]
                sub = df[(df["task"] == task) & (df["group"] == group)]
                if not len(sub):
                    note(ax, f"{task}: no {group} variant probed")
                    continue
                values = []
                for name, g in sub.groupby("variant", sort=True):
                    st = styles[name]
                    q = profile_band(g)
                    values.extend(q["median"])
                    ax.plot(q["distance"], _positive(q["median"]), color=st["color"],
                            linestyle=st["linestyle"], label=name, lw=1.6, gid=f"median:{name}")  # fmt: skip
                    ax.fill_between(q["distance"], _positive(q["q1"]), _positive(q["q3"]),
                                    color=st["color"], alpha=0.2, lw=0)  # fmt: skip
                    if "bound" in g.columns and g["bound"].notna().any():
                        b = profile_band(_scaled_bound(g), "bound")
                        ax.plot(b["distance"], _positive(b["median"]), color=st["color"],
                                linestyle=BOUND_STYLE, lw=1.0, gid=f"bound:{name}")  # fmt: skip
                v = np.asarray(values, float)
                v = v[np.isfinite(v) & (v > 0)]
                if v.size:
                    ax.set_yscale("log")
                    ax.set_ylim(v.min() / 5, v.max() * 5)
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                ax.set_title(f"{task}, T = {int(sub['length'].max())}: {group}")
                ax.set_xlabel(DIST_LABEL if i == len(groups) - 1 else "")
                ax.set_ylabel(GRAD_LABEL if j == 0 else "")
                if j == len(tasks) - 1:
                    handles = legend_handles(sorted(sub["variant"].unique()), styles)
                    if "bound" in sub.columns and sub["bound"].notna().any():
                        handles.append(Line2D([], [], color="0.3", linestyle=BOUND_STYLE,
                                              label="product bound"))  # fmt: skip
                    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1))
    return fig


def plain_variants(variants: pd.DataFrame | None, names: list[str], k: int = 4) -> list[str]:
    """Up to k variants to show: one plain variant per cell (default init, no
    constraint, no clipping), then a vanilla variant with another initialisation."""
    if variants is None or not len(variants):
        return sorted(names)[:k]
    v = variants[variants["variant"].isin(names)].sort_values("variant")
    plain = v[(v["init"] == "default") & (v["constraint"] == "none") & v["clip_norm"].isna()]
    chosen = [
        plain[plain["cell"] == c]["variant"].iloc[0]
        for c in ("rnn_tanh", "lstm", "gru", "lru", "rnn_relu", "mingru", "indrnn")
        if (plain["cell"] == c).any()
    ][: k - 1]
    other = v[v["cell"].isin(["rnn_tanh", "rnn_relu", "lstm"]) & (v["init"] != "default")]
    chosen += [n for n in other["variant"] if n not in chosen][:1]
    chosen += [n for n in sorted(names) if n not in chosen]
    return chosen[:k]


def decay_train(
    train_profiles: pd.DataFrame,
    variants: pd.DataFrame | None = None,
    *,
    styles: Mapping[str, dict] | None = None,
    selection: list[str] | None = None,
) -> Figure:
    """Gradient profiles at the probe steps of training (light to dark), a few
    variants, each at the longest length it was trained at; median over seeds."""
    if not len(train_profiles):
        return empty_figure("no gradient probes during training in this grid")
    df = at_longest_per_variant(train_profiles)
    names = selection or plain_variants(variants, sorted(df["variant"].unique()))
    df = df[df["variant"].isin(names)]
    tasks = sorted(df["task"].unique())
    steps = sorted(df["probe_step"].unique())
    cmap = mpl.colormaps["viridis"]
    colour = {s: cmap(0.9 * i / max(len(steps) - 1, 1)) for i, s in enumerate(steps)}
    with theme():
        fig, axes = subplots(
            len(tasks), len(names), figsize=(3.4 * len(names) + 1.6, 3.0 * len(tasks)), sharey="row"
        )
        for i, task in enumerate(tasks):
            for j, name in enumerate(names):
                ax = axes[i, j]
                sub = df[(df["task"] == task) & (df["variant"] == name)]
                if not len(sub):
                    note(ax, f"{name}: not probed")
                    continue
                for step, g in sub.groupby("probe_step", sort=True):
                    q = profile_band(g)
                    ax.plot(q["distance"], _positive(q["median"]), color=colour[step], lw=1.4)
                ax.set_yscale("log")
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                ax.set_title(f"{task}, T = {int(sub['length'].max())}: {name}")
                ax.set_xlabel(DIST_LABEL if i == len(tasks) - 1 else "")
                ax.set_ylabel(GRAD_LABEL if j == 0 else "")
        handles = [Line2D([], [], color=colour[s], label=f"step {int(s)}") for s in steps]
        fig.legend(handles=handles, loc="outside right upper", title="probe step")
    return fig


def decay_rate(decay: pd.DataFrame, *, styles: Mapping[str, dict] | None = None) -> Figure:
    """Decay rate and horizon per variant at initialisation (longest length per task).

    Small markers are seeds, the large marker their median; an open triangle is a
    censored horizon (the norm never fell to HORIZON_RATIO of its start).
    """
    df = decay[decay["phase"] == "init"] if len(decay) else decay
    if not len(df):
        return empty_figure("no probes at initialisation in this grid")
    styles = styles_for(styles, df)
    df = at_longest(df)
    tasks = sorted(df["task"].unique())
    names = sorted(df["variant"].unique())
    pos = {n: k for k, n in enumerate(names)}
    with theme():
        fig, axes = subplots(
            len(tasks),
            2,
            figsize=(11, 0.28 * len(names) * len(tasks) + 1.4 * len(tasks)),
            sharey=True,
        )
        for i, task in enumerate(tasks):
            sub = df[df["task"] == task]
            length = int(sub["length"].max())
            for j, column in enumerate(("decay_rate", "horizon")):
                ax = axes[i, j]
                for name, g in sub.groupby("variant", sort=True):
                    st = styles[name]
                    y = np.full(len(g), pos[name]) + np.linspace(-0.15, 0.15, len(g))
                    x = g[column].to_numpy(float)
                    if column == "horizon":
                        cens = g["horizon_censored"].to_numpy(bool)
                        ax.scatter(x[cens], y[cens], s=22, facecolors="none",
                                   edgecolors=st["color"], marker=">")  # fmt: skip
                        x, y = x[~cens], y[~cens]
                    ax.scatter(x, y, s=14, color=st["color"], alpha=0.6, lw=0)
                    med = g[column].median()
                    if np.isfinite(med):
                        ax.scatter([med], [pos[name]], s=60, color=st["color"], marker=st["marker"],
                                   edgecolors="black", lw=0.5)  # fmt: skip
                if column == "decay_rate":
                    ax.axvline(0, color="0.4", lw=0.8)
                    ax.set_xlabel(
                        r"decay rate: slope of $\log_{10}\|\partial L/\partial h_t\|$ per step"
                    )
                    ax.set_title(f"{task}, T = {length}: decay rate")
                else:
                    ax.axvline(sub["max_distance"].max(), color="0.4", lw=0.8, linestyle=":")
                    log_if_wide(ax, sub["horizon"], axis="x")
                    ax.set_xlabel(
                        f"horizon: last distance with norm \u2265 {HORIZON_RATIO:g} of start (steps)"
                    )
                    ax.set_title(f"{task}, T = {length}: horizon")
                    if sub["horizon_censored"].any():
                        ax.legend(
                            handles=[
                                Line2D([], [], marker=">", markerfacecolor="none", color="0.3", lw=0,
                                       label="censored: never fell that far"),
                                Line2D([], [], color="0.4", lw=0.8, linestyle=":",
                                       label="longest distance probed"),
                            ],
                            loc="lower right", fontsize=8, frameon=True,
                        )  # fmt: skip
                ax.set_yticks(range(len(names)), names)
                ax.set_ylim(len(names) - 0.5, -0.5)
    return fig
