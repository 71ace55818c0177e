"""Scans for the diagonal linear recurrence h_t = a_t * h_{t-1} + b_t, h_{-1} = 0.

The recurrence behind the LRU (a_t = lambda, complex; Orvieto et al. 2023) and minGRU
(a_t = 1 - z_t; Feng et al. 2024). Every function takes time-major tensors: b (T, ...)
and a either (T, ...) like b (a coefficient per step) or without the time axis
(broadcast over the trailing dimensions of b and constant in time, as lambda is), real
or complex. Each returns h (T, ...), equal to `scan_loop`, the sequential reference.

- scan_loop: the recurrence as written, one autograd node per step (the reference).
- scan_sequential: the same loop in place, without a graph, and a hand-written
  backward, itself the reverse linear recurrence g_t = dL/dh_t + conj(a_{t+1}) g_{t+1},
  with dL/db_t = g_t and dL/da_t = g_t conj(h_{t-1}). Time-major slices are contiguous,
  so each step is one fused multiply-add over B x D numbers: on a CPU this is the memory
  floor up to Python's overhead per step, and what `linear_scan` uses there.
- scan_associative: the parallel (Hillis & Steele 1986) scan of the pairs (a_t, b_t)
  under (a, b) . (a', b') = (a a', a' b + b'), in ceil(log2 T) rounds of whole-tensor
  operations, differentiated by autograd (Blelloch 1990; Martin & Cundy 2018). It
  multiplies coefficients, never divides by them: no lambda^-k term, so nothing
  overflows when |a| is near 1 or products underflow to 0. On a GPU its log2 T rounds
  beat T sequential kernel launches; `linear_scan` uses it on CUDA.
- scan_log: minGRU's log-space scan (Feng et al. 2024, with Heinsen 2023's
  logcumsumexp): log h_t = A_t + logcumsumexp_s(log b_s - A_s), A_t = sum_s<=t log a_s,
  for 0 < a <= 1 and b >= 0. Exact in exact arithmetic, but it takes the difference of
  two numbers of size |A_t|, which grows with t: in float32 at T = 2000 its error is
  about 3e-5 where the other scans stay near 2e-7, so it is measured, not used.

See benchmarks/bench_scan.py for what each costs.
"""

from __future__ import annotations

import torch

__all__ = [
    "METHODS",
    "auto_method",
    "linear_scan",
    "recur_",
    "scan_associative",
    "scan_log",
    "scan_loop",
    "scan_sequential",
]


def _per_step(a: torch.Tensor, b: torch.Tensor) -> bool:
    """True when a holds one coefficient per step (T, ...), False when constant in time."""
    return a.dim() == b.dim()


