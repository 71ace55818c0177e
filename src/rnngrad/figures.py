"""Figures of the report, from the tables of rnngrad.aggregate (matplotlib Agg + seaborn).

One function per figure; each takes DataFrames named like the tables it reads and
an output path stem, and writes `{stem}.png` (rendered by Agg) and `{stem}.svg`
atomically. Figures are built without pyplot, so importing this module changes no
global matplotlib state. A variant
has one colour (and, past ten variants, a line style and a marker) in every figure:
`variant_styles` derives them from the sorted variant names of the config, so the
same config gives a variant the same style everywhere. A figure whose data is absent from the
grid still writes both files, with a note saying what is missing.

`make_figure(name, tables_dir, out_stem, config)` reads the tables a figure needs
and draws it: the workflow runs one rule per figure through it.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import blended_transform_factory

from rnngrad.aggregate import TABLES, read_table, variants_table
from rnngrad.io import atomic_path

__all__ = [
    "FIGURES",
    "FIGURE_TABLES",
    "make_figure",
    "variant_palette",
    "variant_styles",
    "decay_init",
    "decay_train",
    "decay_rate",
    "success",
    "loss_ratio",
    "learning_curves",
    "grad_norm",
    "spectra",
    "cost",
]

LINESTYLES = ["-", "--", ":", "-."]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p", "d"]
CELL_GROUPS = {"rnn_tanh": "vanilla RNN", "rnn_relu": "vanilla RNN", "lstm": "LSTM", "gru": "GRU"}
GROUP_ORDER = ["vanilla RNN", "LSTM", "GRU"]
BOUND_STYLE = (0, (1, 1.5))  # dotted: apart from the variants' solid and dashed lines
GRAD_LABEL = r"$\|\partial L / \partial h_t\|_2$ (median over examples)"
DIST_LABEL = "distance from $t$ to the loss (steps)"


# ----------------------------------------------------------------------------- styles


def variant_palette(variants: Iterable[str]) -> dict[str, str]:
    """One colour-blind safe colour per variant, from the sorted names (hex strings).

    Past ten variants the colours repeat; `variant_styles` adds a line style and a
    marker that tell them apart.

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


def _styles(palette: Mapping[str, dict] | None, *frames: pd.DataFrame) -> dict[str, dict]:
    names = {str(v) for f in frames if "variant" in f.columns for v in f["variant"].unique()}
    styles = dict(palette or {})
    missing = names - set(styles)
    if missing:  # variants outside the given palette still get a stable style
        styles.update(
            {k: v for k, v in variant_styles(names | set(styles)).items() if k in missing}
        )
    return styles


@contextlib.contextmanager
def _theme():
    with (
        sns.axes_style("whitegrid"),
        sns.plotting_context("paper", font_scale=1.15),
        mpl.rc_context({"svg.hashsalt": "rnngrad", "figure.dpi": 100, "legend.frameon": False}),
    ):
        yield


def _subplots(nrows: int = 1, ncols: int = 1, *, figsize, layout="constrained", **kwargs):
    # A Figure without pyplot: no global backend or figure registry is touched; saving
    # to .png renders with Agg.
    fig = Figure(figsize=figsize, layout=layout)
    axes = fig.subplots(nrows, ncols, **kwargs)
    return fig, axes


