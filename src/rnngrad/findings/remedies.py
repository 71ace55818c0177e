"""What the remedies do: clipping against its unclipped twin, the growth of the
recurrent weights' spectra per run, each mitigation against its baseline on the same
tasks, lengths and seeds, and what a training step costs per cell."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from rnngrad.columns import RUN_KEYS
from rnngrad.findings._common import (
    VARIANT_KEYS,
    at_longest,
    find_variant,
    first_and_last_probe,
    same_value,
    settings,
)
from rnngrad.findings.decay import init_decay
from rnngrad.findings.outcomes import critical_length

__all__ = [
    "twin",
    "clipping_effect",
    "spectral_growth",
    "constraint_check",
    "REMEDIES",
    "mitigation_gains",
    "CostSummary",
    "cost_by_cell",
    "KernelUse",
    "kernel_use",
]


def twin(variants: pd.DataFrame, name: str) -> str | None:
    """The unclipped variant identical to `name` but for clipping, or None."""
    v = settings(variants)
    row = v[v["variant"] == name]
    if not len(row):
        return None
    row = row.iloc[0]
    keys = [k for k in VARIANT_KEYS if k in v.columns]
    hit = [
        r["variant"]
        for _, r in v[v["clip_norm"].isna() & (v["variant"] != name)].iterrows()
        if all(same_value(r[k], row[k]) for k in keys)
    ]
    return sorted(hit)[0] if hit else None


def _paired(runs: pd.DataFrame, a: str, b: str | None) -> pd.DataFrame:
    # runs of a and b on the same (task, length, seed), side by side (suffixes _a, _b)
    keys = ["task", "length", "seed"]
    ra = runs[runs["variant"] == a]
    if b is None:
        return ra.add_suffix("_a").rename(columns={f"{k}_a": k for k in keys})
    rb = runs[runs["variant"] == b]
    return ra.merge(rb, on=keys, suffixes=("_a", "_b"))


def clipping_effect(runs: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """Every trained variant with clipping against its unclipped twin.

    One row per clipped variant: twin (None when the grid has none), clip_norm,
    clipped_share (share of its training steps whose gradient norm passed the
    threshold), pairs (runs of both on the same task, length and seed; without a twin,
    the variant's own runs), solved, solved_twin, diverged, diverged_twin (counts over
    those runs; NaN for the twin when there is none).
    """
    cols = ["variant", "twin", "clip_norm", "clipped_share", "pairs", "solved", "solved_twin",
            "diverged", "diverged_twin"]  # fmt: skip
    r = runs
    c = curves
    v = settings(r)
    rows = []
    for name in v.loc[v["clip_norm"].notna(), "variant"]:
        other = twin(v, name)
        p = _paired(r, name, other)
        steps = c.loc[c["variant"] == name, "clipped"].astype(float)
        rows.append(
            {
                "variant": name,
                "twin": other,
                "clip_norm": float(v.loc[v["variant"] == name, "clip_norm"].iloc[0]),
                "clipped_share": float(steps.mean()) if len(steps) else math.nan,
                "pairs": len(p),
                "solved": int((p["status_a"] == "solved").sum()),
                "solved_twin": int((p["status_b"] == "solved").sum()) if other else math.nan,
                "diverged": int((p["status_a"] == "diverged").sum()),
                "diverged_twin": int((p["status_b"] == "diverged").sum()) if other else math.nan,
            }
        )
    return pd.DataFrame(rows, columns=cols)


def spectral_growth(spectra: pd.DataFrame) -> pd.DataFrame:
    """Growth of the largest spectral norm of the recurrent blocks over one run.

    Per run (task, length, variant, seed), never across runs: the largest spectral
    norm over gate blocks at the run's first and at its last probe step, and growth =
    last / first. Runs probed once are left out.
    """
    cols = [*RUN_KEYS, "first_step", "last_step", "norm_first", "norm_last", "growth"]
    s = spectra
    if not len(s):
        return pd.DataFrame(columns=cols)
    per = s.groupby([*RUN_KEYS, "probe_step"], sort=True)["spectral_norm"].max().reset_index()
    rows = [
        {
            **run,
            "norm_first": float(a["spectral_norm"]),
            "norm_last": float(b["spectral_norm"]),
            "growth": float(b["spectral_norm"] / a["spectral_norm"]),
        }
        for run, a, b in first_and_last_probe(per)
    ]
    return pd.DataFrame(rows, columns=cols)


def constraint_check(spectra: pd.DataFrame, variants: pd.DataFrame) -> pd.DataFrame:
    """For each variant with the orthogonal constraint: the largest |spectral norm - 1|
    of its recurrent weight over every probe of every run (0 when it held exactly)."""
    v = settings(variants)
    names = v.loc[v["constraint"] == "orthogonal", "variant"] if len(v) else []
    s = spectra
    rows = [
        {"variant": n, "probes": int((s["variant"] == n).sum()),
         "deviation": float((s.loc[s["variant"] == n, "spectral_norm"] - 1).abs().max())}
        for n in names
        if (s["variant"] == n).any()
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["variant", "probes", "deviation"])


# remedy, its settings (cell, init, constraint), its baseline's settings, citation keys
REMEDIES = [
    ("forget bias 1", ("lstm", "forget_bias", "none"), ("lstm", "default", "none"), "gers2000; @jozefowicz2015"),
    ("chrono", ("lstm", "chrono", "none"), ("lstm", "default", "none"), "tallec2018"),
    ("chrono over forget bias 1", ("lstm", "chrono", "none"), ("lstm", "forget_bias", "none"), "tallec2018"),
    ("orthogonal init (tanh RNN)", ("rnn_tanh", "orthogonal", "none"), ("rnn_tanh", "default", "none"), "saxe2014"),
    ("orthogonal init (LSTM)", ("lstm", "orthogonal", "none"), ("lstm", "default", "none"), "saxe2014"),
    ("orthogonal init (GRU)", ("gru", "orthogonal", "none"), ("gru", "default", "none"), "saxe2014"),
    ("orthogonal constraint", ("rnn_tanh", "default", "orthogonal"), ("rnn_tanh", "default", "none"), "lezcano2019"),
    ("IRNN", ("rnn_relu", "identity", "none"), ("rnn_tanh", "default", "none"), "le2015"),
    ("LRU", ("lru", "default", "none"), ("lstm", "default", "none"), "orvieto2023"),
    ("minGRU", ("mingru", "default", "none"), ("lstm", "default", "none"), "feng2024"),
    ("IndRNN", ("indrnn", "default", "none"), ("lstm", "default", "none"), "li2018"),
]  # fmt: skip


def _flag(x) -> bool:
    return False if pd.isna(x) else bool(x)


def _pick(v: pd.DataFrame, spec: tuple, like: str | None = None, clipped: bool | None = None):
    return find_variant(v, *spec, clipped=clipped, like=like)


def mitigation_gains(
    runs: pd.DataFrame,
    decay: pd.DataFrame,
    critical: pd.DataFrame | None = None,
    variants: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Each remedy of REMEDIES against its baseline, per task, where both exist.

    The remedy is the unclipped variant with its settings (a clipped one when only
    that exists, and then a clipped baseline when there is one), the baseline the
    variant of the baseline's settings with the same width. Training is compared on
    the runs of both on the same task, length and seed (pairs, solved, solved_base,
    gain = (solved - solved_base) / pairs); the decay at initialisation at the task's
    longest probed length (rate, rate_base: medians over seeds; horizon, horizon_base
    and their censored flags); the critical lengths (critical, critical_base as `reach`
    of `critical_length`: 0 when the first length failed, inf when censored).
    """
    cols = ["remedy", "variant", "baseline", "task", "cite", "pairs", "solved", "solved_base",
            "gain", "rate", "rate_base", "horizon", "horizon_censored", "horizon_base",
            "horizon_base_censored", "critical", "critical_base"]  # fmt: skip
    r = runs
    v = settings(variants if variants is not None and len(variants) else r)
    dec = init_decay(decay, variants)
    dec = dec[dec["longest"]] if len(dec) else dec
    crit = (
        critical_length(critical).set_index(["task", "variant"])["reach"]
        if critical is not None
        else pd.Series(dtype=float)
    )
    rows = []
    for remedy, spec, base_spec, cite in REMEDIES:
        name = _pick(v, spec, clipped=False) or _pick(v, spec, clipped=None)
        if name is None:
            continue
        clipped = bool(v.loc[v["variant"] == name, "clip_norm"].notna().iloc[0])
        base = (_pick(v, base_spec, like=name, clipped=True) if clipped else None) or _pick(
            v, base_spec, like=name
        )
        if base is None:
            continue
        tasks = sorted(
            set(r.loc[r["variant"].isin([name, base]), "task"])
            | set(dec.loc[dec["variant"].isin([name, base]), "task"])
        )
        for task in tasks:
            p = _paired(r[r["task"] == task], name, base)
            d = dec[dec["task"] == task].set_index("variant")

            def at(col, who, d=d):
                return d.at[who, col] if who in d.index else math.nan

            solved, solved_b = (
                int((p["status_a"] == "solved").sum()),
                int((p["status_b"] == "solved").sum()),
            )
            rows.append(
                {
                    "remedy": remedy, "variant": name, "baseline": base, "task": task, "cite": cite,
                    "pairs": len(p), "solved": solved, "solved_base": solved_b,
                    "gain": (solved - solved_b) / len(p) if len(p) else math.nan,
                    "rate": at("rate", name), "rate_base": at("rate", base),
                    "horizon": at("horizon", name), "horizon_censored": _flag(at("horizon_censored", name)),
                    "horizon_base": at("horizon", base), "horizon_base_censored": _flag(at("horizon_censored", base)),
                    "critical": crit.get((task, name), math.nan), "critical_base": crit.get((task, base), math.nan),
                }
            )  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


