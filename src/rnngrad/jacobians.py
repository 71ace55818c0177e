"""One-step state Jacobians ds_t/ds_{t-1} of every cell, and their exact spectral norms.

The fused cells' Jacobians are formed analytically here (H x H; 2H x 2H for the LSTM,
whose state is [h; c]); the diagonal cells' come from rnngrad.cells as their diagonals.
rnngrad.probes multiplies them into Pascanu et al.'s bound. The norms are exact
(an eigenproblem of J J^H): a Krylov estimate can fall below the true norm when the top
singular values cluster, and put the bound below the measured ratio.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch

from rnngrad.cells import JACOBIANS as DIAGONAL_JACOBIANS
from rnngrad.models import SequenceModel

__all__ = ["CHUNK", "JACOBIANS", "spectral_norms", "state_jacobian_norms", "top_eigenvalue"]


def state_jacobian_norms(model: SequenceModel, x: torch.Tensor, states: list[tuple]) -> np.ndarray:
    """Spectral norm of ds_t/ds_{t-1} for every step and example (S, K), float64."""
    xi = model.step_inputs(model.inputs(x)).transpose(0, 1)  # (S, K, G*H)
    S, K = xi.shape[:2]
    init = model.initial_state(K, xi)
    prev = [
        torch.cat([s0[None], torch.stack([st[i] for st in states[:-1]])]) if S > 1 else s0[None]
        for i, s0 in enumerate(init)
    ]  # each (S, K, H): the state entering step t
    xi = xi.reshape(S * K, *xi.shape[2:])  # (N, G*H)
    prev = [s.reshape(S * K, -1) for s in prev]
    w = model.recurrent_weight().detach()  # (G*H, H)
    try:
        jacobian = JACOBIANS[model.cell]
    except KeyError:
        raise ValueError(
            f"no state Jacobian registered for cell {model.cell!r}; cells are {sorted(JACOBIANS)}"
        ) from None
    norms = []
    for rows in torch.arange(S * K, device=xi.device).split(CHUNK):
        J = jacobian(model, xi[rows], [s[rows] for s in prev], w)  # (n, D, D) or (n, D)
        norms.append(spectral_norms(J).to(torch.float64).cpu())
    return torch.cat(norms).numpy().reshape(S, K)


def spectral_norms(J: torch.Tensor) -> torch.Tensor:
    """||J||_2 of each Jacobian: (n, D, D) full, or (n, D) the diagonal of diag(d) -> (n,)."""
    if J.ndim == 2:  # diag(d): the norm is max |d| (d may be complex)
        return J.abs().amax(dim=1)
    # ||J|| = s ||J / s||: scaling by the largest entry keeps a nearly diverged model's
    # huge Jacobians (an IRNN's, say) inside float range and well conditioned.
    largest = J.abs().amax(dim=(1, 2))  # (n,): NaN if an entry is NaN, inf if one is inf
    ok = torch.isfinite(largest)  # a diverged model: NaN or inf, not a crash
    scale = torch.where(ok, largest, 1).clamp_min(torch.finfo(largest.dtype).tiny)
    Js = J / scale[:, None, None]  # entries <= 1
    if not bool(ok.all()):
        Js = torch.where(ok[:, None, None], Js, 0)
    gram = Js @ Js.mT.conj()  # ||J||_2^2 = lambda_max(J J^H): eigvalsh is cheaper than an SVD
    top = top_eigenvalue(gram)
    return torch.where(ok, top.clamp_min(0).sqrt() * scale, largest)


def top_eigenvalue(gram: torch.Tensor) -> torch.Tensor:
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


# cell -> fn(model, xi, prev, w): the one-step state Jacobians of n steps, (n, D, D), or
# the diagonals (n, D) of diagonal ones (complex allowed). xi: rows of model.step_inputs;
# prev: the states entering the steps; w: model.recurrent_weight().
JACOBIANS = {
    "rnn_tanh": _vanilla_jacobian,
    "rnn_relu": _vanilla_jacobian,
    "gru": _gru_jacobian,
    "lstm": _lstm_jacobian,
    **DIAGONAL_JACOBIANS,  # lru, mingru, indrnn: (n, D) diagonals (rnngrad.cells)
}
CHUNK = 512  # Jacobians formed at a time: bounds memory at (512, 2H, 2H)
