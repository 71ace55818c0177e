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

Even in place, those are two dozen passes over B x T x H numbers, each a torch call
whose loop runs at a fraction of the memory's speed. `mingru_scan_native` makes the
recurrence, g and the whole backward one pass each (rnngrad/mingru_kernel.py, compiled
by numba through rnngrad.native), torch's vectorised sigmoid before it;
`native_available` says whether this machine has it for a dtype. Both check their
input before it goes in (the kernel takes raw arrays), and the same tests hold both to
the loop.
"""

from __future__ import annotations

import math

import torch

from rnngrad import native
from rnngrad.scan import recur_

__all__ = ["g_activation", "mingru_scan", "mingru_scan_native", "native_available"]


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


_NATIVE_DTYPES = "float32 or float64"


def _check(p: torch.Tensor, who: str) -> None:
    """The input both scans take: (T, ..., 2H), at least 2 dims, an even last axis, floats."""
    if p.dim() < 2 or p.shape[-1] % 2:
        raise ValueError(
            f"{who}: p must be (T, ..., 2H), at least 2 dims with an even last axis "
            f"([pz, ph]); got shape {tuple(p.shape)}"
        )
    if not p.is_floating_point():
        raise ValueError(f"{who}: p must be a floating-point tensor, got {p.dtype}")


def mingru_scan(p: torch.Tensor) -> torch.Tensor:
    """h (T, ..., H) from minGRU's gate pre-activations p (T, ..., 2H): [pz, ph] on the last axis.

    Example:
        >>> p = torch.zeros(3, 1, 2)  # z = 1/2, h~ = g(0) = 1/2
        >>> mingru_scan(p).flatten().tolist()
        [0.25, 0.375, 0.4375]

    Raises:
        ValueError: p is not (T, ..., 2H) with at least 2 dims and an even last axis, or
            not floating-point.
    """
    _check(p, "mingru_scan")
    return _MinGRU.apply(p)


def native_available(dtype: torch.dtype = torch.float32) -> bool:
    """True when this machine runs `mingru_scan_native` for dtype (float32, float64)."""
    return native.kernels(dtype) is not None


class _MinGRUNative(torch.autograd.Function):
    @staticmethod
    def forward(ctx, p: torch.Tensor) -> torch.Tensor:
        shape = p.shape  # (T, ..., 2H)
        T, B, H = shape[0], math.prod(shape[1:-1]), shape[-1] // 2  # batch axes flattened
        p = p.detach().contiguous().view(T, B, 2 * H)
        s = torch.sigmoid(p)  # [z, sigmoid(ph)]; the kernel makes it [z, h~]
        h = p.new_empty(T, B, H)
        fwd, _ = native.kernels(p.dtype)
        zero, one = p.new_zeros(B, H), p.new_ones(1)  # h_{-1}; 1 in p's dtype
        fwd(p.numpy(), s.numpy(), h.numpy(), zero.numpy(), one.numpy())
        ctx.save_for_backward(p, s, h)
        ctx.shape, ctx.spent = shape, False
        return h.view(*shape[:-1], H)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_h: torch.Tensor):
        if ctx.spent:  # the first backward wrote the gradient over s
            raise RuntimeError(
                "mingru_scan_native: a second backward through the same graph is not "
                "supported (retain_graph); use mingru_scan for that"
            )
        p, s, h = ctx.saved_tensors
        grad_h = grad_h.contiguous().view(h.shape)
        _, bwd = native.kernels(p.dtype)
        carry, zero, one = p.new_zeros(h.shape[1:]), p.new_zeros(h.shape[1:]), p.new_ones(1)
        args = (p, h, grad_h, carry, s, zero, one)
        bwd(*(a.numpy() for a in args))
        ctx.spent = True
        return s.view(ctx.shape)  # [dL/dpz, dL/dph]


def mingru_scan_native(p: torch.Tensor) -> torch.Tensor:
    """`mingru_scan` through the compiled kernel: a float32 / float64 CPU tensor.

    Raises:
        ValueError: p is not (T, ..., 2H) with at least 2 dims and an even last axis (as
            `mingru_scan`), or not a float32 / float64 CPU tensor.
        RuntimeError: the kernel is not available here (rnngrad.native.why_unavailable).
    """
    check_native(p)
    return _MinGRUNative.apply(p)


def check_native(p: torch.Tensor) -> None:
    """Everything `mingru_scan_native` checks before p's memory reaches the kernel (the
    kernel then checks its arrays' shapes against each other): timed against a training
    step by benchmarks/bench_scan.py's `guard_share`."""
    _check(p, "mingru_scan_native")
    if p.device.type != "cpu" or p.dtype not in native.DTYPES:
        raise ValueError(
            f"mingru_scan_native: p must be a {_NATIVE_DTYPES} CPU tensor, "
            f"got {p.dtype} on {p.device}"
        )
    if not native_available(p.dtype):
        why = native.why_unavailable(p.dtype)
        raise RuntimeError(f"mingru_scan_native: the compiled kernel cannot run here ({why})")
