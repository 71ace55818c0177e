"""Helpers the findings share: column guards, variant look-up by settings, spreads."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rnngrad.columns import RUN_KEYS
from rnngrad.stats import finite_values

# settings that make two variants the same model (clip_norm apart)
VARIANT_KEYS = ["cell", "init", "constraint", "hidden_size", "lr", "r_min", "r_max", "max_phase"]


def longest(df: pd.DataFrame) -> dict[str, int]:
    """The longest length per task of a frame with task and length columns."""
    if not len(df):
        return {}
    return {str(t): int(g["length"].max()) for t, g in df.groupby("task", sort=True)}


def at_longest(df: pd.DataFrame) -> pd.DataFrame:
    """The rows at the longest length of their task."""
    if not len(df):
        return df
    return df[df["length"] == df["task"].map(longest(df))]


def first_and_last_probe(df: pd.DataFrame) -> Iterable[tuple[dict, pd.Series, pd.Series]]:
    """Per run (RUN_KEYS) probed at two steps or more, in order: its keys with first_step
    and last_step, and the rows of its first and its last probe (by probe_step). Never
    pairs probes of different runs."""
    for key, g in df.groupby(RUN_KEYS, sort=True):
        g = g.sort_values("probe_step")
        if g["probe_step"].nunique() < 2:
            continue
        a, b = g.iloc[0], g.iloc[-1]
        run = dict(zip(RUN_KEYS, key, strict=True))
        yield {**run, "first_step": int(a["probe_step"]), "last_step": int(b["probe_step"])}, a, b


def settings(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per variant with its settings (from the runs or the variants table)."""
    cols = [c for c in ["variant", *VARIANT_KEYS, "clip_norm"] if c in frame.columns]
    if not len(frame) or "variant" not in frame.columns:
        return pd.DataFrame(columns=["variant", *VARIANT_KEYS, "clip_norm"])
    out = frame[cols].drop_duplicates("variant").sort_values("variant", ignore_index=True)
    # the LRU's ring settings are in neither the runs nor the variants table
    return out.reindex(columns=["variant", *VARIANT_KEYS, "clip_norm"])


def same_value(a, b) -> bool:
    """Equality where two missing values are equal (NaN, None, NA)."""
    a_missing, b_missing = bool(pd.isna(a)), bool(pd.isna(b))
    if a_missing or b_missing:
        return a_missing and b_missing
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def find_variant(
    variants: pd.DataFrame,
    cell: str,
    init: str = "default",
    constraint: str = "none",
    clipped: bool | None = False,
    like: str | None = None,
) -> str | None:
    """The name of the variant with these settings, or None.

    clipped=None accepts either, preferring no clipping. Among several, the one with
    the width of `like` (a variant name) first, else the commonest width, then by name.
    """
    v = settings(variants)
    if not len(v):
        return None
    hit = v[(v["cell"] == cell) & (v["init"] == init) & (v["constraint"] == constraint)]
    if clipped is not None:
        hit = hit[hit["clip_norm"].notna() == clipped]
    if not len(hit):
        return None
    widths = v["hidden_size"].dropna()
    if like is not None and like in set(v["variant"]):
        width = v.loc[v["variant"] == like, "hidden_size"].iloc[0]
    else:
        width = widths.mode().iloc[0] if len(widths) else None
    hit = hit.assign(
        _width=[0 if same_value(h, width) else 1 for h in hit["hidden_size"]],
        _clip=hit["clip_norm"].notna().astype(int),
    )
    return str(hit.sort_values(["_width", "_clip", "variant"])["variant"].iloc[0])


def censored_median(values: Iterable[float], censored: Iterable[bool]) -> tuple[float, bool]:
    """The lower median of values of which some are lower bounds (censored).

    Censored values sort above every observed one; when the median falls on one, the
    result is that lower bound and the flag says so. NaN values are dropped.
    """
    v = np.asarray(list(values), dtype=float)
    c = np.asarray(list(censored), dtype=bool)
    ok = np.isfinite(v)
    v, c = v[ok], c[ok]
    if not v.size:
        return math.nan, False
    order = np.lexsort((v, c))  # observed first, then censored, each by value
    k = order[(v.size - 1) // 2]
    return float(v[k]), bool(c[k])


def pick(df: pd.DataFrame, **equal) -> dict:
    """The first row of `df` whose columns equal the given values, as a dict ({} when
    none does, so `.get` gives None)."""
    if df is None or not len(df):
        return {}
    mask = pd.Series(True, index=df.index)
    for k, v in equal.items():
        mask &= df[k] == v
    hit = df[mask]
    return hit.iloc[0].to_dict() if len(hit) else {}


@dataclass(frozen=True)
class Spread:
    """The median, smallest and largest of some finite values, and how many there were."""

    median: float
    low: float
    high: float
    n: int


def spread(values: Iterable[float]) -> Spread:
    """Median, minimum and maximum of the finite values (NaN for none)."""
    x = finite_values(values)
    if not x.size:
        return Spread(math.nan, math.nan, math.nan, 0)
    return Spread(float(np.median(x)), float(x.min()), float(x.max()), int(x.size))
