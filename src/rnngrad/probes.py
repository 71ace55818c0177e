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
  probe trajectory. s = h for rnn_tanh, rnn_relu and gru; s = [h; c] (2H) for the LSTM,
  because the full-state Jacobians are what multiply in BPTT
  (d s_T / d s_t = prod_k ds_k/ds_{k-1}); dh_t/dh_{t-1} alone does not compose;
- bound (vanilla cells): Pascanu et al.'s bound on ||dL/dh_t|| / ||dL/dh_r||, r the
  first read, prod_{k=t+1}^{r} ||diag(f'(a_k)) W_hh||_2.

jac_norm and bound are medians over the first `jac_examples` examples of the probe batch,
by default only the first (JAC_EXAMPLES = 1), for cost: each norm is an exact symmetric
eigenproblem, sqrt(lambda_max(J J^T)) with J formed analytically (H x H; 2H x 2H for the
LSTM), and at H = 64 the T norms of one example cost about as much as the whole unroll
and backward pass (twice that for the LSTM). Krylov methods (power iteration, Lanczos)
are cheaper but not exact when the top singular values cluster, as they do for an
orthogonal W_hh or a chrono-initialised LSTM (errors up to 1e-3 seen at H = 64).

Nothing here touches parameter .grad, optimiser state or the global random state: the
probe uses torch.autograd.grad with respect to the hidden states only, so probing during
training leaves the training trajectory unchanged.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from rnngrad import tasks
from rnngrad.columns import PROFILE_COLUMNS
from rnngrad.models import SequenceModel, VariantSpec, build_model

__all__ = [
    "PROFILE_COLUMNS",
    "JAC_EXAMPLES",
    "HORIZON_RATIO",
    "gradient_profile",
    "weight_spectra",
    "decay_rate",
    "horizon",
    "decay_summary",
    "init_probe",
]

JAC_EXAMPLES = 1  # jac_norm and bound: from the first example of the probe batch (cost)
HORIZON_RATIO = 1e-3  # horizon: largest distance with grad_h >= 1e-3 of grad_h at distance 0
# A quantile that depends on the empirical distribution only, so duplicating every
# example leaves the profile unchanged (numpy's default "linear" does not).
_QUANTILE = "averaged_inverted_cdf"
_VANILLA = ("rnn_tanh", "rnn_relu")


def gradient_profile(
    model: SequenceModel,
    x: torch.Tensor,
    y: torch.Tensor,
    task: str,
    jac_examples: int | None = JAC_EXAMPLES,
) -> pd.DataFrame:
    """Per-step gradient norms, Jacobian norms and the Pascanu bound on one probe batch.

    Args:
        model: the model; it runs under its own dtype and device (x and y are moved).
        x, y: a batch from tasks.make_batch(task, length, ...).
        task: the task's name.
        jac_examples: jac_norm and bound use the first this many examples (a positive
            integer; None for all). Each example costs one eigenproblem per step.

    Returns:
        one row per time step t of the input, columns PROFILE_COLUMNS: t, distance
        (first read - t; negative after the first read for copy), grad_h (median over
        examples of ||dL/dh_t||), grad_h_q1, grad_h_q3 (quartiles), grad_c, grad_c_q1,
        grad_c_q3 (LSTM cell state; NaN otherwise), jac_norm (median spectral norm of
        ds_t/ds_{t-1}), bound (vanilla cells, t <= first read; NaN otherwise).
        Quantiles are numpy's "averaged_inverted_cdf", a function of the empirical
        distribution: duplicating every example (x and y concatenated with themselves)
        leaves the frame unchanged.

    Raises:
        ValueError: the model's parameters do not require grad, x does not fit the task,
            or jac_examples is not a positive integer or None.

    Example:
        >>> model = build_model(VariantSpec(cell="gru", hidden_size=8), "adding", seed=0)
        >>> x, y = tasks.make_batch("adding", 20, 4, seed=tasks.PROBE_SEED, step=0)
        >>> gradient_profile(model, x, y, "adding").shape
        (20, 10)
    """
    r = _probe(model, x, y, task, jac_examples)
    S = r["grad_h"].shape[0]
    nan = np.full(S, np.nan)
    q1, med, q3 = _quartiles(r["grad_h"])
    c1, cmed, c3 = _quartiles(r["grad_c"]) if r["grad_c"] is not None else (nan, nan, nan)
    bound = _median(r["bound"]) if r["bound"] is not None else nan
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
            "jac_norm": _median(r["jac_norm"]),
            "bound": bound,
        },
        columns=list(PROFILE_COLUMNS),
    )


