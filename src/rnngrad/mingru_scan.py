"""minGRU's gates and recurrence in one autograd Function, for the CPU.

minGRU (Feng et al. 2024) computes, from the pre-activations p_t = [W_z e_t + b_z,
W_h e_t + b_h] of every step,

    z_t = sigmoid(pz_t),  h~_t = g(ph_t),  h_t = (1 - z_t) h_{t-1} + z_t h~_t,

a linear recurrence h_t = a_t h_{t-1} + b_t with a_t = 1 - z_t, b_t = z_t h~_t. Written
as autograd operations around `rnngrad.scan.scan_sequential`, each of those elementwise
steps (the chunk, sigmoid, g's where, 1 - z, z h~) keeps its own output and gradient
over the whole B x T x H sequence, and on one CPU thread those passes over memory cost
more than the recurrence itself (benchmarks/bench_scan.py). Here the forward makes them
in place and the backward is written out, the reverse recurrence of scan_sequential
followed by

    dL/dpz_t = G_t (h~_t - h_{t-1}) z_t (1 - z_t),   dL/dph_t = G_t z_t g'(ph_t),

G_t = dL/db_t, the reverse recurrence's output. `MinGRU.cell_step`, the probes and the
unroll use g and the gates as plain operations: the tests compare this Function with
them, in values and gradients.
"""

from __future__ import annotations

import torch

from rnngrad.scan import recur_

__all__ = ["g_activation", "mingru_scan"]


def g_activation(v: torch.Tensor) -> torch.Tensor:
    """minGRU's positive activation: v + 0.5 for v >= 0, sigmoid(v) otherwise."""
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def _step(v: torch.Tensor) -> torch.Tensor:
    """1.0 where v >= 0 (-0.0 included), else 0.0, as floats: sign(v) + 1 in {0, 1, 2}, capped.

    Not `v >= 0`: masks, torch.where and masked_fill run unvectorised on a CPU, 5-10x
    slower than these arithmetic passes (measured: 18 ms against 2 ms per B x T x H
    tensor at T = 1000, B = H = 64).
    """
    return torch.sign(v).add_(1.0).clamp_(max=1.0)


def _lerp_scan_(h: torch.Tensor, cand: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """In place: h_t = lerp(h_{t-1}, h~_t, z_t) = (1 - z_t) h_{t-1} + z_t h~_t, h_{-1} = 0."""
    hs, cs, zs = h.unbind(0), cand.unbind(0), z.unbind(0)
    torch.mul(zs[0], cs[0], out=hs[0])
    for t in range(1, len(hs)):
        torch.lerp(hs[t - 1], cs[t], zs[t], out=hs[t])
    return h


class _MinGRU(torch.autograd.Function):
    # Every new B x T x H tensor costs its first-touch page faults (about as much as an
    # arithmetic pass over it), so buffers are reused: ph + 0.5 lives in h until the scan
    # overwrites it, and the backward's 1 - z becomes g'(ph) once the recurrence is done.
    @staticmethod
    def forward(ctx, p: torch.Tensor) -> torch.Tensor:
        pz, ph = p.detach().chunk(2, dim=-1)  # (T, ..., H) views
        z = torch.sigmoid(pz)
        step = _step(ph)
        h = torch.add(ph, 0.5)
        # h~ = g(ph): lerp is exact at its ends, so this is g_activation's value bit for bit
        cand = torch.sigmoid(ph).lerp_(h, step)
        _lerp_scan_(h, cand, z)
        ctx.save_for_backward(z, cand, step, h)
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_h: torch.Tensor):
        z, cand, step, h = ctx.saved_tensors
        a = torch.sub(1.0, z)
        G = grad_h.clone(memory_format=torch.contiguous_format)
        recur_(G, a, per_step=True, reverse=True)  # G_t = dL/db_t, b_t = z_t h~_t
        grad = grad_h.new_empty((*z.shape[:-1], 2 * z.shape[-1]))
        gz, gh = grad.chunk(2, dim=-1)
        # dL/dpz_t = G_t (h~_t - h_{t-1}) z_t (1 - z_t), h_{-1} = 0
        gz[0].copy_(cand[0])
        torch.sub(cand[1:], h[:-1], out=gz[1:])
        gz.mul_(G).mul_(z).mul_(a)
        # dL/dph_t = G_t z_t g'(ph_t): g' = 1 for ph >= 0, else sigmoid' = h~ (1 - h~)
        deriv = torch.mul(cand, cand, out=a).neg_().add_(cand)
        deriv.lerp_(torch.ones((), dtype=z.dtype), step)
        torch.mul(G.mul_(z), deriv, out=gh)
        return grad


def mingru_scan(p: torch.Tensor) -> torch.Tensor:
    """h (T, ..., H) from minGRU's gate pre-activations p (T, ..., 2H): [pz, ph] on the last axis.

    Example:
        >>> p = torch.zeros(3, 1, 2)  # z = 1/2, h~ = g(0) = 1/2
        >>> mingru_scan(p).flatten().tolist()
        [0.25, 0.375, 0.4375]
    """
    return _MinGRU.apply(p)
