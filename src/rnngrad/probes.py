"""Gradient probes: how dL/dh_t decays with the distance to the loss.

The measurement this benchmark exists for (Hochreiter 1991; Bengio, Simard & Frasconi
1994; Pascanu, Mikolov & Bengio 2013). For a fixed probe batch the network is unrolled
step by step with cells that share the fused module's parameters (`SequenceModel.unroll`)
and, per time step t, we record:

- grad_h: the median and quartiles over examples of ||dL/dh_t||_2, with L the sum over
  examples of the long-range loss (so no 1/B enters), norms taken per example;
- grad_c: the same for the LSTM cell state, the total derivative dL/dc_t (the
  "constant error carousel" of BPTT, including the path through h_t = o_t tanh(c_t));
- jac_norm: the spectral norm of the one-step state Jacobian ds_t/ds_{t-1} along the
  probe trajectory. s = h for every cell but the LSTM, whose s = [h; c] (2H), because
  the full-state Jacobians are what multiply in BPTT (d s_T / d s_t = prod_k
  ds_k/ds_{k-1}); dh_t/dh_{t-1} alone does not compose;
- bound: Pascanu et al.'s bound on ||dL/dh_t|| / ||dL/dh_r||, r the first read,
  prod_{k=t+1}^{r} ||ds_k/ds_{k-1}||_2, per example with that example's own Jacobians.
  Every path from h_t to the loss passes through h_r (the loss is read from r on), so
  dL/dh_t = (dh_r/dh_t)^T dL/dh_r and the bound is a theorem for every cell whose probed
  state is its whole state: all cells but the LSTM (whose bound columns are NaN);
- bound_holds: the share of the Jacobian examples whose measured ratio is at most the
  bound (times 1 + 1e-9 for rounding); it must be 1. tightness, tightness_q90: the
  median and 90th percentile over those examples of bound / measured ratio (>= 1; 1
  when the bound is exact, as for a linear recurrence with W = a Q, Q orthogonal);
  bound_examples: how many examples were compared at the step.

Precision. Every probe computes in float64 on a float64 copy of the model and batch,
whatever the model's dtype (TF32, a float32 mode, never acts), and takes norms scaled,
||g|| = m ||g / m|| with m = max |g_i|: a plain norm squares first and returns 0 below
~1e-162 in float64 (~1e-22 in float32), the scaled one holds down to ~1e-300. The default
tanh RNN's gradient falls ~0.2 decades a step at initialisation, to ~1e-200 at T = 1000.
A float32 model's profile therefore equals its float64 twin's.

Cost. jac_norm and the bound use the first `jac_examples` examples of the probe batch:
JAC_EXAMPLES at initialisation, TRAIN_JAC_EXAMPLES during training. Each norm is an
exact symmetric eigenproblem, sqrt(lambda_max(J J^T)) with J formed analytically (H x H;
2H x 2H for the LSTM), or max |d| for a diagonal Jacobian diag(d); at H = 64 the T
norms of one example cost about as much as the whole unroll and backward pass. Measured
at B = 32, H = 64, T = 1000 on one CPU thread (benchmarks/bench_probe.py --jacobians),
against the one-example float64 probe this module replaced: all 32 examples cost 16x
(rnn_tanh), 9x (gru), 17x (lstm); 4 examples 2.6x, 1.8x, 2.4x; 5 examples 3.0x, 2.0x,
3.0x. JAC_EXAMPLES = 4 is the most that stays within 3x for every cell. During training
2 examples keep probing at ~1 % (rnn) and ~3 % (lstm) of a default run (adding T = 100,
2500 steps, a probe every 500); 4 would take the LSTM's share past 5 %. Krylov
methods (power iteration, Lanczos) are cheaper but not exact when the top singular
values cluster, as they do for an orthogonal W_hh or a chrono-initialised LSTM (errors
up to 1e-3 seen at H = 64), and an inexact norm could put the bound below the measured
ratio.

Nothing here touches the model's parameters, their .grad, optimiser state or the global
random state: the probe differentiates a copy of the model with respect to its hidden
states only, so probing during training leaves the training trajectory unchanged.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from rnngrad import jacobians, tasks
from rnngrad.columns import PROFILE_COLUMNS
from rnngrad.models import SequenceModel, VariantSpec, build_model
from rnngrad.settings import Probes, default

__all__ = [
    "PROFILE_COLUMNS",
    "JAC_EXAMPLES",
    "TRAIN_JAC_EXAMPLES",
    "BOUND_SLACK",
    "gradient_profile",
    "weight_spectra",
    "init_probe",
]

# at initialisation: the config's probes.jac_examples, by default the most within 3x the
# one-example probe's cost
JAC_EXAMPLES = default(Probes, "jac_examples")
TRAIN_JAC_EXAMPLES = 2  # during training, where probes add to every run's time
BOUND_SLACK = 1e-9  # bound_holds: measured ratio <= bound * (1 + BOUND_SLACK)
# A quantile that depends on the empirical distribution only, so duplicating every
# example leaves the profile unchanged (numpy's default "linear" does not).
_QUANTILE = "averaged_inverted_cdf"
_NO_BOUND = ("lstm",)  # cells whose probed h is not their whole state


def gradient_profile(
    model: SequenceModel,
    x: torch.Tensor,
    y: torch.Tensor,
    task: str,
    jac_examples: int | None = JAC_EXAMPLES,
) -> pd.DataFrame:
    """Per-step gradient norms, Jacobian norms and the per-example bound on one probe batch.

    Args:
        model: the model, any dtype and device; the probe runs on a float64 copy of it
            on its device (x and y are moved there).
        x, y: a batch from tasks.make_batch(task, length, ...).
        task: the task's name.
        jac_examples: jac_norm and the bound use the first this many examples (a
            positive integer; None for all). Each example costs one eigenproblem per step.

    Returns:
        one row per time step t of the input, columns PROFILE_COLUMNS: t, distance
        (first read - t; negative after the first read for copy), grad_h (median over
        examples of ||dL/dh_t||), grad_h_q1, grad_h_q3 (quartiles), grad_c, grad_c_q1,
        grad_c_q3 (LSTM cell state; NaN otherwise), jac_norm (median spectral norm of
        ds_t/ds_{t-1}), bound (median per-example bound), bound_holds, tightness,
        tightness_q90 and bound_examples (see the module docstring; NaN, and 0 examples,
        after the first read and for the LSTM). Quantiles are numpy's
        "averaged_inverted_cdf", a function of the empirical distribution: duplicating
        every example (x and y concatenated with themselves) leaves every column but
        bound_examples unchanged.

    Raises:
        ValueError: the model's parameters do not require grad, x does not fit the task,
            or jac_examples is not a positive integer or None.

    Example:
        >>> model = build_model(VariantSpec(cell="gru", hidden_size=8), "adding", seed=0)
        >>> x, y = tasks.make_batch("adding", 20, 4, seed=0, step=0, stream="probe")
        >>> gradient_profile(model, x, y, "adding").shape
        (20, 14)
    """
    r = _probe(model, x, y, task, jac_examples)
    S = r["grad_h"].shape[0]
    nan = np.full(S, np.nan)
    q1, med, q3 = _quartiles(r["grad_h"])
    c1, cmed, c3 = _quartiles(r["grad_c"]) if r["grad_c"] is not None else (nan, nan, nan)
    if r["log_bound"] is not None:
        b = _bound_columns(r["grad_h"][:, : r["jac_norm"].shape[1]], r["log_bound"])
    else:
        b = {"bound": nan, "bound_holds": nan, "tightness": nan, "tightness_q90": nan}
        b["bound_examples"] = np.zeros(S, dtype=np.int64)
    t = np.arange(S)
    return pd.DataFrame(
        {
            "t": t,
            "distance": r["first_read"] - t,
            "grad_h": med,
            "grad_h_q1": q1,
            "grad_h_q3": q3,
            "grad_c": cmed,
            "grad_c_q1": c1,
            "grad_c_q3": c3,
            "jac_norm": _quantiles(r["jac_norm"], [0.5])[0],
            **b,
        },
        columns=list(PROFILE_COLUMNS),
    )


def _quartiles(a: np.ndarray) -> np.ndarray:
    return np.quantile(a, [0.25, 0.5, 0.75], axis=1, method=_QUANTILE)  # (3, S)


def _quantiles(a: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Row quantiles (len(qs), S) of a (S, K), NaN entries left out (NaN for empty rows).

    numpy's "averaged_inverted_cdf" on the valid entries of each row, written out because
    np.nanquantile returns NaN for a quantile between a finite value and inf (0 * inf),
    and tightness is inf where a gradient underflowed to 0.
    """
    a = np.asarray(a, dtype=float)
    S, K = a.shape
    ordered = np.sort(a, axis=1)  # NaN last
    n = (~np.isnan(a)).sum(axis=1)  # (S,)
    rows = np.arange(S)
    out = np.full((len(qs), S), np.nan)
    for i, q in enumerate(qs):
        nq = n * q
        j = np.floor(nq).astype(int)
        hi = ordered[rows, np.clip(np.minimum(j, n - 1), 0, K - 1)]
        lo = ordered[rows, np.clip(j - 1, 0, K - 1)]
        with np.errstate(invalid="ignore"):
            value = np.where(nq > j, hi, 0.5 * lo + 0.5 * hi)  # at a jump: the mid-point
        out[i] = np.where(n > 0, value, np.nan)
    return out