def _quartiles(a: np.ndarray) -> np.ndarray:
    return np.quantile(a, [0.25, 0.5, 0.75], axis=1, method=_QUANTILE)  # (3, S)


def _median(a: np.ndarray) -> np.ndarray:
    return np.quantile(a, 0.5, axis=1, method=_QUANTILE)  # (S,)


def _probe(model, x, y, task: str, jac_examples: int | None) -> dict:
    """Per-example arrays behind gradient_profile (numpy, float64).

    Returns a dict: grad_h (S, B), grad_c (S, B) or None, jac_norm (S, K),
    bound (S, K) or None, first_read (int), with K the examples used for Jacobians.
    """
    spec = tasks.get_task(task)
    S = x.shape[1]
    length = S - (spec.seq_len(S) - S)  # seq_len is the length plus a constant
    if length < 2 or spec.seq_len(length) != S:
        raise ValueError(f"x has {S} steps, which is no sequence length of task {task!r}")
    first_read = spec.first_read(length)
    p = next(model.parameters())
    x = x.to(p.device, p.dtype) if x.is_floating_point() else x.to(p.device)
    y = y.to(p.device, p.dtype) if y.is_floating_point() else y.to(p.device)

    with torch.enable_grad():
        out, states = model.unroll(x)
        if not states[0][0].requires_grad:
            raise ValueError("gradient_profile needs model parameters that require grad")
        loss = tasks.long_range_loss(task, out, y).sum()  # no 1/B: per-example gradients
        flat = [s for state in states for s in state]
        grads = torch.autograd.grad(loss, flat, allow_unused=True)
    grads = [torch.zeros_like(s) if g is None else g for s, g in zip(flat, grads, strict=True)]
    n_state = len(states[0])
    norms = torch.stack([g.norm(dim=-1) for g in grads]).view(S, n_state, -1)  # (S, n, B)
    norms = norms.double().cpu().numpy()

    B = x.shape[0]
    if jac_examples is not None and not (isinstance(jac_examples, int) and jac_examples >= 1):
        raise ValueError(f"jac_examples must be a positive integer or None, got {jac_examples!r}")
    K = B if jac_examples is None else min(jac_examples, B)
    with torch.no_grad():
        sigma = _jacobian_norms(model, x[:K], [tuple(s[:K] for s in st) for st in states])
    bound = _pascanu_bound(sigma, first_read) if model.cell in _VANILLA else None
    return {
        "grad_h": norms[:, 0],
        "grad_c": norms[:, 1] if n_state == 2 else None,
        "jac_norm": sigma,
        "bound": bound,
        "first_read": first_read,
    }


def _pascanu_bound(sigma: np.ndarray, first_read: int) -> np.ndarray:
    """prod_{k=t+1}^{first_read} sigma_k for t <= first_read, NaN after (S, K)."""
    S, K = sigma.shape
    bound = np.full((S, K), np.nan)
    r = min(first_read, S - 1)
    bound[r] = 1.0
    # reverse cumulative product: bound[t] = sigma[t+1] * ... * sigma[r]
    bound[:r] = np.cumprod(sigma[1 : r + 1][::-1], axis=0)[::-1]
    return bound


# ---------------------------------------------------------------- Jacobian norms


def _jacobian_norms(model: SequenceModel, x: torch.Tensor, states: list[tuple]) -> np.ndarray:
    """Spectral norm of ds_t/ds_{t-1} for every step and example (S, K), float64."""
    xi = model.step_inputs(model.inputs(x)).transpose(0, 1)  # (S, K, G*H)
    S, K, _ = xi.shape
    init = model.initial_state(K, xi)
    prev = [
        torch.cat([s0[None], torch.stack([st[i] for st in states[:-1]])]) if S > 1 else s0[None]
        for i, s0 in enumerate(init)
    ]  # each (S, K, H): the state entering step t
    xi = xi.reshape(S * K, -1)  # (N, G*H)
    prev = [s.reshape(S * K, -1) for s in prev]
    w = model.recurrent_weight().detach()  # (G*H, H)
    jacobian = _JACOBIANS["vanilla" if model.cell in _VANILLA else model.cell]
    norms = []
    for rows in torch.arange(S * K, device=xi.device).split(_CHUNK):
        J = jacobian(model, xi[rows], [s[rows] for s in prev], w)  # (n, D, D)
        # ||J|| = s ||J / s||: scaling by the largest entry keeps a nearly diverged model's
        # huge Jacobians (an IRNN's, say) inside float range and well conditioned.
        scale = J.abs().amax(dim=(1, 2)).clamp_min(torch.finfo(J.dtype).tiny)  # (n,)
        Js = J / scale[:, None, None]
        gram = Js @ Js.mT  # ||J||_2^2 = lambda_max(J J^T): eigvalsh is cheaper than an SVD
        ok = torch.isfinite(gram).all(dim=2).all(dim=1)  # a diverged model: NaN, not a crash
        top = _top_eigenvalue(torch.where(ok[:, None, None], gram, 0))
        bad = torch.where(torch.isfinite(J).all(dim=2).all(dim=1), math.inf, math.nan)
        norms.append(torch.where(ok, top.clamp_min(0).sqrt() * scale, bad).double().cpu())
    return torch.cat(norms).numpy().reshape(S, K)