def _save(fig, out_stem: str | Path) -> list[Path]:
    stem = Path(out_stem)
    paths = []
    for ext, kwargs in (("png", {"dpi": 150}), ("svg", {"metadata": {"Date": None}})):
        path = stem.with_name(f"{stem.name}.{ext}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, **kwargs)
        paths.append(path)
    return paths


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def _empty_figure(out_stem, text: str) -> list[Path]:
    with _theme():
        fig, ax = _subplots(figsize=(6, 2.5))
        _note(ax, text)
        return _save(fig, out_stem)


def _longest(df: pd.DataFrame) -> dict[str, int]:
    return {t: int(g["length"].max()) for t, g in df.groupby("task", sort=True)}


def _at_longest(df: pd.DataFrame) -> pd.DataFrame:
    longest = _longest(df)
    return df[df["length"] == df["task"].map(longest)]


def _cells(variants: pd.DataFrame | None) -> dict[str, str]:
    if variants is None or not len(variants):
        return {}
    return dict(zip(variants["variant"].astype(str), variants["cell"].astype(str), strict=True))


def _legend_handles(names: Iterable[str], styles: Mapping[str, dict], marker=False) -> list:
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


def _log_if_wide(ax, values, axis: str = "y", span: float = 20.0) -> None:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size and v.max() / v.min() > span:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")


def _lengths_axis(ax, lengths) -> None:
    lengths = sorted(set(int(x) for x in lengths))
    if len(lengths) > 1 and lengths[-1] / lengths[0] > 4:
        ax.set_xscale("log")
    ax.set_xticks(lengths)
    ax.set_xticklabels([str(x) for x in lengths])
    ax.minorticks_off()


# ---------------------------------------------------------------------------- figures


def _profile_band(g: pd.DataFrame, column: str = "grad_h") -> pd.DataFrame:
    g = g[(g["distance"] >= 0) & np.isfinite(g[column])]
    q = g.groupby("distance")[column].quantile([0.25, 0.5, 0.75]).unstack()
    q.columns = ["q1", "median", "q3"]
    return q.reset_index()


def _scaled_bound(g: pd.DataFrame) -> pd.DataFrame:
    # The probes' bound is on ||dL/dh_t|| / ||dL/dh_r|| (1 at the first read r): scale it
    # by each seed's norm at distance 0 to draw it beside the norms.
    start = g[g["distance"] == 0].set_index("seed")["grad_h"]
    return g.assign(bound=g["bound"] * g["seed"].map(start))


def _positive(s: pd.Series) -> pd.Series:
    return s.where(s > 0)


def decay_init(
    init_profiles: pd.DataFrame,
    out_stem: str | Path,
    *,
    palette: Mapping[str, dict] | None = None,
    variants: pd.DataFrame | None = None,
) -> list[Path]:
    """Gradient norm against distance at initialisation, at the longest length per task.

    Lines: median over seeds; bands: the seeds' interquartile range; dotted: the
    bound prod_k ||diag(f'(a_k)) W_hh|| for vanilla cells (Pascanu et al. 2013), times
    the norm at distance 0 (the probes record the bound on the ratio to it).
    Rows group the variants by cell, columns are tasks.
    """
    if not len(init_profiles):
        return _empty_figure(out_stem, "no probes at initialisation in this grid")
    styles = _styles(palette, init_profiles)
    df = _at_longest(init_profiles)
    cells = _cells(variants)
    df = df.assign(group=df["variant"].map(lambda v: CELL_GROUPS.get(cells.get(v), "all")))
    groups = [g for g in [*GROUP_ORDER, "all"] if g in set(df["group"])]
    tasks = sorted(df["task"].unique())
    with _theme():
        fig, axes = _subplots(
            len(groups),
            len(tasks),
            figsize=(4.6 * len(tasks) + 1.8, 3.0 * len(groups)),
            squeeze=False,
            layout="constrained",
            sharex="col",
        )
        for j, task in enumerate(tasks):
            for i, group in enumerate(groups):
                ax = axes[i, j]
                sub = df[(df["task"] == task) & (df["group"] == group)]
                values = []
                for name, g in sub.groupby("variant", sort=True):
                    st = styles[name]
                    q = _profile_band(g)
                    values.extend(q["median"])
                    ax.plot(
                        q["distance"],
                        _positive(q["median"]),
                        color=st["color"],
                        linestyle=st["linestyle"],
                        label=name,
                        lw=1.6,
                    )
                    ax.fill_between(
                        q["distance"],
                        _positive(q["q1"]),
                        _positive(q["q3"]),
                        color=st["color"],
                        alpha=0.2,
                        lw=0,
                    )
                    if g["bound"].notna().any():
                        b = _profile_band(_scaled_bound(g), "bound")
                        ax.plot(
                            b["distance"],
                            _positive(b["median"]),
                            color=st["color"],
                            linestyle=BOUND_STYLE,
                            lw=1.0,
                        )
                v = np.asarray(values, float)
                v = v[np.isfinite(v) & (v > 0)]
                if v.size:
                    ax.set_yscale("log")
                    ax.set_ylim(v.min() / 5, v.max() * 5)
                length = int(sub["length"].max()) if len(sub) else 0
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                ax.set_title(f"{task}, T = {length}: {group}")
                ax.set_xlabel(DIST_LABEL if i == len(groups) - 1 else "")
                ax.set_ylabel(GRAD_LABEL if j == 0 else "")
                if j == len(tasks) - 1:
                    handles = _legend_handles(sorted(sub["variant"].unique()), styles)
                    if sub["bound"].notna().any():
                        handles.append(
                            Line2D(
                                [],
                                [],
                                color="0.3",
                                linestyle=BOUND_STYLE,
                                label="product bound (vanilla)",
                            )
                        )
                    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1))
        return _save(fig, out_stem)


