"""Gradient probes: exact cases, the NumPy reference, Jacobians, the per-example bound,
float64 precision, and no side effects."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch

from rnngrad import aggregate, jacobians, probes, tasks
from rnngrad.measures import decay_rate, horizon
from rnngrad.models import GATE_NAMES, SequenceModel, VariantSpec, build_model
from rnngrad.probes import PROFILE_COLUMNS, gradient_profile, init_probe, weight_spectra
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
    return tasks.make_batch(task, length, batch, seed=step, step=0, stream="probe")


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
    # J = a I: the bound a**distance is the measured ratio itself
    np.testing.assert_allclose(prof["tightness"], 1.0, rtol=1e-9)
    np.testing.assert_array_equal(prof["bound_holds"], 1.0)
    np.testing.assert_array_equal(prof["bound_examples"], 5)
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
    for jac_examples, factor in ((1, 1), (None, 2)):
        once = gradient_profile(model, x, y, task, jac_examples=jac_examples)
        twice = gradient_profile(
            model, torch.cat([x, x]), torch.cat([y, y]), task, jac_examples=jac_examples
        )
        # every column but the count of examples behind the bound
        assert (twice["bound_examples"] == factor * once["bound_examples"]).all()
        same = [c for c in PROFILE_COLUMNS if c != "bound_examples"]
        pd.testing.assert_frame_equal(once[same], twice[same], rtol=1e-10)
    interleaved = gradient_profile(
        model, x.repeat_interleave(2, 0), y.repeat_interleave(2, 0), task, jac_examples=None
    )
    pd.testing.assert_frame_equal(once[same], interleaved[same], rtol=1e-10)


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


GAINS = [0.5, 1.0, 1.5, 3.0]
BOUND_COLUMNS = ["bound", "bound_holds", "tightness", "tightness_q90"]


def _gain_model(cell, gain, H=8, task="adding", length=30, seed=0):
    """A model of `cell` with W_hh = gain * Q, Q a random orthogonal matrix."""
    model = _model(cell, H=H, task=task, length=length, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(H, H, generator=gen, dtype=torch.float64))
    with torch.no_grad():
        model.rnn.weight_hh_l0.copy_(gain * q)
    return model


def _reading(prof):
    return prof["distance"] >= 0


@pytest.mark.parametrize("cell", ["rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("gain", GAINS)
@pytest.mark.parametrize("task,length", [("adding", 40), ("copy", 8)])
def test_per_example_bound_holds_at_every_step(cell, gain, task, length):
    B = 6
    model = _gain_model(cell, gain, task=task, length=length)
    x, y = _batch(task, length, batch=B)
    r = probes._probe(model, x, y, task, None)
    fr = r["first_read"]
    ratio = r["grad_h"][: fr + 1] / r["grad_h"][fr]  # (fr + 1, B): each example's own
    bound = np.exp(r["log_bound"][: fr + 1])
    assert np.all(ratio <= bound * (1 + probes.BOUND_SLACK))
    assert np.isnan(r["log_bound"][fr + 1 :]).all()

    prof = gradient_profile(model, x, y, task, jac_examples=None)
    reading = _reading(prof)
    np.testing.assert_array_equal(prof.loc[reading, "bound_holds"], 1.0)
    np.testing.assert_array_equal(prof.loc[reading, "bound_examples"], B)
    np.testing.assert_allclose(prof.loc[reading, "bound"], np.median(bound, axis=1), rtol=1e-12)
    assert prof.loc[~reading, BOUND_COLUMNS].isna().all().all()
    assert (prof.loc[~reading, "bound_examples"] == 0).all()
    # ... and in the decay table: the share of (example, step) pairs
    keys = {"task": task, "length": length, "variant": f"{cell}_gain{gain}", "seed": 0}
    decay = aggregate.decay_table(prof.assign(**keys), pd.DataFrame())
    assert decay["bound_share"].tolist() == [1.0]
    assert decay["bound_pairs"].tolist() == [B * (fr + 1)]


@pytest.mark.parametrize("init", ["default", "orthogonal"])
def test_per_example_bound_holds_for_the_gru(init):
    model = _model("gru", H=8, init=init, task="copy", length=10)
    prof = gradient_profile(model, *_batch("copy", 10, batch=5), "copy", jac_examples=None)
    np.testing.assert_array_equal(prof.loc[_reading(prof), "bound_holds"], 1.0)
    assert (prof.loc[_reading(prof), "tightness"] >= 1 - 1e-9).all()


def test_bound_holds_catches_a_bound_below_the_measured_ratio(monkeypatch):
    # W = a Q is exactly tight: norms 10 % low put the bound below every ratio past r
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=torch.Generator().manual_seed(2)).double())
    model = _linear_model(0.8 * q)
    real = jacobians.spectral_norms
    monkeypatch.setattr(jacobians, "spectral_norms", lambda J: 0.9 * real(J))
    prof = gradient_profile(model, *_batch(length=12, batch=4), "adding", jac_examples=None)
    holds = prof.set_index("distance")["bound_holds"]
    assert holds[0] == 1.0 and (holds.drop(0) == 0.0).all()
    np.testing.assert_allclose(prof["tightness"], 0.9 ** prof["distance"], rtol=1e-9)


@pytest.mark.parametrize("a", [0.5, 1.0, 1.5])
def test_tightness_is_one_for_a_scaled_orthogonal_linear_recurrence(a):
    T, H = 30, 6
    q, _ = torch.linalg.qr(torch.randn(H, H, generator=torch.Generator().manual_seed(3)).double())
    prof = gradient_profile(_linear_model(a * q), *_batch(length=T, batch=7), "adding", None)
    np.testing.assert_allclose(prof["bound"], a ** prof["distance"].astype(float), rtol=1e-9)
    np.testing.assert_allclose(prof[["tightness", "tightness_q90"]], 1.0, rtol=1e-9)
    np.testing.assert_array_equal(prof["bound_holds"], 1.0)


@pytest.mark.parametrize("a", [0.6, 1.0, 1.3])
def test_tightness_is_one_for_relu_in_its_linear_region(a):
    # W_hh = a P (P a permutation), W_ih >= 0 and biases > 0 on non-negative inputs keep
    # every pre-activation positive: relu is the identity, J = a P, ||J|| = a.
    T, H = 25, 6
    model = _model("rnn_relu", H=H, length=T)
    perm = torch.eye(H, dtype=torch.float64)[torch.randperm(H, generator=torch.Generator())]
    with torch.no_grad():
        model.rnn.weight_hh_l0.copy_(a * perm)
        model.rnn.weight_ih_l0.abs_()
        model.rnn.bias_ih_l0.fill_(0.5)
        model.rnn.bias_hh_l0.fill_(0.5)
    prof = gradient_profile(model, *_batch(length=T, batch=5), "adding", jac_examples=None)
    np.testing.assert_allclose(prof["jac_norm"], a, rtol=1e-12)
    np.testing.assert_allclose(prof[["tightness", "tightness_q90"]], 1.0, rtol=1e-9)


def test_tightness_of_a_diagonal_linear_recurrence_has_a_closed_form():
    # W = diag(a): dL/dh_t = a**n * g (n = r - t), g = dL/dh_r = 2 (out - y) w_out, so every
    # example's ratio is ||a**n w_out|| / ||w_out|| and its bound max(a)**n.
    T = 20
    a = torch.tensor([0.9, 0.7, 0.5, 0.3], dtype=torch.float64)
    model = _linear_model(torch.diag(a))
    prof = gradient_profile(model, *_batch(length=T, batch=5), "adding", jac_examples=None)
    w = model.readout.weight.detach()[0].numpy()
    n = prof["distance"].to_numpy()[:, None]
    expected = 0.9 ** n[:, 0] * np.linalg.norm(w) / np.linalg.norm(a.numpy() ** n * w, axis=1)
    np.testing.assert_allclose(prof["tightness"], expected, rtol=1e-9)
    np.testing.assert_allclose(prof["tightness_q90"], expected, rtol=1e-9)
    assert expected[0] > 2  # far from 1: the test tells a loose bound from a tight one


def test_no_bound_for_the_lstm():
    prof = gradient_profile(_model("lstm"), *_batch(), "adding")
    assert prof[BOUND_COLUMNS].isna().all().all()
    assert (prof["bound_examples"] == 0).all()
    assert (prof["jac_norm"] > 0).all()
    keys = {"task": "adding", "length": 12, "variant": "lstm", "seed": 0}
    decay = aggregate.decay_table(prof.assign(**keys), pd.DataFrame())
    assert math.isnan(decay["bound_share"].item()) and decay["bound_pairs"].item() == 0


def test_spectral_norms_of_full_and_diagonal_jacobians():
    gen = torch.Generator().manual_seed(4)
    real = torch.randn(5, 7, 7, generator=gen, dtype=torch.float64)
    cplx = torch.complex(real, torch.randn(5, 7, 7, generator=gen, dtype=torch.float64))
    for J in (real, cplx, 1e200 * real, 1e-200 * real):
        np.testing.assert_allclose(
            jacobians.spectral_norms(J), torch.linalg.matrix_norm(J, ord=2), rtol=1e-10
        )
    d = cplx[:, 0]  # (n, D): the diagonal of diag(d)
    torch.testing.assert_close(jacobians.spectral_norms(d), d.abs().amax(dim=1))
    np.testing.assert_allclose(
        jacobians.spectral_norms(d), torch.linalg.matrix_norm(torch.diag_embed(d), ord=2)
    )


def test_an_unregistered_cell_names_the_registered_ones(monkeypatch):
    monkeypatch.delitem(jacobians.JACOBIANS, "gru")
    with pytest.raises(ValueError, match=r"no state Jacobian registered for cell 'gru'.*lstm"):
        gradient_profile(_model("gru"), *_batch(), "adding")


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
    np.testing.assert_array_equal(a["bound_holds"], 1.0)
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


def test_probe_of_a_float32_model_leaves_it_its_optimiser_and_the_rng_alone():
    model = build_model(VariantSpec(cell="rnn_tanh", hidden_size=6), "adding", length=12, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = _batch()
    for _ in range(2):
        opt.zero_grad()
        tasks.loss("adding", model(x), y).backward()
        opt.step()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    state = copy.deepcopy(opt.state_dict())
    rng = torch.get_rng_state()
    gradient_profile(model, x, y, "adding")
    assert torch.equal(torch.get_rng_state(), rng)
    for n, p in model.named_parameters():
        assert p.dtype == torch.float32
        assert torch.equal(p.grad, grads[n]) and torch.equal(p.detach(), weights[n])
    after = opt.state_dict()
    for k, v in state["state"].items():
        for name, tensor in v.items():
            assert torch.equal(after["state"][k][name], tensor)


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


def test_init_probe_does_not_depend_on_the_model_dtype():
    spec = VariantSpec(cell="rnn_tanh", hidden_size=32)
    f32 = init_probe("adding", 150, "rnn", spec, seeds=[0], batch_size=2)
    f64 = init_probe("adding", 150, "rnn", spec, seeds=[0], batch_size=2, dtype=torch.float64)
    pd.testing.assert_frame_equal(f32, f64)
    assert (f32["grad_h"] > 0).all()


def test_init_probe_uses_the_probe_stream_of_its_seed(monkeypatch):
    seen = []
    real = tasks.make_batch
    monkeypatch.setattr(tasks, "make_batch", lambda *a, **k: seen.append((a, k)) or real(*a, **k))
    init_probe("adding", 10, "rnn", VariantSpec(cell="rnn_tanh", hidden_size=4), [3, 7], 2)
    assert [(a[3], a[4], k["stream"]) for a, k in seen] == [(3, 0, "probe"), (7, 0, "probe")]


# ---------------------------------------------------------------- precision


def _elman_params(model) -> ElmanParams:
    rnn = model.rnn
    w = {n: getattr(rnn, n).detach().double().numpy() for n in ("weight_ih_l0", "weight_hh_l0")}
    b = {n: getattr(rnn, n).detach().double().numpy() for n in ("bias_ih_l0", "bias_hh_l0")}
    return ElmanParams(
        w["weight_ih_l0"],
        w["weight_hh_l0"],
        b["bias_ih_l0"],
        b["bias_hh_l0"],
        w_out=model.readout.weight.detach().double().numpy()[0],
        b_out=float(model.readout.bias.item()),
    )


def _scaled_norm(g: np.ndarray) -> np.ndarray:
    m = np.abs(g).max(axis=-1)
    return m * np.linalg.norm(g / np.where(m > 0, m, 1)[..., None], axis=-1)


def test_float32_probe_at_T1000_has_no_zero_and_equals_float64():
    """The default tanh RNN's gradient falls ~0.2 decades a step: ~1e-200 at T = 1000,
    where a float32 probe used to give 0 (and a plain float64 norm, below ~1e-154, too)."""
    T = 1000
    model = build_model(VariantSpec(cell="rnn_tanh", hidden_size=64), "adding", length=T, seed=0)
    assert next(model.parameters()).dtype == torch.float32
    x, y = tasks.make_batch("adding", T, 4, seed=0, step=0, stream="probe")
    f32 = gradient_profile(model, x, y, "adding", jac_examples=1)
    twin = build_model(model.spec, "adding", length=T, seed=0).double()
    f64 = gradient_profile(twin, x.double(), y.double(), "adding", jac_examples=1)
    columns = ["grad_h", "grad_h_q1", "grad_h_q3", "jac_norm", "bound", "tightness"]
    assert (f32[columns] > 0).all().all(), "a zero norm"
    assert f64["grad_h"].min() < 1e-150  # deep below a plain float64 norm's reach
    for c in columns:
        keep = f64[c] > 1e-300
        np.testing.assert_allclose(f32.loc[keep, c], f64.loc[keep, c], rtol=1e-6, err_msg=c)
    # and right down there: per example against the NumPy BPTT, normed with scaling
    ref = elman_bptt(x.double().numpy(), _elman_params(model), y=y.double().numpy())
    r = probes._probe(model, x, y, "adding", 1)
    np.testing.assert_allclose(r["grad_h"], _scaled_norm(ref.grad_h).T, rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_norms_are_taken_scaled(dtype):
    tiny = 1e-23 if dtype == torch.float32 else 1e-300
    g = torch.full((3, 64), tiny, dtype=dtype)
    assert float(g.norm(dim=-1)[0]) == 0.0  # the plain norm squares first
    np.testing.assert_allclose(probes._norms(g), 8 * tiny, rtol=1e-6)
    special = torch.tensor([[0.0, 0.0], [math.inf, 1.0], [math.nan, 1.0], [-3.0, 4.0]])
    out = probes._norms(special.to(dtype))
    assert out[0] == 0 and math.isinf(out[1]) and math.isnan(out[2]) and out[3] == 5


def test_jacobian_norm_survives_an_eigensolver_failure(monkeypatch):
    """LAPACK can fail on one ill-conditioned matrix of a batch (seen with a blowing-up
    IRNN): the others keep their value, the failing one becomes NaN, nothing raises."""
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
    top = jacobians.top_eigenvalue(gram)
    assert top[0] == 1.0 and top[2] == 9.0 and torch.isnan(top[1])
