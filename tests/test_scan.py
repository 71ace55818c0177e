"""Every scan equals the sequential loop, in values and gradients, and stays finite.

Inputs are scaled by sqrt(1 - |a|^2), the LRU's normalisation, so the states stay of
order 1 whatever |a|; errors are measured against the largest value of the reference.
"""

from __future__ import annotations

import math

import pytest
import torch

from rnngrad.scan import (
    METHODS,
    linear_scan,
    scan_associative,
    scan_log,
    scan_loop,
    scan_sequential,
)

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
LENGTHS = (1, 2, 7, 100, 2000)
FAST = {"sequential": scan_sequential, "associative": scan_associative}
B, D = 3, 5


def _inputs(kind: str, T: int, dtype: torch.dtype, seed: int = 0):
    """(a, b) of one cell's recurrence: lru (complex, constant), mingru (per step), real."""
    g = torch.Generator().manual_seed(seed)
    if kind == "lru":  # |lambda| up to 0.9999, any phase
        r = torch.cat([torch.tensor([0.9999, 0.999]), torch.rand(D - 2, generator=g)])
        a = torch.polar(r, torch.rand(D, generator=g) * 2 * math.pi)
        cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128
        b = torch.randn(T, B, D, dtype=cdtype, generator=g) * torch.sqrt(1 - r**2)
        return a.to(cdtype), b
    if kind == "mingru":  # a = 1 - z_t in (0, 1), per step, some very close to 1
        z = torch.sigmoid(torch.randn(T, B, D, generator=g) * 3 - 4)
        b = z * torch.rand(T, B, D, generator=g)
        return (1 - z).to(dtype), b.to(dtype)
    a = torch.tensor([0.9999, -0.5, 0.0, 0.3, 1.0])  # real, constant, incl. 0 and 1
    b = torch.randn(T, B, D, generator=g) * torch.sqrt(1 - a**2).clamp_min(1e-2)
    return a.to(dtype), b.to(dtype)


def _assert_close(got: torch.Tensor, want: torch.Tensor, tol: float) -> None:
    scale = max(1.0, want.abs().max().item())
    err = (got - want).abs().max().item() if want.numel() else 0.0
    assert err <= tol * scale, f"max error {err:.3g} > {tol:g} x {scale:.3g}"


def _values_and_grads(fn, a, b, upstream):
    a = a.detach().clone().requires_grad_()
    b = b.detach().clone().requires_grad_()
    h = fn(a, b)
    grads = torch.autograd.grad((h * upstream).real.sum(), (a, b), allow_unused=True)
    # T = 1: the loop never touches a, whose gradient is then 0
    ga, gb = (torch.zeros_like(x) if g is None else g for x, g in zip((a, b), grads, strict=True))
    return h.detach(), ga, gb


@pytest.mark.parametrize("method", FAST)
@pytest.mark.parametrize("kind", ["lru", "mingru", "real"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("T", LENGTHS)
def test_scan_equals_the_loop_in_values_and_gradients(method, kind, dtype, T):
    a, b = _inputs(kind, T, dtype)
    upstream = torch.randn(b.shape, dtype=b.dtype, generator=torch.Generator().manual_seed(1))
    want = _values_and_grads(scan_loop, a, b, upstream)
    got = _values_and_grads(FAST[method], a, b, upstream)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and g.dtype == w.dtype
        _assert_close(g, w, TOL[dtype])


def test_loop_is_the_recurrence_written_out():
    a, b = torch.tensor([0.5, -1.0]), torch.tensor([[1.0, 1.0], [2.0, 0.0], [0.0, 3.0]])
    want = torch.tensor([[1.0, 1.0], [2.5, -1.0], [1.25, 4.0]])
    for fn in (scan_loop, *FAST.values()):
        torch.testing.assert_close(fn(a, b), want, rtol=0, atol=0)


@pytest.mark.parametrize("complex_", [False, True])
def test_sequential_backward_passes_gradcheck(complex_):
    g = torch.Generator().manual_seed(0)
    dtype = torch.complex128 if complex_ else torch.float64
    per_step = torch.rand(6, 2, 3, dtype=dtype, generator=g).requires_grad_()
    constant = torch.rand(3, dtype=dtype, generator=g).requires_grad_()
    broadcast = torch.rand(6, 1, 3, dtype=dtype, generator=g).requires_grad_()  # one a per t
    b = torch.randn(6, 2, 3, dtype=dtype, generator=g).requires_grad_()
    for a in (per_step, constant, broadcast):
        assert torch.autograd.gradcheck(scan_sequential, (a, b))


def test_scans_stay_finite_with_coefficients_at_the_edges():
    # |a| = 0.9999 over T = 4000 and a tiny a (its products underflow to 0): no overflow,
    # no NaN, because nothing divides by a power of a
    T = 4000
    for a in (torch.tensor([0.9999, 1e-30, 0.0]), torch.full((T, 1, 3), 0.9999)):
        b = torch.ones(T, 1, 3)
        want = scan_loop(a.double(), b.double())
        for fn in FAST.values():
            h = fn(a, b)
            assert torch.isfinite(h).all()
            _assert_close(h.double(), want, 1e-5)


def test_log_space_scan_is_exact_in_float64_and_loses_digits_in_float32():
    # minGRU's log-space form: equal in float64; in float32 at T = 2000 its error grows
    # with sum(log a), which is why training uses the sequential / associative scans
    a, b = _inputs("mingru", 2000, torch.float64)
    want = scan_loop(a, b)
    _assert_close(scan_log(a, b), want, 1e-10)
    err32 = (scan_log(a.float(), b.float()).double() - want).abs().max().item()
    err_seq = (scan_sequential(a.float(), b.float()).double() - want).abs().max().item()
    assert err_seq < 1e-6 < err32


def test_linear_scan_picks_the_method_and_names_the_options():
    a, b = _inputs("real", 50, torch.float64)
    for method in ("auto", *METHODS):
        if method == "log":
            continue
        _assert_close(linear_scan(a, b, method), scan_loop(a, b), 1e-12)
    with pytest.raises(ValueError, match=r"unknown scan method 'fft'; options are \['auto'"):
        linear_scan(a, b, "fft")
