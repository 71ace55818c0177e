"""Gradient probes: exact cases, the NumPy reference, Jacobians, the bound, summaries."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from rnngrad import probes, tasks
from rnngrad.models import GATE_NAMES, SequenceModel, VariantSpec, build_model
from rnngrad.probes import (
    PROFILE_COLUMNS,
    decay_rate,
    decay_summary,
    gradient_profile,
    horizon,
    init_probe,
    weight_spectra,
)
from rnngrad.reference import ElmanParams, elman_bptt


class _LinearRNN(SequenceModel):
    """Test only: rnn_tanh's parameters with the identity activation, h' = xi + W h + b."""

    def cell_step(self, xi, state, w_hh):
        return (xi + state[0] @ w_hh.T + self.rnn.bias_hh_l0,)


def _linear_model(w_hh: torch.Tensor) -> _LinearRNN:
    H = w_hh.shape[0]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = _LinearRNN(VariantSpec(cell="rnn_tanh", hidden_size=H), "adding").double()
    with torch.no_grad():
        model.rnn.weight_hh_l0.copy_(w_hh)
        model.rnn.bias_hh_l0.zero_()
        model.rnn.bias_ih_l0.zero_()
    return model


def _model(cell, H=6, init="default", task="adding", length=12, seed=0, **kw):
    spec = VariantSpec(cell=cell, hidden_size=H, init=init, **kw)
    return build_model(spec, task, length=length, seed=seed).double()


def _batch(task="adding", length=12, batch=4, step=0):
    return tasks.make_batch(task, length, batch, tasks.PROBE_SEED, step=step)


# ---------------------------------------------------------------- exact cases


@pytest.mark.parametrize("a", [0.7, 1.15])
def test_linear_recurrence_decays_as_a_power(a):
    T, H = 25, 4
    model = _linear_model(a * torch.eye(H, dtype=torch.float64))
    x, y = _batch(length=T, batch=5)
    prof = gradient_profile(model, x, y, "adding", jac_examples=None)
    assert list(prof.columns) == list(PROFILE_COLUMNS)
    assert prof["t"].tolist() == list(range(T))
    assert prof["distance"].tolist() == [T - 1 - t for t in range(T)]
    g0 = prof.loc[prof["distance"] == 0, "grad_h"].item()
    expected = a ** prof["distance"].to_numpy(dtype=float)
    np.testing.assert_allclose(prof["grad_h"] / g0, expected, rtol=1e-6)
    np.testing.assert_allclose(prof["grad_h_q1"] / prof["grad_h_q1"].iloc[-1], expected, rtol=1e-6)
    assert decay_rate(prof) == pytest.approx(math.log10(a), abs=1e-6)
    np.testing.assert_allclose(prof["jac_norm"], a, rtol=1e-10)
    np.testing.assert_allclose(prof["bound"], expected, rtol=1e-10)
    assert prof["grad_c"].isna().all()


def test_orthogonal_linear_recurrence_keeps_the_norm():
    T, H = 30, 5
    gen = torch.Generator().manual_seed(1)
    q, _ = torch.linalg.qr(torch.randn(H, H, generator=gen, dtype=torch.float64))
    prof = gradient_profile(_linear_model(q), *_batch(length=T, batch=5), "adding")
    np.testing.assert_allclose(prof["grad_h"], prof["grad_h"].iloc[-1], rtol=1e-10)
    np.testing.assert_allclose(prof["jac_norm"], 1.0, rtol=1e-10)
    assert decay_rate(prof) == pytest.approx(0.0, abs=1e-10)
    assert horizon(prof) == (T - 1, True)


def test_tanh_profile_matches_numpy_bptt():
    T, B = 15, 5
    model = _model("rnn_tanh", H=6, length=T)
    x, y = _batch(length=T, batch=B)
    rnn = model.rnn
    params = ElmanParams(
        *(getattr(rnn, n).detach().numpy() for n in ("weight_ih_l0", "weight_hh_l0")),
        *(getattr(rnn, n).detach().numpy() for n in ("bias_ih_l0", "bias_hh_l0")),
        w_out=model.readout.weight.detach().numpy()[0],
        b_out=float(model.readout.bias.item()),
    )
    ref = elman_bptt(x.double().numpy(), params, y=y.double().numpy())
    ref_norms = np.linalg.norm(ref.grad_h, axis=2)  # (B, T)
    r = probes._probe(model, x, y, "adding", None)
    np.testing.assert_allclose(r["grad_h"], ref_norms.T, rtol=1e-8, atol=1e-12)
    prof = gradient_profile(model, x, y, "adding")
    np.testing.assert_allclose(prof["grad_h"], np.median(ref_norms, axis=0), rtol=1e-8)
    # sorted norms of 5 examples: the quartiles are the 2nd and 4th
    ordered = np.sort(ref_norms, axis=0)
    np.testing.assert_allclose(prof["grad_h_q1"], ordered[1], rtol=1e-8)
    np.testing.assert_allclose(prof["grad_h_q3"], ordered[3], rtol=1e-8)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_relu"])
def test_grad_h_matches_finite_differences(cell):
    T, H, B = 10, 4, 3
    model = _model(cell, H=H, length=T)
    x, y = _batch(length=T, batch=B)
    x = x.double()
    r = probes._probe(model, x, y, "adding", None)

    def loss(t0, b, delta):
        def hook(t, state):
            if t == t0:
                h = state[0].clone()
                h[b] += delta
                return (h, *state[1:])
            return None

        with torch.no_grad():
            out, _ = model.unroll(x, hook)
            return tasks.long_range_loss("adding", out, y.double()).sum().item()

    eps = 1e-6
    for t0, b in [(0, 0), (4, 1), (T - 1, 2)]:
        grad = [
            (loss(t0, b, eps * e) - loss(t0, b, -eps * e)) / (2 * eps)
            for e in torch.eye(H, dtype=torch.float64)
        ]
        assert np.linalg.norm(grad) == pytest.approx(r["grad_h"][t0, b], rel=1e-6, abs=1e-9)


def test_lstm_cell_gradient_at_the_read():
    # dL/dc_{T-1} = dL/dh_{T-1} * o * (1 - tanh^2 c_{T-1}) for a loss read from h_{T-1}
    T, H = 9, 5
    model = _model("lstm", H=H, length=T)
    x, y = _batch(length=T, batch=4)
    x, y = x.double(), y.double()
    r = probes._probe(model, x, y, "adding", None)
    with torch.no_grad():
        out, states = model.unroll(x)
        (h_prev, _), (_, c) = states[-2], states[-1]
        xi = model.step_inputs(model.inputs(x))[:, -1]
        pre = xi + h_prev @ model.rnn.weight_hh_l0.T + model.rnn.bias_hh_l0
        o = torch.sigmoid(pre.chunk(4, dim=-1)[3])
        dh = 2 * (out - y)[:, None] * model.readout.weight  # (B, H)
        dc = dh * o * (1 - torch.tanh(c) ** 2)
    np.testing.assert_allclose(r["grad_h"][-1], dh.norm(dim=1).numpy(), rtol=1e-10)
    np.testing.assert_allclose(r["grad_c"][-1], dc.norm(dim=1).numpy(), rtol=1e-10)
    prof = gradient_profile(model, x, y, "adding")
    assert prof["grad_c"].notna().all() and (prof["grad_c"] > 0).all()
    assert (prof["grad_c_q1"] <= prof["grad_c"]).all() and (
        prof["grad_c"] <= prof["grad_c_q3"]
    ).all()


# ---------------------------------------------------------------- batch invariance


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru"])
@pytest.mark.parametrize("task", ["adding", "copy"])
def test_duplicating_the_batch_leaves_the_profile_unchanged(cell, task):
    length = 8
    model = _model(cell, H=6, task=task, length=length)
    x, y = _batch(task, length, batch=3)
    for jac_examples in (probes.JAC_EXAMPLES, None):
        once = gradient_profile(model, x, y, task, jac_examples=jac_examples)
        twice = gradient_profile(
            model, torch.cat([x, x]), torch.cat([y, y]), task, jac_examples=jac_examples
        )
        pd.testing.assert_frame_equal(once, twice, rtol=1e-10)
    interleaved = gradient_profile(
        model, x.repeat_interleave(2, 0), y.repeat_interleave(2, 0), task, jac_examples=None
    )
    pd.testing.assert_frame_equal(once, interleaved, rtol=1e-10)


def test_copy_profile_keeps_rows_after_the_first_read():
    length = 6
    model = _model("gru", task="copy", length=length)
    prof = gradient_profile(model, *_batch("copy", length, batch=3), "copy")
    first_read = tasks.get_task("copy").first_read(length)
    assert len(prof) == length + 20
    np.testing.assert_array_equal(prof["distance"], first_read - np.arange(length + 20))
    assert (prof["distance"] < 0).sum() == 9
    assert (prof["grad_h"] > 0).all()


# ---------------------------------------------------------------- Jacobians and the bound


def _jacrev_norms(model, x, states):
    """||ds_t/ds_{t-1}|| by torch.func.jacrev on the cell, per step and example (S, B)."""
    w = model.recurrent_weight().detach()
    xi = model.step_inputs(model.inputs(x)).detach()  # (B, S, G*H)
    B, S, _ = xi.shape
    H = model.spec.hidden_size
    prevs = [model.initial_state(B, xi)] + [tuple(s.detach() for s in st) for st in states[:-1]]

    def step(flat, xi_t):
        state = (flat[None, :H], flat[None, H:]) if model.cell == "lstm" else (flat[None],)
        return torch.cat(model.cell_step(xi_t[None], state, w), dim=-1)[0]

    out = np.empty((S, B))
    for t, prev in enumerate(prevs):
        J = torch.func.vmap(torch.func.jacrev(step))(torch.cat(prev, dim=-1), xi[:, t])
        out[t] = torch.linalg.matrix_norm(J, ord=2).detach().numpy()
    return out


@pytest.mark.parametrize(
    "cell,init,H",
    [
        ("rnn_tanh", "default", 6),
        ("rnn_tanh", "orthogonal", 32),  # clustered top singular values
        ("rnn_relu", "identity", 6),
        ("lstm", "default", 6),
        ("lstm", "chrono", 6),
        ("gru", "default", 6),
        ("gru", "orthogonal", 6),
    ],
)
def test_jacobian_norms_match_jacrev(cell, init, H):
    T = 8
    model = _model(cell, H=H, init=init, length=T)
    x = _batch(length=T, batch=3)[0].double()
    _, states = model.unroll(x)
    r = probes._probe(model, x, _batch(length=T, batch=3)[1], "adding", None)
    np.testing.assert_allclose(r["jac_norm"], _jacrev_norms(model, x, states), rtol=1e-8)
    prof = gradient_profile(model, x, _batch(length=T, batch=3)[1], "adding", jac_examples=1)
    np.testing.assert_allclose(prof["jac_norm"], r["jac_norm"][:, 0], rtol=1e-12)


@pytest.mark.parametrize(
    "cell,init", [("rnn_tanh", "default"), ("rnn_tanh", "orthogonal"), ("rnn_relu", "identity")]
)
@pytest.mark.parametrize("task,length", [("adding", 30), ("copy", 8)])
def test_bound_is_never_below_the_measured_ratio(cell, init, task, length):
    model = _model(cell, H=8, init=init, task=task, length=length)
    x, y = _batch(task, length, batch=6)
    r = probes._probe(model, x, y, task, None)
    fr = r["first_read"]
    ratio = r["grad_h"][: fr + 1] / r["grad_h"][fr]  # (fr + 1, B)
    bound = r["bound"]
    assert np.all(bound[: fr + 1] >= ratio * (1 - 1e-10))
    np.testing.assert_array_equal(bound[fr], 1.0)
    assert np.isnan(bound[fr + 1 :]).all()
    prof = gradient_profile(model, x, y, task, jac_examples=None)
    np.testing.assert_allclose(prof["bound"].iloc[: fr + 1], np.median(bound[: fr + 1], axis=1))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_no_bound_for_gated_cells(cell):
    prof = gradient_profile(_model(cell), *_batch(), "adding")
    assert prof["bound"].isna().all()
    assert (prof["jac_norm"] > 0).all()


def test_orthogonal_constraint_is_probed_through_the_parametrisation():
    T = 10
    constrained = _model("rnn_tanh", H=6, length=T, constraint="orthogonal")
    plain = _model("rnn_tanh", H=6, length=T)
    with torch.no_grad():
        plain.load_state_dict(
            {k: v for k, v in constrained.state_dict().items() if "parametrizations" not in k},
            strict=False,
        )
        plain.rnn.weight_hh_l0.copy_(constrained.recurrent_weight())
    x, y = _batch(length=T)
    a = gradient_profile(constrained, x, y, "adding")
    pd.testing.assert_frame_equal(a, gradient_profile(plain, x, y, "adding"), rtol=1e-10)
    # ||diag(tanh') Q|| = max tanh' <= 1 for an orthogonal Q
    assert (a["jac_norm"] <= 1 + 1e-12).all()


# ---------------------------------------------------------------- no side effects


def test_probe_leaves_training_state_alone():
    model = _model("lstm")
    x, y = _batch()
    tasks.loss("adding", model(x.double()), y.double()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    rng = torch.get_rng_state()
    with torch.no_grad():  # a caller's no_grad does not stop the probe
        prof = gradient_profile(model, x, y, "adding")
    assert prof["grad_h"].notna().all()
    assert torch.equal(torch.get_rng_state(), rng)
    for n, p in model.named_parameters():
        assert torch.equal(p.grad, grads[n]) and torch.equal(p.detach(), weights[n])


def test_bad_inputs():
    model = _model("gru")
    x, y = _batch()
    with pytest.raises(ValueError, match="jac_examples"):
        gradient_profile(model, x, y, "adding", jac_examples=0)
    with pytest.raises(ValueError, match="sequence length"):
        gradient_profile(model, x[:, :1], y, "adding")
    frozen = _model("gru").requires_grad_(False)
    with pytest.raises(ValueError, match="require grad"):
        gradient_profile(frozen, x, y, "adding")


# ---------------------------------------------------------------- spectra and summaries


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru"])
def test_weight_spectra_of_orthogonal_init(cell):
    spectra = weight_spectra(
        build_model(VariantSpec(cell=cell, hidden_size=16, init="orthogonal"), "adding")
    )
    assert list(spectra.columns) == ["gate", "spectral_norm", "spectral_radius"]
    assert spectra["gate"].tolist() == list(GATE_NAMES[cell])
    np.testing.assert_allclose(spectra["spectral_norm"], 1.0, atol=1e-5)
    np.testing.assert_allclose(spectra["spectral_radius"], 1.0, atol=1e-5)


def test_weight_spectra_match_numpy():
    model = build_model(VariantSpec(cell="gru", hidden_size=16), "adding", seed=0)
    spectra = weight_spectra(model)
    w = model.rnn.weight_hh_l0.detach().double().numpy()
    for k, block in enumerate(np.split(w, 3)):
        row = spectra.iloc[k]
        assert row["spectral_norm"] == pytest.approx(np.linalg.norm(block, 2), rel=1e-12)
        assert row["spectral_radius"] == pytest.approx(np.abs(np.linalg.eigvals(block)).max())
    assert (spectra["spectral_radius"] <= spectra["spectral_norm"]).all()


def _synthetic(grad_h, start=0):
    d = np.arange(len(grad_h))[::-1] + start  # rows in time order: distance decreasing
    return pd.DataFrame({"t": np.arange(len(grad_h)), "distance": d, "grad_h": grad_h[::-1]})


def test_horizon_and_decay_on_synthetic_profiles():
    falling = _synthetic(10.0 ** -np.arange(10.0))  # grad_h = 10^-distance
    assert decay_rate(falling) == pytest.approx(-1.0)
    assert horizon(falling) == (3, False)  # 1e-3 is still >= 1e-3 of 1
    flat = _synthetic(np.full(10, 2.0))
    assert horizon(flat) == (9, True)  # never falls: censored, the whole sequence
    slow = _synthetic(10.0 ** (-0.5 * np.arange(10.0)))
    assert decay_summary(slow) == {
        "decay_rate": pytest.approx(-0.5),
        "horizon": 6,
        "horizon_censored": False,
    }


def test_summaries_ignore_rows_after_the_read_and_zero_gradients():
    prof = _synthetic(np.array([1.0, 0.1, 0.0, 1e-3, 1e-4]), start=-2)  # distances -2..2
    assert decay_rate(prof) == pytest.approx(-1.0)  # distances 0 and 1 only: 1 -> 0.1
    prof = _synthetic(np.array([5.0, 1.0, 1e-2, 1e-4]), start=-1)  # distance 0 is 1.0
    assert horizon(prof) == (1, False)


def test_summaries_of_degenerate_profiles():
    dead = _synthetic(np.array([0.0, 0.0, 0.0]))
    assert math.isnan(decay_rate(dead))
    with pytest.raises(ValueError, match="distance 0"):
        horizon(dead)
    summary = decay_summary(_synthetic(np.array([np.nan, 1.0])))
    assert math.isnan(summary["horizon"]) and summary["horizon_censored"] is False
    two = pd.concat([_synthetic(np.ones(3)), _synthetic(np.ones(3))])
    with pytest.raises(ValueError, match="one profile"):
        decay_rate(two)
    with pytest.raises(ValueError, match="one profile"):
        decay_summary(two)


# ---------------------------------------------------------------- init_probe


def test_init_probe_shape_columns_and_determinism():
    spec = VariantSpec(cell="gru", hidden_size=8)
    df = init_probe("adding", 12, "gru_small", spec, seeds=2, batch_size=4)
    assert list(df.columns) == ["task", "length", "variant", "seed", *PROFILE_COLUMNS]
    assert len(df) == 2 * 12
    assert df["seed"].tolist() == [0] * 12 + [1] * 12
    assert set(df["task"]) == {"adding"} and set(df["length"]) == {12}
    assert set(df["variant"]) == {"gru_small"}
    pd.testing.assert_frame_equal(df, init_probe("adding", 12, "gru_small", spec, 2, 4))
    other = init_probe("adding", 12, "gru_small", spec, seeds=[1, 5], batch_size=4)
    pd.testing.assert_frame_equal(
        df[df["seed"] == 1].reset_index(drop=True),
        other[other["seed"] == 1].reset_index(drop=True),
    )
    first, fifth = (other[other["seed"] == s]["grad_h"].to_numpy() for s in (1, 5))
    assert not np.allclose(first, fifth)


def test_init_probe_copy_chrono():
    spec = VariantSpec(cell="lstm", hidden_size=8, init="chrono")
    df = init_probe("copy", 5, "lstm_chrono", spec, seeds=[3], batch_size=2)
    assert len(df) == 25 and df["seed"].eq(3).all()
    assert df["grad_c"].notna().all() and df["bound"].isna().all()


def test_init_probe_in_float64_keeps_what_float32_rounds_to_zero():
    spec = VariantSpec(cell="rnn_tanh", hidden_size=32)
    f32 = init_probe("adding", 150, "rnn", spec, seeds=[0], batch_size=2)
    f64 = init_probe("adding", 150, "rnn", spec, seeds=[0], batch_size=2, dtype=torch.float64)
    assert (f32["grad_h"] == 0).any() and (f64["grad_h"] > 0).all()
    near = f32["distance"] <= 20
    np.testing.assert_allclose(f32.loc[near, "grad_h"], f64.loc[near, "grad_h"], rtol=1e-4)


def test_jacobian_norm_survives_an_eigensolver_failure(monkeypatch):
    """LAPACK can fail on one ill-conditioned matrix of a batch (seen with a blowing-up
    IRNN): the others keep their value, the failing one becomes NaN, nothing raises."""
    import torch

    from rnngrad import probes

    real = torch.linalg.eigvalsh
    gram = (
        torch.eye(3, dtype=torch.float64).repeat(3, 1, 1)
        * torch.tensor([1.0, 4.0, 9.0])[:, None, None]
    )

    def flaky(a):
        if a.ndim == 3 or bool((a == 4.0).any()):
            raise torch.linalg.LinAlgError("failed to converge")
        return real(a)

    monkeypatch.setattr(torch.linalg, "eigvalsh", flaky)
    top = probes._top_eigenvalue(gram)
    assert top[0] == 1.0 and top[2] == 9.0 and torch.isnan(top[1])
