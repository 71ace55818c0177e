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
recurrence, g and the whole backward one pass each in C (rnngrad/mingru_kernel.c,
compiled by rnngrad.native), torch's vectorised sigmoid before it; `native_available`
says whether this machine has it for a dtype. The same tests hold it to the loop.
"""

from __future__ import annotations

import ctypes
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


def mingru_scan(p: torch.Tensor) -> torch.Tensor:
    """h (T, ..., H) from minGRU's gate pre-activations p (T, ..., 2H): [pz, ph] on the last axis.

    Example:
        >>> p = torch.zeros(3, 1, 2)  # z = 1/2, h~ = g(0) = 1/2
        >>> mingru_scan(p).flatten().tolist()
        [0.25, 0.375, 0.4375]
    """
    return _MinGRU.apply(p)


_KERNEL = "mingru_kernel"
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}


def _kernels(dtype: torch.dtype):
    """(forward, backward) of the C kernel for dtype, or None."""
    lib = native.load(_KERNEL) if dtype in _SUFFIX else None
    if lib is None:
        return None
    fwd, bwd = (getattr(lib, f"mingru_{d}_{_SUFFIX[dtype]}") for d in ("forward", "backward"))
    if fwd.argtypes is None:  # T, B, H, then the pointers
        fwd.argtypes = [ctypes.c_long] * 3 + [ctypes.c_void_p] * 4
        bwd.argtypes = [ctypes.c_long] * 3 + [ctypes.c_void_p] * 6
        fwd.restype = bwd.restype = None
    return fwd, bwd


def native_available(dtype: torch.dtype = torch.float32) -> bool:
    """True when this machine runs `mingru_scan_native` for dtype (float32, float64)."""
    return _kernels(dtype) is not None


def _sizes(p: torch.Tensor) -> tuple[int, int, int]:
    """T, B (the batch axes flattened) and H of p (T, ..., 2H)."""
    return p.shape[0], math.prod(p.shape[1:-1]), p.shape[-1] // 2


class _MinGRUNative(torch.autograd.Function):
    @staticmethod
    def forward(ctx, p: torch.Tensor) -> torch.Tensor:
        p = p.detach().contiguous()  # (T, ..., 2H)
        T, B, H = _sizes(p)
        s = torch.sigmoid(p)  # [z, sigmoid(ph)]; the kernel makes it [z, h~]
        h = p.new_empty((*p.shape[:-1], H))
        fwd, _ = _kernels(p.dtype)
        zero = p.new_zeros(B, H)  # h_{-1}; named, so it lives through the call
        fwd(T, B, H, p.data_ptr(), s.data_ptr(), h.data_ptr(), zero.data_ptr())
        ctx.save_for_backward(p, s, h)
        ctx.spent = False
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_h: torch.Tensor):
        if ctx.spent:  # the first backward wrote the gradient over s
            raise RuntimeError(
                "mingru_scan_native: a second backward through the same graph is not "
                "supported (retain_graph); use mingru_scan for that"
            )
        p, s, h = ctx.saved_tensors
        T, B, H = _sizes(p)
        grad_h = grad_h.contiguous()
        _, bwd = _kernels(p.dtype)
        carry, zero = p.new_zeros(B, H), p.new_zeros(B, H)
        bwd(T, B, H, p.data_ptr(), h.data_ptr(), grad_h.data_ptr(), carry.data_ptr(),
            s.data_ptr(), zero.data_ptr())  # fmt: skip
        ctx.spent = True
        return s  # [dL/dpz, dL/dph]


def mingru_scan_native(p: torch.Tensor) -> torch.Tensor:
    """`mingru_scan` through the C kernel: CPU tensors of a dtype `native_available` accepts.

    Raises:
        RuntimeError: the kernel is not available here (rnngrad.native.why_unavailable),
            or p is not a float32 / float64 CPU tensor.
    """
    if p.device.type != "cpu" or not native_available(p.dtype):
        why = native.why_unavailable(_KERNEL) or f"{p.dtype} on {p.device}"
        raise RuntimeError(f"mingru_scan_native: the C kernel cannot run here ({why})")
    return _MinGRUNative.apply(p)