@dataclass
class CostSummary:
    """Time per training step by cell at each task's longest trained length."""

    by_cell: pd.DataFrame = field(default_factory=pd.DataFrame)  # task, length, cell, ms, ratio
    devices: list[str] = field(default_factory=list)
    threads: list[int] = field(default_factory=list)


def cost_by_cell(cost: pd.DataFrame) -> CostSummary:
    """Milliseconds per training step per cell (mean over its variants) at the longest
    trained length of each task, and the ratio to the fastest cell there."""
    c = cost
    out = CostSummary()
    if not len(c):
        out.by_cell = pd.DataFrame(columns=["task", "length", "cell", "ms_per_step", "ratio"])
        return out
    c = at_longest(c.assign(ms_per_step=1e3 * c["seconds_per_step"].astype(float)))
    by = c.groupby(["task", "length", "cell"], sort=True)["ms_per_step"].mean().reset_index()
    by["ratio"] = by["ms_per_step"] / by.groupby("task")["ms_per_step"].transform("min")
    out.by_cell = by.sort_values(["task", "ms_per_step"], ignore_index=True)
    out.devices = sorted(
        {d for s in cost["device"].dropna().astype(str) for d in s.split(",") if d}
    )
    out.threads = sorted({int(t) for t in cost["threads"].dropna()})
    return out


def largest_gain(gains: pd.DataFrame) -> dict | None:
    """The row of `mitigation_gains` with the largest gain in solved runs (the first in
    table order on a tie), or None when no remedy was paired with its baseline."""
    g = gains.dropna(subset=["gain"]) if len(gains) else gains
    if not len(g):
        return None
    return g.loc[g["gain"].idxmax()].to_dict()


@dataclass
class KernelUse:
    """minGRU's runs on a CPU, and those that trained without its compiled kernel."""

    runs: int = 0
    fallbacks: int = 0
    reasons: list[str] = field(default_factory=list)  # each distinct reason, sorted


def kernel_use(runs: pd.DataFrame) -> KernelUse:
    """Which minGRU runs on a CPU trained on the torch fallback (a non-empty
    `scan_reason`, rnngrad.native.why_unavailable) instead of the compiled kernel."""
    cpu = runs[(runs["cell"] == "mingru") & (runs["device"].astype(str) == "cpu")]
    why = cpu["scan_reason"].fillna("").astype(str)
    fell = why[why != ""]
    return KernelUse(len(cpu), len(fell), sorted(set(fell)))