def scan_loop(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The sequential recurrence, one step at a time through autograd (the reference)."""
    # unbind, not b[t]: the backward of each b[t] would materialise a full (T, ...) gradient
    bs = b.unbind(0)
    as_ = a.unbind(0) if _per_step(a, b) else [a] * len(bs)
    h = [bs[0]]
    for a_t, b_t in zip(as_[1:], bs[1:], strict=True):
        h.append(a_t * h[-1] + b_t)
    return torch.stack(h)  # (T, ...)


def recur_(h: torch.Tensor, a: torch.Tensor, per_step: bool, reverse: bool = False):
    """In place, no graph; h holds b on entry: h[t] += a[t] * h[t-1] for t = 1..T-1, or
    with reverse h[t] += a[t+1] * h[t+1] for t = T-2..0 (the backward recurrence)."""
    hs = h.unbind(0)  # views, made in one call: indexing h[t] costs more than the step
    as_ = a.unbind(0) if per_step else (a,) * len(hs)
    if reverse:
        for t in range(len(hs) - 2, -1, -1):
            hs[t].addcmul_(as_[t + 1], hs[t + 1])
    else:
        for t in range(1, len(hs)):
            hs[t].addcmul_(as_[t], hs[t - 1])
    return h


class _Sequential(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        per_step = _per_step(a, b)
        h = b.detach().clone(memory_format=torch.contiguous_format)  # (T, ...), b on entry
        recur_(h, a.detach(), per_step)
        ctx.per_step = per_step
        ctx.save_for_backward(a, h)
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_h: torch.Tensor):
        a, h = ctx.saved_tensors
        per_step = ctx.per_step
        ac = a.conj().resolve_conj() if a.is_complex() else a
        # g_t = grad_h_t + conj(a_{t+1}) g_{t+1}: the same recurrence, backwards in time
        g = grad_h.clone(memory_format=torch.contiguous_format)  # (T, ...)
        recur_(g, ac, per_step, reverse=True)
        grad_a = None
        if ctx.needs_input_grad[0]:
            # dL/da_t = g_t conj(h_{t-1}), with h_{-1} = 0
            prev = h[:-1].conj() if h.is_complex() else h[:-1]
            if per_step:
                grad_a = torch.empty_like(g)
                grad_a[0] = 0
                torch.mul(g[1:], prev, out=grad_a[1:])
            else:
                grad_a = (g[1:] * prev).sum(0)
            grad_a = grad_a.sum_to_size(a.shape)
        grad_b = g if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


def scan_sequential(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The recurrence in place without a per-step graph; backward by the reverse recurrence."""
    if a.is_complex() != b.is_complex():
        dtype = torch.promote_types(a.dtype, b.dtype)
        a, b = a.to(dtype), b.to(dtype)
    return _Sequential.apply(a, b)


def scan_associative(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hillis-Steele inclusive scan of (a_t, b_t): ceil(log2 T) rounds, autograd backward.

    Round k combines each step with the one span = 2^k steps earlier:
    h_t += A_t h_{t-span}, A_t the product of the span coefficients in between. With a
    constant a that product is a^span for every t >= span: computed directly in double
    precision, since squaring a float32 a again and again compounds its rounding error
    (in float32 at T = 2000, |a| = 0.9999: gradient errors of 1e-3 against the loop's
    6e-5; 1e-5 with the power in double).
    """
    T = b.shape[0]
    per_step = _per_step(a, b)
    wide = torch.complex128 if a.is_complex() else torch.float64
    h, A, span = b, a, 1
    while span < T:
        coef = A[span:] if per_step else (a.to(wide) ** span).to(a.dtype)
        h = torch.cat([h[:span], torch.addcmul(h[span:], coef, h[:-span])])
        if per_step:
            A = torch.cat([A[:span], A[span:] * A[:-span]])
        span *= 2
    return h


def scan_log(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """minGRU's log-space scan, for real 0 < a <= 1 and b >= 0 (see the module notes)."""
    A = torch.log(a).expand_as(b).cumsum(0)  # (T, ...)
    return torch.exp(A + torch.logcumsumexp(torch.log(b) - A, dim=0))


METHODS = {
    "loop": scan_loop,
    "sequential": scan_sequential,
    "associative": scan_associative,
    "log": scan_log,
}


def auto_method(device_type: str) -> str:
    """The scan `linear_scan` picks on a device: "associative" on CUDA, else "sequential"."""
    return "associative" if device_type == "cuda" else "sequential"


def linear_scan(a: torch.Tensor, b: torch.Tensor, method: str = "auto") -> torch.Tensor:
    """h_t = a_t * h_{t-1} + b_t over the time axis 0, h_{-1} = 0.

    Args:
        a: (T, ...) like b, or constant in time (broadcast over b's trailing dimensions).
        b: (T, ...), real or complex.
        method: a key of METHODS, or "auto": "associative" on CUDA, else "sequential".

    Returns:
        h (T, ...), of b's shape.

    Example:
        >>> linear_scan(torch.tensor([0.5]), torch.ones(3, 1)).squeeze(1).tolist()
        [1.0, 1.5, 1.75]
    """
    if method == "auto":
        method = auto_method(b.device.type)
    try:
        fn = METHODS[method]
    except KeyError:
        raise ValueError(
            f"unknown scan method {method!r}; options are {['auto', *METHODS]}"
        ) from None
    return fn(a, b)