def _plain_variants(variants: pd.DataFrame | None, names: list[str], k: int = 4) -> list[str]:
    # One plain variant per cell (default init, no constraint, no clipping), then the
    # first vanilla variant with another initialisation.
    if variants is None or not len(variants):
        return sorted(names)[:k]
    v = variants[variants["variant"].isin(names)].sort_values("variant")
    plain = v[(v["init"] == "default") & (v["constraint"] == "none") & v["clip_norm"].isna()]
    chosen = [
        plain[plain["cell"] == c]["variant"].iloc[0]
        for c in ("rnn_tanh", "rnn_relu", "lstm", "gru")
        if (plain["cell"] == c).any()
    ]
    other = v[v["cell"].isin(["rnn_tanh", "rnn_relu"]) & (v["init"] != "default")]
    chosen += [n for n in other["variant"] if n not in chosen][:1]
    chosen += [n for n in sorted(names) if n not in chosen]
    return chosen[:k]


def decay_train(
    train_profiles: pd.DataFrame,
    out_stem: str | Path,
    *,
    palette: Mapping[str, dict] | None = None,
    variants: pd.DataFrame | None = None,
    selection: list[str] | None = None,
) -> list[Path]:
    """Gradient profiles at the probe steps of training, a few variants at the longest length.

    Lines are probe steps (light to dark), each the median over seeds.
    """
    if not len(train_profiles):
        return _empty_figure(out_stem, "no gradient probes during training in this grid")
    styles = _styles(palette, train_profiles)
    df = _at_longest(train_profiles)
    names = selection or _plain_variants(variants, sorted(df["variant"].unique()))
    df = df[df["variant"].isin(names)]
    tasks = sorted(df["task"].unique())
    steps = sorted(df["probe_step"].unique())
    cmap = mpl.colormaps["viridis"]
    colour = {s: cmap(0.9 * i / max(len(steps) - 1, 1)) for i, s in enumerate(steps)}
    with _theme():
        fig, axes = _subplots(
            len(tasks),
            len(names),
            figsize=(3.4 * len(names) + 1.6, 3.0 * len(tasks)),
            squeeze=False,
            layout="constrained",
            sharey="row",
        )
        for i, task in enumerate(tasks):
            for j, name in enumerate(names):
                ax = axes[i, j]
                sub = df[(df["task"] == task) & (df["variant"] == name)]
                if not len(sub):
                    _note(ax, f"{name}: not probed")
                    continue
                for step, g in sub.groupby("probe_step", sort=True):
                    q = _profile_band(g)
                    ax.plot(q["distance"], _positive(q["median"]), color=colour[step], lw=1.4)
                ax.set_yscale("log")
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                ax.set_title(
                    f"{task}, T = {int(sub['length'].max())}: {name}", color=styles[name]["color"]
                )
                ax.set_xlabel(DIST_LABEL if i == len(tasks) - 1 else "")
                ax.set_ylabel(GRAD_LABEL if j == 0 else "")
        handles = [Line2D([], [], color=colour[s], label=f"step {int(s)}") for s in steps]
        fig.legend(handles=handles, loc="outside right upper", title="probe step")
        return _save(fig, out_stem)


