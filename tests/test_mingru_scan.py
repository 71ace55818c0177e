"""minGRU's fused gates-and-scan Functions equal the gates and the loop written out.

The reference is what `MinGRU.cell_step` computes: z = sigmoid(pz), h~ = g_activation(ph),
h_t = (1 - z_t) h_{t-1} + z_t h~_t through autograd (rnngrad.scan.scan_loop). Both
implementations are held to it: the torch Function (mingru_scan) and the compiled kernel
(mingru_scan_native), which is skipped where numba does not work, except in CI (CI=true),
where the kernel is what training uses and a skip would hide it.
"""

from __future__ import annotations

import pytest
import torch

from rnngrad import native
from rnngrad.cells import g_activation, scan_method
from rnngrad.mingru_scan import mingru_scan, mingru_scan_native, native_available
from rnngrad.models import VariantSpec, build_model
from rnngrad.scan import scan_loop
from tests.ci import skip_unless_ci


def _need_kernel(dtype: torch.dtype = torch.float32) -> None:
    if not native_available(dtype):
        reason = f"no minGRU kernel: {native.why_unavailable(dtype)}"
        skip_unless_ci(reason, "the compiled kernel must load")


def _native(p: torch.Tensor) -> torch.Tensor:
    _need_kernel(p.dtype)
    return mingru_scan_native(p)


SCANS = pytest.mark.parametrize("scan", [mingru_scan, _native], ids=["torch", "native"])

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
B, H = 3, 6


def _reference(p: torch.Tensor) -> torch.Tensor:
    pz, ph = p.chunk(2, dim=-1)
    z = torch.sigmoid(pz)
    return scan_loop(1 - z, z * g_activation(ph))


