"""How fast the gradient vanishes: at initialisation, against the bound, over training.

Each function reads the tables of rnngrad.aggregate (decay, init_profiles) and
returns plain data. Decay rates and horizons are the decay table's (one definition,
rnngrad.measures); here they are only summarised over seeds, per run or per variant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rnngrad.columns import RUN_KEYS
from rnngrad.findings._common import (
    censored_median,
    find_variant,
    first_and_last_probe,
    longest,
    settings,
)
from rnngrad.measures import pooled_share

__all__ = [
    "init_decay",
    "DecayExtremes",
    "decay_extremes",
    "BoundTightness",
    "bound_tightness",
    "decay_change",
    "width_effect",
    "reference_decay",
]


def _cells(variants: pd.DataFrame | None, decay: pd.DataFrame) -> dict[str, str]:
    v = settings(variants if variants is not None and len(variants) else decay)
    return {r.variant: r.cell for r in v.itertuples() if isinstance(r.cell, str)}


def init_decay(decay: pd.DataFrame, variants: pd.DataFrame | None = None) -> pd.DataFrame:
    """Decay at initialisation per task, length and variant, over the seeds.

    Returns one row per (task, length, variant): cell (when `variants` is given), seeds,
    rate (median decay rate over seeds, per step), rate_q1, rate_q3, tenfold (steps per
    tenfold fall, NaN when the norm does not fall), horizon (the lower median of the
    seeds' horizons) and horizon_censored (True when that median is a censored horizon,
    a lower bound), censored_share, max_distance, bound_share (share of (example, step)
    pairs where the per-example bound held, pooled over seeds; NaN without a bound) and
    longest (the row is at its task's longest probed length).
    """
    d = decay[decay["phase"] == "init"]
    cols = [
        "task", "length", "variant", "cell", "seeds", "rate", "rate_q1", "rate_q3",
        "tenfold", "horizon", "horizon_censored", "censored_share", "max_distance",
        "bound_share", "longest",
    ]  # fmt: skip
    if not len(d):
        return pd.DataFrame(columns=cols)
    cells = _cells(variants, d)
    rows = []
    for (task, length, variant), g in d.groupby(["task", "length", "variant"], sort=True):
        rate = g["decay_rate"].astype(float).dropna()
        med = float(rate.median()) if len(rate) else math.nan
        h, cens = censored_median(g["horizon"], g["horizon_censored"].astype(bool))
        rows.append(
            {
                "task": task,
                "length": int(length),
                "variant": variant,
                "cell": cells.get(variant),
                "seeds": int(g["seed"].nunique()),
                "rate": med,
                "rate_q1": float(rate.quantile(0.25)) if len(rate) else math.nan,
                "rate_q3": float(rate.quantile(0.75)) if len(rate) else math.nan,
                "tenfold": -1 / med if med < 0 else math.nan,
                "horizon": h,
                "horizon_censored": cens,
                "censored_share": float(g["horizon_censored"].astype(bool).mean()),
                "max_distance": float(g["max_distance"].astype(float).max()),
                "bound_share": pooled_share(
                    g["bound_share"].astype(float), g["bound_pairs"].astype(float)
                )[0],
            }
        )
    out = pd.DataFrame(rows)
    out["longest"] = out["length"] == out["task"].map(longest(out))
    return out[cols]


@dataclass(frozen=True)
class DecayExtremes:
    """At a task's longest probed length: the slowest decay, and who never fell.

    slowest / slowest_rate: the variant with the largest median decay rate (None / NaN
    without probes); never_fell: the variants whose median horizon is censored, their
    gradient never falling to HORIZON_RATIO of its start within the sequence.
    """

    task: str | None
    length: float
    slowest: str | None
    slowest_rate: float
    never_fell: list[str] = field(default_factory=list)


def decay_extremes(init: pd.DataFrame, task: str | None) -> DecayExtremes:
    """decay_extremes of `init_decay`'s rows for `task` at its longest probed length."""
    rows = init[(init["task"] == task) & init["longest"]] if len(init) else init
    rows = rows.dropna(subset=["rate"]) if len(rows) else rows
    if not len(rows):
        return DecayExtremes(task, math.nan, None, math.nan, [])
    best = rows.sort_values(["rate", "variant"], ascending=[False, True]).iloc[0]
    never = sorted(rows.loc[rows["horizon_censored"].astype(bool), "variant"])
    return DecayExtremes(
        task, float(best["length"]), str(best["variant"]), float(best["rate"]), never
    )


@dataclass
class BoundTightness:
    """The per-example product bound of @eq-bound against the measured ratio.

    Attributes:
        share: share of all (example, step) pairs of the init probes of bounded cells
            where the measured ratio was within the bound (a theorem: expect 1.0).
        pairs: how many pairs that share counts (NaN when the tables lack the count).
        lowest_share: the lowest share of any one probe (variant, length, seed).
        task, length, variant: the profile whose tightness is described (the plain
            cell at its longest probed length).
        by_distance: distance, tightness (median over seeds of the median over
            examples of bound / measured) and tightness_q90 (same for the 90th percentile).
        milestones: by_distance at distances 1, 10, 100, 1000 and the largest.
    """

    share: float = math.nan
    pairs: float = math.nan
    lowest_share: float = math.nan
    task: str | None = None
    length: int | None = None
    variant: str | None = None
    by_distance: pd.DataFrame = field(default_factory=pd.DataFrame)
    milestones: pd.DataFrame = field(default_factory=pd.DataFrame)


def bound_tightness(
    init_profiles: pd.DataFrame,
    decay: pd.DataFrame,
    variants: pd.DataFrame | None = None,
    cell: str = "rnn_tanh",
) -> BoundTightness:
    """How often the per-example bound holds, and how tight it is for `cell`.

    The share pools the decay table's bound_share over every init probe, weighted by
    its bound_pairs.
    The tightness is that of the plain variant of `cell` at the longest probed length
    (the longest task first by name on a tie).
    """
    out = BoundTightness()
    d = decay[(decay["phase"] == "init") & decay["bound_share"].notna()]
    p = init_profiles
    pairs = d["bound_pairs"].astype(float)
    if len(d) and pairs.notna().all() and pairs.sum() > 0:
        out.share, out.pairs = pooled_share(d["bound_share"].astype(float), pairs)
        out.lowest_share = float(d["bound_share"].min())
    name = find_variant(
        variants if variants is not None and len(variants) else p, cell, clipped=None
    )
    prof = p[(p["variant"] == name) & p["tightness"].notna()] if name else p.iloc[:0]
    if not len(prof):
        return out
    top = prof.sort_values(["length", "task"], ascending=[False, True]).iloc[0]
    prof = prof[(prof["task"] == top["task"]) & (prof["length"] == top["length"])]
    out.task, out.length, out.variant = str(top["task"]), int(top["length"]), name
    by = (
        prof[prof["distance"] >= 1]
        .groupby("distance")[["tightness", "tightness_q90"]]
        .median()
        .reset_index()
    )
    out.by_distance = by
    wanted = [d for d in (1, 10, 100, 1000) if d in set(by["distance"])]
    if len(by):
        wanted.append(int(by["distance"].max()))
    out.milestones = by[by["distance"].isin(wanted)].reset_index(drop=True)
    return out


def decay_change(decay: pd.DataFrame) -> pd.DataFrame:
    """Change of the decay rate over training, per run: first against last probe.

    One row per run (task, length, variant, seed) with at least two training probes:
    first_step, last_step, rate_first, rate_last, change (rate_last - rate_first;
    positive: the gradient decays more slowly after training), horizon_first,
    horizon_last, and longest (the run is at its task's longest trained length).
    Never compares probes of different runs.
    """
    d = decay[(decay["phase"] == "train") & decay["probe_step"].notna()]
    cols = [
        *RUN_KEYS, "first_step", "last_step", "rate_first", "rate_last", "change",
        "horizon_first", "horizon_last", "longest",
    ]  # fmt: skip
    rows = [
        {
            **run,
            "rate_first": float(a["decay_rate"]),
            "rate_last": float(b["decay_rate"]),
            "change": float(b["decay_rate"]) - float(a["decay_rate"]),
            "horizon_first": float(a["horizon"]),
            "horizon_last": float(b["horizon"]),
        }
        for run, a, b in first_and_last_probe(d)
    ]
    if not rows:
        return pd.DataFrame(columns=cols)
    out = pd.DataFrame(rows)
    out["longest"] = out["length"] == out["task"].map(longest(out))
    return out[cols]


def width_effect(decay: pd.DataFrame, variants: pd.DataFrame) -> pd.DataFrame:
    """Decay rate at initialisation of variants that differ only in hidden_size.

    One row per (task, variant) of such a family at the longest length probed for all
    of its widths: family (the cell, init and constraint), hidden_size, rate, horizon,
    horizon_censored, and rate_change (against the family's narrowest width).
    """
    cols = ["task", "length", "family", "variant", "hidden_size", "rate", "horizon",
            "horizon_censored", "rate_change"]  # fmt: skip
    v = settings(variants)
    v = v[v["clip_norm"].isna()] if len(v) else v
    stats = init_decay(decay, variants)
    rows = []
    for (cell, init, constraint), fam in v.groupby(["cell", "init", "constraint"], sort=True):
        if fam["hidden_size"].nunique() < 2:
            continue
        fam = fam.sort_values("hidden_size").drop_duplicates("hidden_size")
        s = stats[stats["variant"].isin(fam["variant"])]
        for task, g in s.groupby("task", sort=True):
            full = g.groupby("length")["variant"].nunique()
            full = full[full == len(fam)]
            if not len(full):
                continue
            at = g[g["length"] == full.index.max()].merge(
                fam[["variant", "hidden_size"]], on="variant"
            )
            at = at.sort_values("hidden_size")
            label = (
                cell
                if init == "default" and constraint == "none"
                else f"{cell}, {init}, {constraint}"
            )
            for r in at.itertuples():
                rows.append(
                    {
                        "task": task,
                        "length": int(r.length),
                        "family": label,
                        "variant": r.variant,
                        "hidden_size": int(r.hidden_size),
                        "rate": r.rate,
                        "horizon": r.horizon,
                        "horizon_censored": r.horizon_censored,
                        "rate_change": r.rate - at["rate"].iloc[0],
                    }
                )
    return pd.DataFrame(rows, columns=cols)


def reference_decay(
    gains=(0.5, 0.9, 1.0, 1.5),
    length: int = 60,
    hidden: int = 32,
    distances=(10, 30),
    examples: int = 16,
) -> pd.DataFrame:
    """The decay in numbers on the NumPy reference BPTT (rnngrad.reference): an Elman
    tanh RNN with W_hh = gain x an orthogonal matrix, the loss read at the last step.

    One row per gain: the median over `examples` inputs of ||dL/dh_t|| at each distance
    (and at length - 1) divided by its value at distance 0.
    """
    from rnngrad.reference import ElmanParams, elman_bptt

    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(hidden, hidden)))
    x = rng.normal(size=(examples, length, 2))
    w_ih = rng.normal(size=(hidden, 2)) / np.sqrt(2)
    w_out = rng.normal(size=hidden) / np.sqrt(hidden)
    rows = []
    for gain in gains:
        p = ElmanParams(
            w_ih=w_ih, w_hh=gain * q, b_ih=np.zeros(hidden), b_hh=np.zeros(hidden), w_out=w_out
        )
        res = elman_bptt(x, p, y=np.zeros(examples))
        norms = np.median(np.linalg.norm(res.grad_h, axis=2), axis=0)  # (T,) over examples
        rel = norms[::-1] / norms[-1]  # by distance from the loss
        row = {"gain": float(gain)}
        row.update({f"distance {k}": float(rel[k]) for k in (*distances, length - 1)})
        rows.append(row)
    return pd.DataFrame(rows)