def _bound_columns(grad_h: np.ndarray, log_bound: np.ndarray) -> dict:
    """bound, bound_holds, tightness, tightness_q90, bound_examples from per-example arrays.

    grad_h (S, K): ||dL/dh_t|| of the Jacobian examples; log_bound (S, K): log of each
    example's product bound on ||dL/dh_t|| / ||dL/dh_r||, NaN after the first read r.
    Logs keep a bound of 3**1000 or a ratio of 1e-300 finite.
    """
    r = int(np.sum(~np.isnan(log_bound[:, 0]))) - 1  # the first read: last row with a bound
    with np.errstate(divide="ignore", invalid="ignore"):
        log_g = np.log(grad_h)  # -inf where the gradient is exactly 0
        log_ratio = log_g - log_g[r]  # (S, K); NaN where dL/dh_r is 0 or not finite
        valid = ~np.isnan(log_ratio) & ~np.isnan(log_bound) & np.isfinite(log_g[r])
        holds = log_ratio <= log_bound + math.log1p(BOUND_SLACK)
        log_tight = np.where(valid, log_bound - log_ratio, np.nan)  # NaN when both are -inf
        n = valid.sum(axis=1)
        share = np.where(n > 0, (holds & valid).sum(axis=1) / np.maximum(n, 1), np.nan)
        bound = np.exp(log_bound)
        tight = np.exp(log_tight)
    med, q90 = _quantiles(tight, [0.5, 0.9])
    return {
        "bound": _quantiles(bound, [0.5])[0],
        "bound_holds": share,
        "tightness": med,
        "tightness_q90": q90,
        "bound_examples": n.astype(np.int64),
    }


