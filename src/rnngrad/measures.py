"""The decay measures of a gradient profile, defined once (NumPy and pandas only, no torch).

A profile is one row per time step with columns `distance` (steps from t to the first
position where the loss is read; negative after it) and `grad_h` (||dL/dh_t||), as
`rnngrad.probes.gradient_profile` writes it. The probes, the tables
(`rnngrad.aggregate`) and the figures all use these definitions:

- decay rate: the least-squares slope of log10 grad_h against distance, over the rows
  with distance >= 0 and a finite, positive norm. A profile a * b**distance has rate
  log10(b): negative when the gradient vanishes, positive when it explodes (Pascanu,
  Mikolov & Bengio 2013 motivate the exponential model: the norm decays like a product
  of Jacobian norms).
- horizon: the largest distance at which grad_h is still at least HORIZON_RATIO of its
  value at distance 0; censored when no row with distance >= 0 fell below that (the true
  horizon is then at least the whole sequence before the first read). A missing or
  non-finite norm counts as fallen.
- bound share: of the (example, step) pairs a profile compared with the per-example
  product bound (columns bound_holds and bound_examples), the share at which the bound
  held. Shares pool by their counts of pairs (`pooled_share`): over a profile's steps,
  and over probes in the findings.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = [
    "HORIZON_RATIO",
    "decay_rate",
    "horizon",
    "decay_summary",
    "bound_summary",
    "pooled_share",
]

HORIZON_RATIO = 1e-3  # horizon: largest distance with grad_h >= 1e-3 of grad_h at distance 0


def _reading_rows(profile: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(distance, grad_h) of the rows with a finite distance >= 0, as floats."""
    d = pd.to_numeric(profile["distance"], errors="coerce").to_numpy(float)
    g = pd.to_numeric(profile["grad_h"], errors="coerce").to_numpy(float)
    keep = np.isfinite(d) & (d >= 0)
    d, g = d[keep], g[keep]
    if np.unique(d).size != d.size:
        raise ValueError(
            "expected one profile (one row per distance); select one seed or probe step first"
        )
    return d, g


def decay_rate(profile: pd.DataFrame) -> float:
    """Least-squares slope of log10(grad_h) against distance (per step).

    Over rows with distance >= 0 and a finite grad_h > 0; NaN with fewer than two.

    Raises:
        ValueError: the frame holds more than one row per distance (several profiles).

    Example:
        >>> p = pd.DataFrame({"distance": range(5), "grad_h": [0.5**k for k in range(5)]})
        >>> round(decay_rate(p), 4)
        -0.301
    """
    d, g = _reading_rows(profile)
    keep = np.isfinite(g) & (g > 0)
    if keep.sum() < 2:
        return math.nan
    return float(np.polyfit(d[keep], np.log10(g[keep]), 1)[0])


def horizon(profile: pd.DataFrame, ratio: float = HORIZON_RATIO) -> tuple[int | float, bool]:
    """The largest distance at which grad_h is still >= ratio * grad_h at distance 0.

    Returns:
        (horizon, censored): the horizon as an int, censored True when no row with
        distance >= 0 fell below the threshold. (NaN, False) when grad_h at distance 0
        is missing, zero or not finite (a diverged model, say).

    Raises:
        ValueError: the frame holds more than one row per distance (several profiles).

    Example:
        >>> p = pd.DataFrame({"distance": range(5), "grad_h": [0.1**k for k in range(5)]})
        >>> horizon(p)
        (3, False)
    """
    d, g = _reading_rows(profile)
    start = g[d == 0]
    if start.size == 0 or not (np.isfinite(start[0]) and start[0] > 0):
        return math.nan, False
    with np.errstate(invalid="ignore"):
        still = g >= ratio * start[0]  # NaN compares False: counted as fallen
    return int(d[still].max()), bool(still.all())


def decay_summary(profile: pd.DataFrame) -> dict:
    """decay_rate, horizon and horizon_censored of one profile, as a dict."""
    h, censored = horizon(profile)
    return {"decay_rate": decay_rate(profile), "horizon": h, "horizon_censored": censored}


def bound_summary(profile: pd.DataFrame) -> dict:
    """Share of a profile's (example, step) pairs at which the product bound held.

    From the columns bound_holds (share of examples per step) and bound_examples (how
    many examples were compared at that step); steps without a bound (NaN) do not count.

    Returns:
        {"bound_share": float, NaN without pairs (e.g. the LSTM), "bound_pairs": int}.
    """
    if "bound_holds" not in profile or "bound_examples" not in profile:
        return {"bound_share": math.nan, "bound_pairs": 0}
    share, pairs = pooled_share(
        pd.to_numeric(profile["bound_holds"], errors="coerce"),
        pd.to_numeric(profile["bound_examples"], errors="coerce"),
    )
    return {"bound_share": share, "bound_pairs": int(pairs)}


def pooled_share(shares, pairs) -> tuple[float, float]:
    """Several shares pooled into one, each weighted by its count of pairs.

    Entries without a finite share or a positive, finite count do not count.

    Returns:
        (share, pairs): the pooled share and the pairs behind it; (NaN, 0.0) without pairs.

    Example:
        >>> pooled_share([1.0, 0.5, float("nan")], [3, 1, 4])
        (0.875, 4.0)
    """
    share = np.asarray(shares, dtype=float)
    n = np.asarray(pairs, dtype=float)
    keep = np.isfinite(share) & np.isfinite(n) & (n > 0)
    total = float(n[keep].sum())
    if total == 0:
        return math.nan, 0.0
    return float((share[keep] * n[keep]).sum() / total), total