def _top_eigenvalue(gram: torch.Tensor) -> torch.Tensor:
    """Largest eigenvalue of each symmetric matrix (n, D, D); NaN where LAPACK gives up."""
    try:
        return torch.linalg.eigvalsh(gram)[:, -1]
    except torch.linalg.LinAlgError:
        # One ill-conditioned matrix fails the whole batch: redo one at a time.
        out = torch.full(gram.shape[:1], math.nan, dtype=gram.dtype, device=gram.device)
        for i, g in enumerate(gram):
            with contextlib.suppress(torch.linalg.LinAlgError):
                out[i] = torch.linalg.eigvalsh(g)[-1]
        return out


def _vanilla_jacobian(model, xi, prev, w):
    # h' = f(xi + W h + b): dh'/dh = diag(f'(a)) W. xi enters a additively and f acts
    # elementwise, so dh'/dxi = diag(f'(a)) and its vector-Jacobian product with ones is
    # f'(a), whatever the activation f.
    with torch.enable_grad():
        xi = xi.detach().requires_grad_()
        out = model.cell_step(xi, tuple(prev), w)[0]
        (d,) = torch.autograd.grad(out, xi, torch.ones_like(out))
    return d[:, :, None] * w  # (n, H, H)


def _gru_jacobian(model, xi, prev, w):
    # h' = (1 - z) n + z h, n = tanh(x_n + r (W_n h + b_n)), r, z = sigmoid(x + W h + b):
    # dh'/dh = diag(z) + diag(a_r) W_r + diag(a_z) W_z + diag(a_n) W_n
    (h,) = prev
    n_rows, H = h.shape
    gh = h @ w.T + model.rnn.bias_hh_l0  # (n, 3H)
    xr, xz, xn = xi.chunk(3, dim=-1)
    hr, hz, hn = gh.chunk(3, dim=-1)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    dn = (1 - z) * (1 - n**2)  # dh'/d(pre-activation of n)
    a = torch.stack([dn * hn * r * (1 - r), (h - n) * z * (1 - z), dn * r], dim=1)  # (n, 3, H)
    J = torch.einsum("nqj,qjk->njk", a, w.view(3, H, H))  # sum_q diag(a_q) W_q (n, H, H)
    J.diagonal(dim1=1, dim2=2).add_(z)
    return J


def _lstm_jacobian(model, xi, prev, w):
    # State s = [h; c]. c' = f c + i g, h' = o tanh(c'), gates from xi + W h + b:
    #   dc'/dh = diag(b_i) W_i + diag(b_f) W_f + diag(b_g) W_g,  dc'/dc = diag(f)
    #   dh'/dh = diag(k) dc'/dh + diag(tau) W_o,                dh'/dc = diag(k f)
    # with k = o (1 - tanh^2 c') and tau = tanh(c') o (1 - o).
    h, c = prev
    n_rows, H = h.shape
    pre = xi + h @ w.T + model.rnn.bias_hh_l0  # (n, 4H)
    pi, pf, pg, po = pre.chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(pi), torch.sigmoid(pf), torch.tanh(pg), torch.sigmoid(po)
    tc = torch.tanh(f * c + i * g)
    k = o * (1 - tc**2)
    tau = tc * o * (1 - o)
    b = torch.stack([g * i * (1 - i), c * f * (1 - f), i * (1 - g**2)], dim=1)  # (n, 3, H)
    w4 = w.view(4, H, H)
    J = xi.new_zeros(n_rows, 2 * H, 2 * H)
    J[:, H:, :H] = torch.einsum("nqj,qjk->njk", b, w4[:3])  # dc'/dh
    J[:, :H, :H] = torch.einsum("nqj,qjk->njk", torch.cat([k[:, None] * b, tau[:, None]], 1), w4)
    J[:, :H, H:].diagonal(dim1=1, dim2=2).copy_(k * f)  # dh'/dc
    J[:, H:, H:].diagonal(dim1=1, dim2=2).copy_(f)  # dc'/dc
    return J