def _preactivations(T: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """(T, B, 2H): gates from near-closed to near-open, and candidates at g's seam.

    ph holds exact zeros, -0.0 and numbers a few ulps either side of 0, where
    g(v) = v + 0.5 meets sigmoid(v) and g' jumps from 1/4 to 1.
    """
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(T, B, 2 * H, generator=g, dtype=torch.float64) * 3
    p[..., :H] -= 2  # z mostly small: a = 1 - z near 1, long memory
    seam = torch.tensor([0.0, -0.0, 1e-30, -1e-30, 1e-8, -1e-8, 6e-8, -6e-8], dtype=p.dtype)
    flat = p[..., H:].reshape(-1)
    flat[: min(flat.numel(), 4 * seam.numel())] = seam.repeat(4)[: flat.numel()]
    p[..., H:] = flat.view(T, B, H)
    return p.to(dtype)


@SCANS
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("T", [1, 2, 50, 2000])
def test_fused_scan_equals_the_loop_in_values_and_gradients(scan, dtype, T):
    p = _preactivations(T, dtype)
    upstream = torch.randn(T, B, H, generator=torch.Generator().manual_seed(1)).to(dtype)
    results = []
    for fn in (_reference, scan):
        x = p.clone().requires_grad_()
        h = fn(x)
        (grad,) = torch.autograd.grad((h * upstream).sum(), x)
        results.append((h.detach(), grad))
    (want_h, want_g), (got_h, got_g) = results
    for got, want in ((got_h, want_h), (got_g, want_g)):
        assert got.shape == want.shape and got.dtype == want.dtype
        scale = max(1.0, want.abs().max().item())
        assert (got - want).abs().max().item() <= TOL[dtype] * scale


@SCANS
def test_candidate_is_g_activation_bit_for_bit_and_its_derivative_jumps_at_zero(scan):
    # one step, z = 1/2: h_0 = h~_0 / 2 and dh_0/dph_0 = g'(ph_0) / 2
    v = torch.tensor([0.0, -0.0, 1e-30, -1e-30, -6e-8, 6e-8, -3.0, 2.0], dtype=torch.float32)
    p = torch.cat([torch.zeros_like(v), v]).view(1, 1, -1).requires_grad_()
    h = scan(p)
    assert torch.equal(h.detach().flatten() * 2, g_activation(v))
    (grad,) = torch.autograd.grad(h.sum(), p)
    x = v.clone().requires_grad_()
    (want,) = torch.autograd.grad(g_activation(x).sum(), x)  # 1 for v >= 0, sigmoid' below
    assert torch.equal(grad.flatten()[v.numel() :] * 2, want)
    assert want[:4].tolist() == [1.0, 1.0, 1.0, 0.25] and want[4] == 0.25


@pytest.mark.parametrize("has_kernel", [True, False], ids=["compiler", "none"])
def test_the_cpu_trains_mingru_with_the_kernel_where_it_builds(monkeypatch, has_kernel):
    if has_kernel:
        _need_kernel()  # skips (fails in CI) without numba
    else:
        monkeypatch.setattr(native, "_loaded", dict.fromkeys(native.DTYPES))
    want, backward = ("native", "_MinGRUNativeBackward") if has_kernel else ("fused", None)
    assert [scan_method("mingru", d) for d in ("cpu", "cuda")] == [want, "associative"]
    assert scan_method("mingru", "cpu", torch.float16) == "fused"  # the kernel: f32, f64
    assert [scan_method("lru", d) for d in ("cpu", "cuda")] == ["sequential", "associative"]
    assert scan_method("indrnn", "cpu") == "loop"
    core = build_model(VariantSpec(cell="mingru", hidden_size=H), "adding", 10, 0).core
    xi = torch.randn(10, B, 2 * H, requires_grad=True)
    name = type(core.scan(xi, core.coefficient()).grad_fn).__name__
    assert name == (backward or "_MinGRUBackward")


@pytest.mark.parametrize("shape", [(7, 5), (7, 2, 3)], ids=["B", "B1xB2"])
def test_native_kernel_takes_any_batch_shape_and_strided_input(shape):
    # the kernel reads (T, B, 2H) rows: batch axes flattened, a strided p made contiguous
    T, *batch = shape
    base = torch.randn(T, *batch, 4 * H, dtype=torch.float64)
    p = base[..., ::2].requires_grad_()  # (T, ..., 2H), not contiguous
    upstream = torch.randn(T, *batch, H, dtype=torch.float64)
    want = torch.autograd.grad((_reference(p) * upstream).sum(), p)[0]
    h = _native(p)
    assert h.shape == (T, *batch, H)
    assert torch.allclose(h, _reference(p), atol=1e-12, rtol=0)
    assert torch.allclose(torch.autograd.grad((h * upstream).sum(), p)[0], want, atol=1e-12)


def test_native_backward_refuses_a_second_pass_through_a_retained_graph():
    p = torch.randn(4, B, 2 * H, requires_grad=True)
    h = _native(p)
    h.sum().backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="second backward"):
        h.sum().backward()


def test_native_scan_names_why_it_cannot_run():
    with pytest.raises(ValueError, match="float16"):
        mingru_scan_native(torch.zeros(2, 1, 4, dtype=torch.float16))


@pytest.mark.parametrize("has_kernel", [True, False], ids=["compiler", "none"])
def test_a_run_records_the_scan_it_trained_with(tmp_path, monkeypatch, has_kernel):
    # the two minGRU scans round differently, so a run says which one trained it
    from rnngrad.settings import RunSpec
    from rnngrad.train import train_run

    if has_kernel:
        _need_kernel()
    else:
        monkeypatch.setattr(native, "_loaded", dict.fromkeys(native.DTYPES))
    got = {}
    for cell in ("mingru", "lstm", "lru"):
        spec = RunSpec("adding", 6, cell, VariantSpec(cell=cell, hidden_size=4), steps=2,
                       eval_every=1, eval_size=8, test_size=8, device="cpu")  # fmt: skip
        got[cell] = train_run(spec, tmp_path / cell, probe=False, progress=False)["scan"]
    assert got == {
        "mingru": "native" if has_kernel else "fused",
        "lstm": "torch",
        "lru": "sequential",
    }
