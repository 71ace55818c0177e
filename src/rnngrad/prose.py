"""Numbers, counts, lists and tables for the report's prose (no torch).

Every value the report prints inline goes through one of these, so a missing value
reads "n/a" (never nan, None or <NA>), a count agrees with its noun, and a table is
a Markdown pipe table (a text/html table would make Quarto load scripts from a CDN).
Plurals and English lists come from `inflect`, tables from pandas' `to_markdown`.
The sentences themselves are in report/prose.md.j2 (rnngrad.sentences), which uses
these as filters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import inflect
import numpy as np
import pandas as pd

__all__ = [
    "NA",
    "missing",
    "fmt",
    "pct",
    "counted",
    "listing",
    "code",
    "codes",
    "interval",
    "length_bound",
    "steps_budget",
    "grouped",
    "reach",
    "table",
    "decay_rows",
    "success_rows",
    "critical_rows",
    "mitigation_rows",
]

NA = "n/a"
_ENGINE = inflect.engine()
_SUPERSCRIPT = str.maketrans(
    "-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"
)


def missing(x) -> bool:
    """True for None, NaN, pandas' NA/NaT and infinities."""
    if x is None:
        return True
    try:
        if pd.isna(x):
            return True
    except (TypeError, ValueError):  # lists, arrays
        return False
    return isinstance(x, float | np.floating) and not math.isfinite(float(x))


def fmt(x, digits: int = 3, na: str = NA) -> str:
    """A number for prose: `digits` significant digits, powers of ten in Unicode.

    Example:
        >>> fmt(0.012345), fmt(12345.6), fmt(1.5), fmt(3.2e-7), fmt(7), fmt(float("nan"))
        ('0.0123', '12,300', '1.5', '3.20 × 10⁻⁷', '7', 'n/a')
    """
    if isinstance(x, str):
        return x
    if missing(x):
        return na
    if isinstance(x, bool | np.bool_):
        return "yes" if x else "no"
    if isinstance(x, int | np.integer):
        return f"{int(x):,}"
    x = float(x)
    if x == 0:
        return "0"
    if abs(x) >= 1e6 or abs(x) < 1e-3:
        mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
        return f"{mantissa} \u00d7 10{str(int(exponent)).translate(_SUPERSCRIPT)}"
    if x == round(x) and abs(x) >= 1:
        return f"{int(round(x)):,}"
    magnitude = math.floor(math.log10(abs(x)))
    if magnitude >= digits - 1:  # more integer digits than significant ones
        return f"{round(x, digits - 1 - magnitude):,.0f}"
    text = f"{x:,.{max(digits - 1 - magnitude, 0)}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def pct(x, na: str = NA) -> str:
    """A share as a whole percentage: pct(0.456) == '46%'; 99.96% reads '>99.9%'."""
    if missing(x):
        return na
    x = float(x)
    if 0.999 < x < 1:
        return ">99.9%"
    if 0 < x < 0.001:
        return "<0.1%"
    return f"{100 * x:.0f}%"


def counted(n, noun: str) -> str:
    """'1 seed', '3 seeds', 'no runs'; a count given as text (a range) takes the plural."""
    if isinstance(n, str):
        return f"{n} {_ENGINE.plural(noun)}"
    if missing(n):
        return f"{NA} {_ENGINE.plural(noun)}"
    n = int(n)
    return _ENGINE.no(noun, n) if n == 0 else f"{n:,} {_ENGINE.plural(noun, n)}"


def listing(items: Iterable, empty: str = "none", conj: str = "and") -> str:
    """An English list: 'a', 'a and b', 'a, b and c' (no serial comma)."""
    items = [str(i) for i in items]
    if not items:
        return empty
    return _ENGINE.join(items, conj=conj, final_sep="")


def code(name) -> str:
    """A name as inline code (Markdown); n/a when missing."""
    return NA if missing(name) else f"`{name}`"


def codes(names: Iterable, empty: str = "none") -> str:
    """An English list of names as inline code."""
    return listing((code(n) for n in names), empty)


def interval(mean, low, high, digits: int = 3) -> str:
    """'0.52 [0.31, 0.74]'; the interval reads n/a when it is missing (one seed)."""
    if missing(low) or missing(high):
        return f"{fmt(mean, digits)} [{NA}]"
    return f"{fmt(mean, digits)} [{fmt(low, digits)}, {fmt(high, digits)}]"


def length_bound(value, censored: bool = False, none: str = "none") -> str:
    """A length in steps, '≥ v' when censored (a lower bound), `none` when missing."""
    if missing(value):
        return none
    return f"\u2265 {fmt(value)}" if censored else fmt(value)


def steps_budget(steps: dict) -> str:
    """Step budgets per task and length (findings.Budget.steps) in words: '2,500 steps'
    when every run has it, else e.g. '2,000 to 4,000 steps on adding (by length) and
    3,000 on copy'."""
    if not steps:
        return NA

    def span(per: dict, unit: bool) -> str:
        lo, hi = min(per.values()), max(per.values())
        text = counted(lo, "step") if unit else fmt(lo)
        if lo != hi:
            text = f"{fmt(lo)} to {counted(hi, 'step') if unit else fmt(hi)} (by length)"
        return text

    values = {v for per in steps.values() for v in per.values()}
    if len(values) == 1:
        return counted(values.pop(), "step")
    (t0, p0), *rest = sorted(steps.items())
    return listing([f"{span(p0, True)} on {t0}", *(f"{span(p, False)} on {t}" for t, p in rest)])


