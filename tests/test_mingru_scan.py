"""minGRU's fused gates-and-scan Function equals the gates and the loop written out.

The reference is what `MinGRU.cell_step` computes: z = sigmoid(pz), h~ = g_activation(ph),
h_t = (1 - z_t) h_{t-1} + z_t h~_t through autograd (rnngrad.scan.scan_loop).
"""

from __future__ import annotations

import pytest
import torch

from rnngrad.cells import g_activation, scan_method
from rnngrad.mingru_scan import mingru_scan
from rnngrad.models import VariantSpec, build_model
from rnngrad.scan import scan_loop

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


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("T", [1, 2, 50, 2000])
def test_fused_scan_equals_the_loop_in_values_and_gradients(dtype, T):
    p = _preactivations(T, dtype)
    upstream = torch.randn(T, B, H, generator=torch.Generator().manual_seed(1)).to(dtype)
    results = []
    for fn in (_reference, mingru_scan):
        x = p.clone().requires_grad_()
        h = fn(x)
        (grad,) = torch.autograd.grad((h * upstream).sum(), x)
        results.append((h.detach(), grad))
    (want_h, want_g), (got_h, got_g) = results
    for got, want in ((got_h, want_h), (got_g, want_g)):
        assert got.shape == want.shape and got.dtype == want.dtype
        scale = max(1.0, want.abs().max().item())
        assert (got - want).abs().max().item() <= TOL[dtype] * scale


def test_candidate_is_g_activation_bit_for_bit_and_its_derivative_jumps_at_zero():
    # one step, z = 1/2: h_0 = h~_0 / 2 and dh_0/dph_0 = g'(ph_0) / 2
    v = torch.tensor([0.0, -0.0, 1e-30, -1e-30, -6e-8, 6e-8, -3.0, 2.0], dtype=torch.float32)
    p = torch.cat([torch.zeros_like(v), v]).view(1, 1, -1).requires_grad_()
    h = mingru_scan(p)
    assert torch.equal(h.detach().flatten() * 2, g_activation(v))
    (grad,) = torch.autograd.grad(h.sum(), p)
    x = v.clone().requires_grad_()
    (want,) = torch.autograd.grad(g_activation(x).sum(), x)  # 1 for v >= 0, sigmoid' below
    assert torch.equal(grad.flatten()[v.numel() :] * 2, want)
    assert want[:4].tolist() == [1.0, 1.0, 1.0, 0.25] and want[4] == 0.25


def test_the_cpu_trains_mingru_with_the_fused_scan():
    assert [scan_method("mingru", d) for d in ("cpu", "cuda")] == ["fused", "associative"]
    assert [scan_method("lru", d) for d in ("cpu", "cuda")] == ["sequential", "associative"]
    assert scan_method("indrnn", "cpu") == "loop"
    core = build_model(VariantSpec(cell="mingru", hidden_size=H), "adding", 10, 0).core
    xi = torch.randn(10, B, 2 * H, requires_grad=True)
    assert type(core.scan(xi, core.coefficient()).grad_fn).__name__ == "_MinGRUBackward"
