"""The NumPy BPTT reference against torch autograd and central finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnngrad.reference import ElmanParams, elman_bptt, elman_forward

B, T, IN, H = 3, 7, 2, 4


def _params(seed: int = 0, readout: bool = True) -> ElmanParams:
    rng = np.random.default_rng(seed)
    return ElmanParams(
        w_ih=rng.normal(size=(H, IN)),
        w_hh=rng.normal(size=(H, H)) * 0.6,
        b_ih=rng.normal(size=H) * 0.1,
        b_hh=rng.normal(size=H) * 0.1,
        w_out=rng.normal(size=H) if readout else None,
        b_out=0.3 if readout else 0.0,
    )


def _data(seed: int = 1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(B, T, IN)), rng.normal(size=B), rng.normal(size=(B, H))


def _torch_bptt(x, p: ElmanParams, activation, y=None, g=None, h0=None):
    """The same recurrence in torch float64, differentiated by autograd."""
    names = ["w_ih", "w_hh", "b_ih", "b_hh"] + (["w_out", "b_out"] if y is not None else [])
    tp = {k: torch.tensor(getattr(p, k), dtype=torch.float64, requires_grad=True) for k in names}
    xt = torch.tensor(x)
    h = torch.zeros(B, H, dtype=torch.float64) if h0 is None else torch.tensor(h0)
    h.requires_grad_()
    h_init, hs = h, []
    for t in range(T):
        a = xt[:, t] @ tp["w_ih"].T + tp["b_ih"] + h @ tp["w_hh"].T + tp["b_hh"]
        h = torch.tanh(a) if activation == "tanh" else a
        hs.append(h)
    if y is not None:
        loss = ((hs[-1] @ tp["w_out"] + tp["b_out"] - torch.tensor(y)) ** 2).sum()
    else:
        loss = (torch.tensor(g) * hs[-1]).sum()
    grads = torch.autograd.grad(loss, [tp[k] for k in names] + hs + [h_init])
    return (
        loss.item(),
        {k: gr.numpy() for k, gr in zip(names, grads, strict=False)},
        torch.stack(grads[len(names) : len(names) + T], dim=1).numpy(),
        grads[-1].numpy(),
    )


@pytest.mark.parametrize("activation", ["tanh", "identity"])
@pytest.mark.parametrize("loss", ["readout", "given"])
def test_matches_autograd(activation, loss):
    p = _params(readout=loss == "readout")
    x, y, g = _data()
    h0 = np.random.default_rng(2).normal(size=(B, H))
    kwargs = {"y": y} if loss == "readout" else {"grad_h_last": g}
    r = elman_bptt(x, p, h0=h0, activation=activation, **kwargs)
    t_loss, t_grads, t_grad_h, t_grad_h0 = _torch_bptt(
        x, p, activation, y=kwargs.get("y"), g=kwargs.get("grad_h_last"), h0=h0
    )
    assert r.loss == pytest.approx(t_loss, rel=1e-12)
    expected = {"w_ih", "w_hh", "b_ih", "b_hh"} | (
        {"w_out", "b_out"} if loss == "readout" else set()
    )
    assert set(r.grads) == expected
    for name in expected:
        np.testing.assert_allclose(r.grads[name], t_grads[name], rtol=0, atol=1e-10)
    np.testing.assert_allclose(r.grad_h, t_grad_h, rtol=0, atol=1e-10)
    np.testing.assert_allclose(r.grad_h0, t_grad_h0, rtol=0, atol=1e-10)
    assert r.grad_h.shape == (B, T, H)


def test_forward_matches_torch_fused_rnn():
    p = _params()
    x, _, _ = _data()
    rnn = torch.nn.RNN(IN, H, batch_first=True).double()
    with torch.no_grad():
        for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
            torch_name = {"w": "weight", "b": "bias"}[name[0]] + "_" + name[2:] + "_l0"
            getattr(rnn, torch_name).copy_(torch.tensor(getattr(p, name)))
        hs, _ = rnn(torch.tensor(x))
    np.testing.assert_allclose(elman_forward(x, p), hs.numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("activation", ["tanh", "identity"])
def test_finite_differences(activation):
    p = _params()
    x, y, _ = _data()
    h0 = np.random.default_rng(3).normal(size=(B, H))
    r = elman_bptt(x, p, y=y, h0=h0, activation=activation)
    eps = 1e-6

    def loss_with(**changes):
        q = ElmanParams(**{**vars(p), **{k: v for k, v in changes.items() if k != "h0"}})
        return elman_bptt(x, q, y=y, h0=changes.get("h0", h0), activation=activation).loss

    for name in ("w_ih", "w_hh", "b_ih", "b_hh", "w_out", "h0"):
        value = h0 if name == "h0" else getattr(p, name)
        analytic = r.grad_h0 if name == "h0" else r.grads[name]
        for idx in np.ndindex(value.shape):
            up, down = value.copy(), value.copy()
            up[idx] += eps
            down[idx] -= eps
            numeric = (loss_with(**{name: up}) - loss_with(**{name: down})) / (2 * eps)
            assert numeric == pytest.approx(analytic[idx], rel=1e-6, abs=1e-6), (name, idx)
    numeric_b = (loss_with(b_out=p.b_out + eps) - loss_with(b_out=p.b_out - eps)) / (2 * eps)
    assert numeric_b == pytest.approx(r.grads["b_out"], rel=1e-6, abs=1e-6)


def test_identity_activation_is_a_matrix_power():
    # h_t linear, W_hh = a I, zero biases: dL/dh_t = a^(T-1-t) dL/dh_{T-1}
    a = 0.8
    p = ElmanParams(np.ones((H, IN)), a * np.eye(H), np.zeros(H), np.zeros(H))
    x, _, g = _data()
    r = elman_bptt(x, p, grad_h_last=g, activation="identity")
    for t in range(T):
        np.testing.assert_allclose(r.grad_h[:, t], a ** (T - 1 - t) * g, rtol=1e-13)


def test_bad_arguments():
    p = _params()
    x, y, g = _data()
    with pytest.raises(ValueError, match="exactly one"):
        elman_bptt(x, p)
    with pytest.raises(ValueError, match="exactly one"):
        elman_bptt(x, p, y=y, grad_h_last=g)
    with pytest.raises(ValueError, match="w_out"):
        elman_bptt(x, _params(readout=False), y=y)
    with pytest.raises(ValueError, match="options are"):
        elman_bptt(x, p, y=y, activation="relu")