def grouped(pairs: Iterable[tuple[str, str]], sep: str = "; ") -> str:
    """(name, value text) pairs as 'value for `a` and `b`; other for `c`', the values in
    order of first appearance."""
    groups: dict[str, list[str]] = {}
    for name, value in pairs:
        groups.setdefault(value, []).append(name)
    return sep.join(f"{value} for {codes(names)}" for value, names in groups.items()) or "none"


def _cell(value, digits: int) -> str:
    if isinstance(value, str):
        return value
    return fmt(value, digits)


def table(df: pd.DataFrame, digits: int = 3, empty: str = "nothing to show") -> str:
    """A Markdown pipe table of `df` (index dropped), every value through `fmt`.

    Example:
        >>> print(table(pd.DataFrame({"variant": ["rnn"], "rate": [float("nan")]})))
        | variant   | rate   |
        |:----------|:-------|
        | rnn       | n/a    |
    """
    if df is None or not len(df):
        return f"| note |\n|:--|\n| {empty} |"
    shown = pd.DataFrame({c: [_cell(v, digits) for v in df[c].astype(object)] for c in df.columns})
    return shown.to_markdown(index=False, disable_numparse=True)


# ------------------------------------------------------------- findings as table rows


def reach(x) -> str:
    """A critical length as `reach` (findings.critical_length): inf reads 'whole grid',
    0 'none' (even the first length failed)."""
    if missing(x) and not (isinstance(x, float) and math.isinf(x)):
        return NA
    if math.isinf(float(x)):
        return "whole grid"
    return "none" if float(x) == 0 else fmt(x)


def decay_rows(decay: pd.DataFrame) -> pd.DataFrame:
    """findings.init_decay rows for a table: horizons with their censoring."""
    if not len(decay):
        return decay
    d = decay.assign(
        horizon=[
            length_bound(h, c)
            for h, c in zip(decay["horizon"], decay["horizon_censored"], strict=True)
        ]
    )
    cols = {"censored_share": "censored", "bound_share": "bound held", "tenfold": "steps per 10x"}
    return d[
        [
            "task",
            "length",
            "variant",
            "seeds",
            "rate",
            "tenfold",
            "horizon",
            "censored_share",
            "bound_share",
        ]
    ].rename(columns=cols)


def success_rows(success: pd.DataFrame) -> pd.DataFrame:
    """findings.success_by_length rows for a table: solved/seeds (or not attempted),
    the rate and test metric with their intervals."""
    if not len(success):
        return success
    s = success
    out = pd.DataFrame(
        {
            "task": s["task"],
            "T": s["length"],
            "variant": s["variant"],
            "solved": [
                f"{int(a)}/{int(b)}" if o != "not attempted" else o
                for a, b, o in zip(s["solved"], s["seeds"], s["outcome"], strict=True)
            ],
            "rate [95% CI]": [
                interval(*v, digits=2)
                for v in zip(
                    s["solved_rate"], s["solved_rate_ci_low"], s["solved_rate_ci_high"], strict=True
                )
            ],
            "diverged": s["diverged"],
            "test metric [CI]": [
                f"{n}: {interval(*v)}" if isinstance(n, str) else interval(*v)
                for n, *v in zip(
                    s["metric_name"],
                    s["test_metric_mean"],
                    s["test_metric_ci_low"],
                    s["test_metric_ci_high"],
                    strict=True,
                )
            ],
            "loss / baseline": s["test_loss_ratio_median"],
            "steps to solve": s["steps_to_solve_median"],
        }
    )
    return out


def critical_rows(critical: pd.DataFrame) -> pd.DataFrame:
    """findings.critical_length rows for a table."""
    if not len(critical):
        return critical
    c = critical
    out = {
        "task": c["task"],
        "variant": c["variant"],
        "critical length": [
            length_bound(v, k, "none")
            for v, k in zip(c["critical_length"], c["censored"].astype(bool), strict=True)
        ],
        "seeds": [
            f"{fmt(a)}–{fmt(b)}"
            for a, b in zip(c["seed_critical_min"], c["seed_critical_max"], strict=True)
        ],
        "seeds at it / above": [
            f"{int(a)} / {int(b)}" if b else f"{int(a)} / –"
            for a, b in zip(c["seeds_at_critical"], c["seeds_at_failure"], strict=True)
        ],
    }
    for phase, label in (("init", "horizon at init"), ("final", "after training")):
        at = c[f"horizon_{phase}_length"].max()
        label = f"{label} (T = {fmt(at)})"
        out[label] = [
            length_bound(m, f >= 0.5)
            for m, f in zip(
                c[f"horizon_{phase}_median"], c[f"horizon_{phase}_censored"].fillna(0), strict=True
            )
        ]
    return pd.DataFrame(out)


def mitigation_rows(gains: pd.DataFrame) -> pd.DataFrame:
    """findings.mitigation_gains rows for a table: remedy against baseline side by side."""
    if not len(gains):
        return gains
    g = gains
    return pd.DataFrame(
        {
            "remedy": g["remedy"],
            "variant vs baseline": [
                f"{a} vs {b}" for a, b in zip(g["variant"], g["baseline"], strict=True)
            ],
            "task": g["task"],
            "runs solved": [
                f"{a}/{n} vs {b}/{n}" if n else NA
                for a, b, n in zip(g["solved"], g["solved_base"], g["pairs"], strict=True)
            ],
            "critical length": [
                f"{reach(a)} vs {reach(b)}"
                for a, b in zip(g["critical"], g["critical_base"], strict=True)
            ],
            "decay rate at init": [
                f"{fmt(a)} vs {fmt(b)}" for a, b in zip(g["rate"], g["rate_base"], strict=True)
            ],
        }
    )