def _float64_copy(model: SequenceModel) -> SequenceModel:
    """A float64 (complex128) copy of the model on its device; .grad is not copied."""
    # torch's RNN modules keep a list of their weights, which holds a computed (non-leaf)
    # tensor when W_hh is parametrised, and deepcopy refuses non-leaf tensors: the copy
    # starts with an empty list, which RNNBase._apply (below) rebuilds.
    memo = {id(m._flat_weights): [] for m in model.modules() if isinstance(m, torch.nn.RNNBase)}
    twin = copy.deepcopy(model, memo)

    def widen(t: torch.Tensor) -> torch.Tensor:
        if t.is_complex():
            return t.to(torch.complex128)
        return t.to(torch.float64) if t.is_floating_point() else t

    return twin._apply(widen)  # Module.to(float64) would drop a complex tensor's imaginary part


def _norms(g: torch.Tensor) -> torch.Tensor:
    """Per-row 2-norms (..., D) -> (...), scaled: m ||g / m||, m = max |g_i|.

    Exact to rounding wherever m is a normal float (down to ~1e-300 in float64), where
    torch's norm, which squares first, returns 0 below ~1e-154.
    """
    m = g.abs().amax(dim=-1)
    scaled = (g / torch.where(m > 0, m, 1)[..., None]).norm(dim=-1)
    return torch.where(torch.isinf(m), m, m * scaled)  # 0 stays 0, NaN stays NaN