def decay_rate(
    decay: pd.DataFrame,
    out_stem: str | Path,
    *,
    palette: Mapping[str, dict] | None = None,
    variants: pd.DataFrame | None = None,
) -> list[Path]:
    """Decay rate and horizon per variant at initialisation (longest length per task).

    Small markers are seeds, the large marker their mean; an open marker is a
    censored horizon (the norm never fell to 1e-3 of its start within the sequence).
    """
    df = decay[decay["phase"] == "init"] if len(decay) else decay
    if not len(df):
        return _empty_figure(out_stem, "no probes at initialisation in this grid")
    styles = _styles(palette, df)
    df = _at_longest(df)
    tasks = sorted(df["task"].unique())
    names = sorted(df["variant"].unique())
    pos = {n: k for k, n in enumerate(names)}
    with _theme():
        fig, axes = _subplots(
            len(tasks),
            2,
            figsize=(11, 0.28 * len(names) * len(tasks) + 1.4 * len(tasks)),
            squeeze=False,
            layout="constrained",
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
                    cens = g["horizon_censored"].to_numpy(bool) if column == "horizon" else None
                    x = g[column].to_numpy(float)
                    if cens is not None and cens.any():
                        ax.scatter(
                            x[cens],
                            y[cens],
                            s=22,
                            facecolors="none",
                            edgecolors=st["color"],
                            marker=">",
                        )
                        x, y = x[~cens], y[~cens]
                    ax.scatter(x, y, s=14, color=st["color"], alpha=0.6, lw=0)
                    mean = g[column].mean()
                    if np.isfinite(mean):
                        ax.scatter(
                            [mean],
                            [pos[name]],
                            s=60,
                            color=st["color"],
                            marker=st["marker"],
                            edgecolors="black",
                            lw=0.5,
                        )
                if column == "decay_rate":
                    ax.axvline(0, color="0.4", lw=0.8)
                    ax.set_xlabel(
                        r"decay rate: slope of $\log_{10}\|\partial L/\partial h_t\|$ per step"
                    )
                    ax.set_title(f"{task}, T = {length}: decay rate")
                else:
                    ax.axvline(sub["max_distance"].max(), color="0.4", lw=0.8, linestyle=":")
                    _log_if_wide(ax, sub["horizon"], axis="x")
                    ax.set_xlabel("horizon: last distance with norm \u2265 1e-3 of start (steps)")
                    ax.set_title(f"{task}, T = {length}: horizon")
                    if sub["horizon_censored"].any():
                        ax.legend(
                            handles=[
                                Line2D(
                                    [],
                                    [],
                                    marker=">",
                                    markerfacecolor="none",
                                    color="0.3",
                                    lw=0,
                                    label="censored: never fell that far",
                                ),
                                Line2D(
                                    [],
                                    [],
                                    color="0.4",
                                    lw=0.8,
                                    linestyle=":",
                                    label="longest distance probed",
                                ),
                            ],
                            loc="lower right",
                            fontsize=8,
                            frameon=True,
                        )
                ax.set_yticks(range(len(names)))
                ax.set_yticklabels(names)
                ax.set_ylim(len(names) - 0.5, -0.5)
        return _save(fig, out_stem)


def success(success: pd.DataFrame, out_stem: str | Path, **_) -> list[Path]:
    """Heatmap of the solved rate, variant x length, per task; cells read solved/seeds,
    with the number of diverged runs after a dagger."""
    if not len(success):
        return _empty_figure(out_stem, "no training runs in this grid")
    tasks = sorted(success["task"].unique())
    names = sorted(success["variant"].unique())
    with _theme():
        fig, axes = _subplots(
            1,
            len(tasks),
            figsize=(
                1.2 + 0.9 * success["length"].nunique() * len(tasks) + 2.5,
                0.34 * len(names) + 1.6,
            ),
            squeeze=False,
            layout="constrained",
            sharey=True,
        )
        for j, task in enumerate(tasks):
            ax = axes[0, j]
            sub = success[success["task"] == task]
            rate = sub.pivot(index="variant", columns="length", values="solved_rate").reindex(names)
            text = (
                sub.assign(
                    label=[
                        f"{int(r.solved)}/{int(r.seeds)}"
                        + (f" †{int(r.diverged)}" if r.diverged else "")
                        for r in sub.itertuples()
                    ]
                )
                .pivot(index="variant", columns="length", values="label")
                .reindex(names)
            )
            text = text.astype(object).where(text.notna(), "n/a")
            sns.heatmap(
                rate.astype(float),
                ax=ax,
                vmin=0,
                vmax=1,
                cmap="viridis",
                annot=text.to_numpy(),
                fmt="",
                cbar=j == len(tasks) - 1,
                linewidths=0.5,
                linecolor="white",
                cbar_kws={"label": "solved rate (fraction of seeds)"},
                annot_kws={"size": 8},
            )
            ax.set_title(f"{task}")
            ax.set_xlabel("sequence length T (steps)")
            ax.set_ylabel("variant" if j == 0 else "")
            ax.tick_params(axis="y", rotation=0)
        return _save(fig, out_stem)


def _diverged_marks(ax, x, label: bool, colour) -> None:
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    ax.scatter(
        x,
        np.full(len(x), 0.97),
        transform=trans,
        marker="x",
        color=colour,
        s=30,
        clip_on=False,
        label="diverged run" if label else None,
    )


def loss_ratio(
    runs: pd.DataFrame, out_stem: str | Path, *, palette: Mapping[str, dict] | None = None, **_
) -> list[Path]:
    """Final loss / baseline loss against length per variant (mean over seeds; dots are
    seeds; x at the top marks a diverged run)."""
    if not len(runs):
        return _empty_figure(out_stem, "no training runs in this grid")
    styles = _styles(palette, runs)
    tasks = sorted(runs["task"].unique())
    names = sorted(runs["variant"].unique())
    with _theme():
        fig, axes = _subplots(
            1,
            len(tasks),
            figsize=(4.5 * len(tasks) + 1.8, 3.6),
            squeeze=False,
            layout="constrained",
        )
        for j, task in enumerate(tasks):
            ax = axes[0, j]
            sub = runs[runs["task"] == task]
            ok = sub[np.isfinite(sub["loss_ratio"].astype(float)) & (sub["status"] != "diverged")]
            for name, g in ok.groupby("variant", sort=True):
                st = styles[name]
                m = g.groupby("length")["loss_ratio"].mean()
                ax.plot(
                    m.index,
                    m.to_numpy(),
                    color=st["color"],
                    linestyle=st["linestyle"],
                    marker=st["marker"],
                    ms=5,
                    label=name,
                )
                ax.scatter(g["length"], g["loss_ratio"], color=st["color"], s=8, alpha=0.5)
            div = sub[sub["status"] == "diverged"]
            if len(div):
                _diverged_marks(ax, div["length"].to_numpy(float), True, "black")
            ax.axhline(1.0, color="0.3", lw=0.9, linestyle=":")
            _log_if_wide(ax, ok["loss_ratio"], span=5)
            _lengths_axis(ax, sub["length"])
            ax.set_title(task)
            ax.set_xlabel("sequence length T (steps)")
            ax.set_ylabel("final loss / baseline loss" if j == 0 else "")
        handles = _legend_handles(names, styles, marker=True)
        handles.append(Line2D([], [], color="0.3", linestyle=":", label="baseline (input-blind)"))
        if (runs["status"] == "diverged").any():
            handles.append(Line2D([], [], color="black", marker="x", lw=0, label="diverged run"))
        fig.legend(handles=handles, loc="outside right upper")
        return _save(fig, out_stem)


def learning_curves(
    curves: pd.DataFrame,
    runs: pd.DataFrame,
    out_stem: str | Path,
    *,
    palette: Mapping[str, dict] | None = None,
    **_,
) -> list[Path]:
    """Evaluation metric over training at the longest trained length per task, one thin
    line per seed; the dotted line is the solve threshold; x marks a divergence."""
    if not len(curves):
        return _empty_figure(out_stem, "no training runs in this grid")
    styles = _styles(palette, curves)
    df = _at_longest(curves)
    df = df[np.isfinite(df["metric"].astype(float))]
    tasks = sorted(df["task"].unique())
    names = sorted(df["variant"].unique())
    with _theme():
        fig, axes = _subplots(
            1,
            len(tasks),
            figsize=(4.6 * len(tasks) + 1.8, 3.6),
            squeeze=False,
            layout="constrained",
        )
        for j, task in enumerate(tasks):
            ax = axes[0, j]
            sub = df[df["task"] == task]
            length = int(sub["length"].max())
            for (name, _seed), g in sub.groupby(["variant", "seed"], sort=True):
                st = styles[name]
                ax.plot(
                    g["step"],
                    g["metric"],
                    color=st["color"],
                    linestyle=st["linestyle"],
                    lw=1.0,
                    alpha=0.85,
                )
            meta = runs[(runs["task"] == task) & (runs["length"] == length)]
            div = meta[meta["status"] == "diverged"]
            if len(div):
                _diverged_marks(ax, div["steps_done"].to_numpy(float), False, "black")
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
        handles = _legend_handles(names, styles)
        handles.append(Line2D([], [], color="0.3", linestyle=":", label="solve threshold"))
        if (runs["status"] == "diverged").any():
            handles.append(Line2D([], [], color="black", marker="x", lw=0, label="diverged"))
        fig.legend(handles=handles, loc="outside right upper")
        return _save(fig, out_stem)


def _clip_pairs(runs: pd.DataFrame) -> list[tuple[str, str | None]]:
    # (clipped variant, the variant identical but for clipping): at most one pair per
    # cell, preferring the plainest one (default init, no constraint).
    keys = ["cell", "init", "constraint", "hidden_size"]
    v = runs.drop_duplicates("variant").set_index("variant")
    clipped = v[v["clip_norm"].notna()]
    clipped = clipped.assign(
        plain=(clipped["init"] != "default").astype(int) + (clipped["constraint"] != "none")
    ).sort_values(["plain"], kind="stable")
    pairs, cells = [], set()
    for name in clipped.index:
        if v.at[name, "cell"] in cells:
            continue
        cells.add(v.at[name, "cell"])
        twin = [
            n
            for n in sorted(v.index[v["clip_norm"].isna()])
            if all(str(v.at[n, k]) == str(v.at[name, k]) for k in keys)
        ]
        pairs.append((name, twin[0] if twin else None))
    return pairs


def grad_norm(
    curves: pd.DataFrame,
    runs: pd.DataFrame,
    out_stem: str | Path,
    *,
    palette: Mapping[str, dict] | None = None,
    **_,
) -> list[Path]:
    """Global gradient norm (before clipping) over training, with and without clipping.

    Rows pair a clipped variant with its unclipped twin (one pair per cell, the
    plainest); longest length per task, lowest seed. Light: every step; dark: a
    rolling median; dashed: the clipping threshold.
    """
    pairs = _clip_pairs(runs) if len(runs) else []
    if not pairs:
        return _empty_figure(out_stem, "no variant with gradient clipping in this grid")
    styles = _styles(palette, curves)
    df = _at_longest(curves)
    tasks = sorted(df["task"].unique())
    clip = runs.drop_duplicates("variant").set_index("variant")["clip_norm"]
    with _theme():
        fig, axes = _subplots(
            len(pairs),
            len(tasks),
            figsize=(4.6 * len(tasks) + 2.6, 2.8 * len(pairs)),
            squeeze=False,
            layout="constrained",
            sharex="col",
        )
        for i, pair in enumerate(pairs):
            for j, task in enumerate(tasks):
                ax = axes[i, j]
                handles = []
                for name in [n for n in pair if n is not None]:
                    g = df[(df["task"] == task) & (df["variant"] == name)]
                    if not len(g):
                        continue
                    g = g[g["seed"] == g["seed"].min()].sort_values("step")
                    st = styles[name]
                    norm = g["grad_norm"].astype(float).where(np.isfinite(g["grad_norm"]))
                    window = max(1, len(g) // 50)
                    smooth = norm.rolling(window, center=True, min_periods=1).median()
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
                        _diverged_marks(ax, np.array([last], float), False, st["color"])
                        handles.append(
                            Line2D(
                                [],
                                [],
                                color=st["color"],
                                marker="x",
                                lw=0,
                                label=f"{name} diverged",
                            )
                        )
                c = float(clip[pair[0]])
                ax.axhline(c, color=styles[pair[0]]["color"], linestyle="--", lw=1.0)
                handles.append(
                    Line2D(
                        [],
                        [],
                        color=styles[pair[0]]["color"],
                        linestyle="--",
                        label=f"clip threshold {c:g}",
                    )
                )
                ax.set_yscale("log")
                length = int(df.loc[df["task"] == task, "length"].max())
                ax.set_title(f"{task}, T = {length}: " + " vs ".join(n for n in pair if n))
                ax.set_xlabel("training step" if i == len(pairs) - 1 else "")
                ax.set_ylabel("global gradient norm\n(before clipping)" if j == 0 else "")
                ax.legend(handles=handles, fontsize=8, loc="best", frameon=True, framealpha=0.85)
        return _save(fig, out_stem)


def spectra(
    spectra: pd.DataFrame,
    out_stem: str | Path,
    *,
    palette: Mapping[str, dict] | None = None,
    **_,
) -> list[Path]:
    """Spectral norm and spectral radius of W_hh over training (the largest over gate
    blocks, median over seeds), at the longest length per task."""
    if not len(spectra):
        return _empty_figure(out_stem, "no weight spectra in this grid")
    styles = _styles(palette, spectra)
    df = _at_longest(spectra)
    per_run = (
        df.groupby(["task", "length", "variant", "seed", "probe_step"])[
            ["spectral_norm", "spectral_radius"]
        ]
        .max()
        .reset_index()
    )
    med = per_run.groupby(["task", "variant", "probe_step"])[["spectral_norm", "spectral_radius"]]
    med = med.median().reset_index()
    tasks = sorted(med["task"].unique())
    names = sorted(med["variant"].unique())
    labels = {
        "spectral_norm": r"spectral norm $\|W_{hh}\|_2$",
        "spectral_radius": r"spectral radius $\rho(W_{hh})$",
    }
    with _theme():
        fig, axes = _subplots(
            2,
            len(tasks),
            figsize=(4.6 * len(tasks) + 1.8, 5.6),
            squeeze=False,
            layout="constrained",
            sharex="col",
        )
        for j, task in enumerate(tasks):
            sub = med[med["task"] == task]
            length = int(df.loc[df["task"] == task, "length"].max())
            for i, column in enumerate(labels):
                ax = axes[i, j]
                for name, g in sub.groupby("variant", sort=True):
                    st = styles[name]
                    ax.plot(
                        g["probe_step"],
                        g[column],
                        color=st["color"],
                        linestyle=st["linestyle"],
                        marker=st["marker"],
                        ms=4,
                    )
                ax.axhline(1.0, color="0.3", lw=0.9, linestyle=":")
                _log_if_wide(ax, sub[column], span=10)
                ax.set_title(f"{task}, T = {length}")
                ax.set_ylabel(labels[column] + "\n(largest gate block)" if j == 0 else "")
                ax.set_xlabel("training step" if i == 1 else "")
        fig.legend(handles=_legend_handles(names, styles, marker=True), loc="outside right upper")
        return _save(fig, out_stem)


def cost(
    cost: pd.DataFrame, out_stem: str | Path, *, palette: Mapping[str, dict] | None = None, **_
) -> list[Path]:
    """Milliseconds per training step against length per variant (labelled with its
    cell), and the peak memory of the training job when benchmarks exist."""
    if not len(cost):
        return _empty_figure(out_stem, "no training runs in this grid")
    styles = _styles(palette, cost)
    tasks = sorted(cost["task"].unique())
    names = sorted(cost["variant"].unique())
    cell = dict(zip(cost["variant"], cost["cell"], strict=False))
    rows = [("seconds_per_step", "milliseconds per training step", 1e3)]
    if np.isfinite(cost["max_rss_mb"].astype(float)).any():
        rows.append(("max_rss_mb", "peak resident memory of the job (MB)", 1.0))
    with _theme():
        fig, axes = _subplots(
            len(rows),
            len(tasks),
            figsize=(4.5 * len(tasks) + 2.4, 3.2 * len(rows)),
            squeeze=False,
            layout="constrained",
            sharex="col",
        )
        for j, task in enumerate(tasks):
            sub = cost[cost["task"] == task]
            for i, (column, label, scale) in enumerate(rows):
                ax = axes[i, j]
                for name, g in sub.groupby("variant", sort=True):
                    st = styles[name]
                    g = g.sort_values("length")
                    ax.plot(
                        g["length"],
                        g[column].astype(float) * scale,
                        color=st["color"],
                        linestyle=st["linestyle"],
                        marker=st["marker"],
                        ms=5,
                    )
                _log_if_wide(ax, sub[column].astype(float), span=8)
                _lengths_axis(ax, sub["length"])
                ax.set_title(task)
                ax.set_ylabel(label if j == 0 else "")
                ax.set_xlabel("sequence length T (steps)" if i == len(rows) - 1 else "")
        handles = _legend_handles(names, styles, marker=True)
        for h in handles:
            h.set_label(f"{h.get_label()} ({cell.get(h.get_label(), '?')})")
        fig.legend(handles=handles, loc="outside right upper")
        return _save(fig, out_stem)


# --------------------------------------------------------------------------- registry

FIGURES: dict[str, Callable[..., list[Path]]] = {
    "decay_init": decay_init,
    "decay_train": decay_train,
    "decay_rate": decay_rate,
    "success": success,
    "loss_ratio": loss_ratio,
    "learning_curves": learning_curves,
    "grad_norm": grad_norm,
    "spectra": spectra,
    "cost": cost,
}


def _table_params(fn: Callable) -> tuple[str, ...]:
    return tuple(p for p in inspect.signature(fn).parameters if p in TABLES)


# The tables each figure reads (its inputs in the workflow).
FIGURE_TABLES: dict[str, tuple[str, ...]] = {
    name: _table_params(fn) for name, fn in FIGURES.items()
}


def make_figure(
    name: str,
    tables_dir: str | Path,
    out_stem: str | Path,
    config: Mapping | None = None,
) -> list[Path]:
    """Draw figure `name` from the tables in tables_dir; write `{out_stem}.png` and `.svg`.

    Args:
        name: a key of FIGURES.
        tables_dir: folder of the aggregated tables (`{table}.parquet`).
        out_stem: output path without extension.
        config: the experiment config; its variant names fix the colours (and its
            variants replace the `variants` table). Without it, the tables' names do.

    Returns:
        The paths written (png, svg).

    Raises:
        ValueError: unknown figure name (the message lists the names).
        FileNotFoundError: a table the figure needs is missing (names its path).
    """
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; figures are {sorted(FIGURES)}")
    fn = FIGURES[name]
    tables = {t: read_table(tables_dir, t) for t in FIGURE_TABLES[name]}
    if "variants" in tables and config and config.get("variants"):
        tables["variants"] = variants_table(config)
    names = set(config.get("variants") or {}) if config else set()
    for df in tables.values():
        if "variant" in df.columns:
            names |= set(df["variant"].astype(str))
    Path(out_stem).parent.mkdir(parents=True, exist_ok=True)
    return fn(**tables, out_stem=out_stem, palette=variant_styles(names))