_JACOBIANS = {"vanilla": _vanilla_jacobian, "gru": _gru_jacobian, "lstm": _lstm_jacobian}
_CHUNK = 512  # Jacobians formed at a time: bounds memory at (512, 2H, 2H)


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


def _reading_rows(profile: pd.DataFrame) -> pd.DataFrame:
    rows = profile[profile["distance"] >= 0]
    if rows["distance"].duplicated().any():
        raise ValueError(
            "expected one profile (one row per distance); select one seed or probe step first"
        )
    return rows


def decay_rate(profile: pd.DataFrame) -> float:
    """Least-squares slope of log10(grad_h) against distance.

    Over rows with distance >= 0 and grad_h > 0 (finite); NaN with fewer than two.
    Negative when the gradient vanishes with distance: grad_h ~ 10**(rate * distance).
    """
    rows = _reading_rows(profile)
    g = rows["grad_h"].to_numpy(dtype=float)
    keep = np.isfinite(g) & (g > 0)
    if keep.sum() < 2:
        return math.nan
    d = rows["distance"].to_numpy(dtype=float)[keep]
    return float(np.polyfit(d, np.log10(g[keep]), 1)[0])


def horizon(profile: pd.DataFrame) -> tuple[int, bool]:
    """The largest distance at which grad_h is still >= HORIZON_RATIO of its value at 0.

    Returns:
        (horizon, censored): censored is True when grad_h never falls below the
        threshold; the horizon is then the whole sequence before the first read.

    Raises:
        ValueError: grad_h at distance 0 is missing, zero or not finite, or the frame
            holds more than one profile.
    """
    result = _horizon(_reading_rows(profile))
    if isinstance(result, float):
        raise ValueError(f"grad_h at distance 0 is {result}: no horizon")
    return result


def _horizon(rows: pd.DataFrame) -> tuple[int, bool] | float:
    at0 = rows.loc[rows["distance"] == 0, "grad_h"]
    g0 = float(at0.iloc[0]) if len(at0) else math.nan
    if not (math.isfinite(g0) and g0 > 0):
        return g0
    still = rows["grad_h"] >= HORIZON_RATIO * g0  # NaN compares False
    return int(rows.loc[still, "distance"].max()), bool(still.all())


def decay_summary(profile: pd.DataFrame) -> dict:
    """decay_rate, horizon and horizon_censored of one profile.

    horizon is NaN (and horizon_censored False) when grad_h at distance 0 is zero or
    not finite, e.g. for a diverged model.
    """
    result = _horizon(_reading_rows(profile))
    h, censored = (math.nan, False) if isinstance(result, float) else result
    return {"decay_rate": decay_rate(profile), "horizon": h, "horizon_censored": censored}


def init_probe(
    task: str,
    length: int,
    variant_name: str,
    spec: VariantSpec,
    seeds: int | Sequence[int],
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
) -> pd.DataFrame:
    """Gradient profiles at initialisation (no training), one per seed.

    For each seed: build_model(spec, task, length=length, seed=seed), a probe batch
    make_batch(task, length, batch_size, seed=PROBE_SEED, step=seed), gradient_profile.

    Args:
        seeds: a count n (seeds 0..n-1) or the seeds themselves.
        dtype: None probes in build_model's float32, as training does; torch.float64
            keeps norms that fall below float32's range (~1e-38, reached within a few
            hundred steps by a vanishing vanilla RNN) instead of rounding them to 0.

    Returns:
        the profiles stacked, columns task, length, variant, seed, then PROFILE_COLUMNS.

    Example:
        >>> df = init_probe("adding", 20, "gru", VariantSpec(cell="gru", hidden_size=8), 2)
        >>> df.shape
        (40, 14)
    """
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ValueError(f"init_probe needs at least one seed, got seeds={seeds!r}")
    frames = []
    for seed in seed_list:
        model = build_model(spec, task, length=length, seed=seed).to(device, dtype)
        x, y = tasks.make_batch(
            task, length, batch_size, tasks.PROBE_SEED, step=seed, device=device
        )
        profile = gradient_profile(model, x, y, task)
        profile.insert(0, "seed", seed)
        profile.insert(0, "variant", variant_name)
        profile.insert(0, "length", length)
        profile.insert(0, "task", task)
        frames.append(profile)
    return pd.concat(frames, ignore_index=True)