def _probe(model, x, y, task: str, jac_examples: int | None) -> dict:
    """Per-example arrays behind gradient_profile (numpy, float64).

    Returns a dict: grad_h (S, B), grad_c (S, B) or None, jac_norm (S, K), log_bound
    (S, K) or None (NaN after the first read), first_read (int), with K the examples
    used for Jacobians.
    """
    spec = tasks.get_task(task)
    S = x.shape[1]
    length = S - (spec.seq_len(S) - S)  # seq_len is the length plus a constant
    if length < 2 or spec.seq_len(length) != S:
        raise ValueError(f"x has {S} steps, which is no sequence length of task {task!r}")
    if jac_examples is not None and not (
        isinstance(jac_examples, int) and not isinstance(jac_examples, bool) and jac_examples >= 1
    ):
        raise ValueError(f"jac_examples must be a positive integer or None, got {jac_examples!r}")
    first_read = spec.first_read(length)
    model = _float64_copy(model)
    device = next(model.parameters()).device
    x = x.to(device, torch.float64) if x.is_floating_point() else x.to(device)
    y = y.to(device, torch.float64) if y.is_floating_point() else y.to(device)

    with torch.enable_grad():
        out, states = model.unroll(x)
        if not states[0][0].requires_grad:
            raise ValueError("gradient_profile needs model parameters that require grad")
        loss = tasks.long_range_loss(task, out, y).sum()  # no 1/B: per-example gradients
        flat = [s for state in states for s in state]
        grads = torch.autograd.grad(loss, flat, allow_unused=True)
    grads = [torch.zeros_like(s) if g is None else g for s, g in zip(flat, grads, strict=True)]
    n_state = len(states[0])
    norms = _norms(torch.stack(grads)).view(S, n_state, -1).cpu().numpy()  # (S, n, B)

    B = x.shape[0]
    K = B if jac_examples is None else min(jac_examples, B)
    with torch.no_grad():
        sigma = jacobians.state_jacobian_norms(
            model, x[:K], [tuple(s[:K] for s in st) for st in states]
        )
    log_bound = None if model.cell in _NO_BOUND else _log_bound(sigma, first_read)
    return {
        "grad_h": norms[:, 0],
        "grad_c": norms[:, 1] if n_state == 2 else None,
        "jac_norm": sigma,
        "log_bound": log_bound,
        "first_read": first_read,
    }


def _log_bound(sigma: np.ndarray, first_read: int) -> np.ndarray:
    """log prod_{k=t+1}^{first_read} sigma_k for t <= first_read, NaN after (S, K)."""
    S, K = sigma.shape
    out = np.full((S, K), np.nan)
    r = min(first_read, S - 1)
    with np.errstate(divide="ignore"):
        logs = np.log(sigma[1 : r + 1])  # -inf for a zero Jacobian
    out[r] = 0.0
    # reverse cumulative sum: out[t] = log sigma[t+1] + ... + log sigma[r]
    out[:r] = np.cumsum(logs[::-1], axis=0)[::-1]
    return out


# ---------------------------------------------------------------- spectra and summaries


def weight_spectra(model: SequenceModel) -> pd.DataFrame:
    """Spectral norm and spectral radius of each H x H gate block of W_hh.

    Returns:
        columns gate (models.GATE_NAMES order), spectral_norm, spectral_radius.
    """
    with torch.no_grad():
        blocks = {
            gate: block.detach().to(
                "cpu", torch.complex128 if block.is_complex() else torch.float64
            )
            for gate, block in model.recurrent_blocks().items()
        }
    rows = [
        {
            "gate": gate,
            "spectral_norm": float(torch.linalg.matrix_norm(block, ord=2)),
            "spectral_radius": float(torch.linalg.eigvals(block).abs().max()),
        }
        for gate, block in blocks.items()
    ]
    return pd.DataFrame(rows, columns=["gate", "spectral_norm", "spectral_radius"])


def init_probe(
    task: str,
    length: int,
    variant_name: str,
    spec: VariantSpec,
    seeds: int | Sequence[int],
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    jac_examples: int | None = JAC_EXAMPLES,
) -> pd.DataFrame:
    """Gradient profiles at initialisation (no training), one per seed.

    For each seed: build_model(spec, task, length=length, seed=seed), the probe batch
    make_batch(task, length, batch_size, seed, 0, stream="probe") (the probe batch a run
    with that seed uses), gradient_profile.

    Args:
        seeds: a count n (seeds 0..n-1) or the seeds themselves.
        dtype: the model's dtype (None: build_model's float32). The probe computes in
            float64 either way, so the profile does not depend on it.
        jac_examples: examples of the probe batch behind jac_norm and the bound.

    Returns:
        the profiles stacked, columns task, length, variant, seed, then PROFILE_COLUMNS.

    Example:
        >>> df = init_probe("adding", 20, "gru", VariantSpec(cell="gru", hidden_size=8), 2)
        >>> df.shape
        (40, 18)
    """
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ValueError(f"init_probe needs at least one seed, got seeds={seeds!r}")
    frames = []
    for seed in seed_list:
        model = build_model(spec, task, length=length, seed=seed).to(device, dtype)
        x, y = tasks.make_batch(task, length, batch_size, seed, 0, device, stream="probe")
        profile = gradient_profile(model, x, y, task, jac_examples=jac_examples)
        profile.insert(0, "seed", seed)
        profile.insert(0, "variant", variant_name)
        profile.insert(0, "length", length)
        profile.insert(0, "task", task)
        frames.append(profile)
    return pd.concat(frames, ignore_index=True)
