"""The diagonal cells (lru, mingru, indrnn): build, unroll, Jacobians, closed forms, config.

Closed forms: with every |lambda| = a, the LRU's dL/dx_t is conj(lambda)^(r-t) times
dL/dx_r mode by mode, so ||dL/dx_t|| / ||dL/dx_r|| = a^(r-t) exactly, whatever the input
and the output block; minGRU with constant gates has dL/dh_t = (1-z)^(r-t) dL/dh_r.
The probe (rnngrad.probes.gradient_profile) must recover both to 1e-10 in float64.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from rnngrad import tasks
from rnngrad.cells import JACOBIANS, g_activation
from rnngrad.cli import main
from rnngrad.config import ConfigError, check_config
from rnngrad.models import VariantSpec, build_model
from rnngrad.probes import gradient_profile
from rnngrad.specs import LRU_DEFAULTS
from rnngrad.train import RunSpec, train_run
from tests.interrupt import stop_after_checkpoint

NEW = ("lru", "mingru", "indrnn")
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def _model(cell, task="adding", length=9, dtype=torch.float32, H=12, **kw):
    spec = VariantSpec(cell=cell, hidden_size=H, **kw)
    return build_model(spec, task, length=length, seed=0).to(dtype)


def _batch(task, length, B=5, dtype=torch.float32):
    x, y = tasks.make_batch(task, length, B, seed=0, step=0)

    def cast(t):
        return t.to(dtype) if t.is_floating_point() else t

    return cast(x), cast(y)


@pytest.mark.parametrize("cell", NEW)
@pytest.mark.parametrize("task", ["adding", "copy"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_builds_and_unroll_equals_forward(cell, task, dtype):
    T = 60
    model = _model(cell, task, T, dtype)
    x, _ = _batch(task, T, dtype=dtype)
    out = model(x)
    assert out.shape == ((5,) if task == "adding" else (5, T + 20, 10))
    unrolled, states = model.unroll(x)
    assert len(states) == x.shape[1] and len(states[0]) == 1
    assert states[0][0].is_complex() == (cell == "lru")
    scale = max(1.0, out.abs().max().item())
    assert (unrolled - out).abs().max().item() <= TOL[dtype] * scale


@pytest.mark.parametrize("cell", NEW)
@pytest.mark.parametrize("task", ["adding", "copy"])
def test_forward_and_unroll_have_the_same_parameter_gradients(cell, task):
    # the fast path (a scan with its own backward) against autograd through the steps
    T = 200
    model = _model(cell, task, T, torch.float64)
    x, y = _batch(task, T, dtype=torch.float64)
    grads = []
    for run in (model, lambda x_: model.unroll(x_)[0]):
        loss = tasks.loss(task, run(x), y)
        grads.append(torch.autograd.grad(loss, list(model.parameters()), allow_unused=True))
    for (name, _), fast, slow in zip(model.named_parameters(), *grads, strict=True):
        if slow is None:  # e.g. the embedding rows of symbols that never occur
            assert fast is None or not fast.any(), name
            continue
        scale = max(1.0, slow.abs().max().item())
        assert (fast - slow).abs().max().item() <= 1e-10 * scale, name


def _step_jacobian_real(model, xi, h, w):
    """jacrev of one step w.r.t. the state, per example; lru on the real 2N view."""
    if not h.is_complex():
        return torch.func.vmap(torch.func.jacrev(lambda s, x: model.cell_step(x, (s,), w)[0]))(
            h, xi
        )  # (n, D, D)

    def real_step(v, x):  # x' = f(x) as a map R^2N -> R^2N (jacrev takes real tensors only)
        N = v.shape[-1] // 2
        out = model.cell_step(
            torch.complex(x[..., 0], x[..., 1]), (torch.complex(v[:N], v[N:]),), w
        )[0]
        return torch.cat([out.real, out.imag])

    v = torch.cat([h.real, h.imag], dim=-1)
    return torch.func.vmap(torch.func.jacrev(real_step))(v, torch.view_as_real(xi))


@pytest.mark.parametrize("cell", NEW)
def test_probe_jacobian_equals_jacrev_of_the_step(cell):
    # The diagonal d of the registered Jacobian, expanded to a matrix, against the
    # Jacobian autograd finds. lru's step is complex-linear (x' = lambda x + xi), so on
    # the real 2N view [Re x; Im x] diag(lambda) is [[Re, -Im], [Im, Re]] of lambda.
    model = _model(cell, "adding", 30, torch.float64)
    x, _ = _batch("adding", 30, dtype=torch.float64)
    xi = model.step_inputs(model.inputs(x)).detach()  # (B, T, .)
    _, states = model.unroll(x)
    prev = torch.stack([s[0] for s in states[:-1]], dim=1).detach()  # entering steps 1..T-1
    xi, prev = xi[:, 1:].reshape(-1, xi.shape[-1]), prev.reshape(-1, prev.shape[-1])
    w = model.recurrent_weight().detach()
    d = JACOBIANS[cell](model, xi, [prev], w)  # (n, D)
    assert d.shape == prev.shape
    J = _step_jacobian_real(model, xi, prev, w)
    if cell == "lru":
        re, im = torch.diag_embed(d.real), torch.diag_embed(d.imag)
        want = torch.cat([torch.cat([re, -im], 2), torch.cat([im, re], 2)], 1)
    else:
        want = torch.diag_embed(d)
    torch.testing.assert_close(J, want, rtol=0, atol=1e-12)
    if cell == "indrnn":  # both sides of the kink are in the batch
        assert (d == 0).any() and (d != 0).any()


def _profile(model, task, length, B=6, zero_input=False):
    x, y = tasks.make_batch(task, length, B, seed=0, step=0, stream="probe")
    if zero_input:
        x = torch.zeros_like(x)
    return gradient_profile(model, x, y, task)


def _ratios(profile: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    rows = profile[profile["distance"] >= 0]
    g0 = rows.loc[rows["distance"] == 0, "grad_h"].iloc[0]
    return rows["distance"].to_numpy(), rows["grad_h"].to_numpy() / g0


@pytest.mark.parametrize("task", ["adding", "copy"])
@pytest.mark.parametrize("zero_input", [True, False], ids=["no_input", "input"])
def test_lru_gradient_ratio_is_a_to_the_distance(task, zero_input):
    a, T = 0.98, 300
    model = _model("lru", task, T, torch.float64, H=8)  # float64: |lambda| = a to 1e-16
    with torch.no_grad():
        model.core.nu_log.fill_(math.log(-math.log(a)))  # |lambda| = a, phases as drawn
    profile = _profile(model, task, T, zero_input=zero_input)
    d, ratio = _ratios(profile)
    # copy reads ten positions, but dL/dx_r at the first read r already holds the later
    # ones, so before it the ratio is a^(r - t) all the same
    assert d.max() == (T - 1 if task == "adding" else T + 10)
    np.testing.assert_allclose(ratio, a ** d.astype(float), rtol=1e-10, atol=0)
    # the probe's Jacobian norm is |lambda| = a at every step, and the bound is tight
    np.testing.assert_allclose(profile["jac_norm"], a, rtol=1e-12)
    reading = profile[profile["distance"] >= 0]
    if task == "adding":
        np.testing.assert_allclose(reading["tightness"], 1.0, rtol=1e-9)


def test_mingru_with_constant_gates_decays_as_one_minus_z():
    T, H, c = 200, 8, -2.0  # z = sigmoid(-2) ~ 0.12
    model = _model("mingru", "adding", T, torch.float64, H=H)
    with torch.no_grad():
        model.core.gates.weight[:H].zero_()
        model.core.gates.bias[:H].fill_(c)
    d, ratio = _ratios(_profile(model, "adding", T))
    z = 1 / (1 + math.exp(-c))
    np.testing.assert_allclose(ratio, (1 - z) ** d.astype(float), rtol=1e-10, atol=0)


def test_lru_ring_initialisation_and_normalisation():
    H, r_min, r_max, phase = 256, 0.5, 0.8, 1.0
    model = _model("lru", H=H, r_min=r_min, r_max=r_max, max_phase=phase)
    lam = model.recurrent_weight().detach()
    assert lam.dtype == torch.complex64 and lam.shape == (H // 2,)  # H real numbers of state
    assert lam.abs().min() >= r_min - 1e-6 and lam.abs().max() <= r_max + 1e-6
    assert lam.angle().min() >= 0 and lam.angle().max() <= phase + 1e-6
    # |lambda|^2 uniform on [r_min^2, r_max^2]: its mean is the interval's midpoint
    assert abs((lam.abs() ** 2).mean().item() - (r_min**2 + r_max**2) / 2) < 0.03
    gamma = torch.exp(model.core.gamma_log.detach())
    torch.testing.assert_close(gamma, torch.sqrt(1 - lam.abs() ** 2))
    default = VariantSpec(cell="lru")
    assert (default.r_min, default.r_max, default.max_phase) == tuple(LRU_DEFAULTS.values())
    assert set(model.recurrent_blocks()) == {"lambda"}
    # every parameter is real, so a float64 copy keeps them all
    assert not any(p.is_complex() for p in model.parameters())
    assert model.double().recurrent_weight().dtype == torch.complex128


def test_mingru_candidate_activation_is_positive_and_continuous():
    v = torch.linspace(-30, 30, 601, dtype=torch.float64)
    g = g_activation(v)
    assert (g > 0).all() and torch.allclose(g_activation(torch.zeros(1)), torch.tensor(0.5))
    assert _model("mingru").recurrent_blocks() == {}
    assert _model("mingru").recurrent_weight().numel() == 0


def test_indrnn_keeps_its_recurrent_weights_within_two_to_the_one_over_t():
    for task, T in (("adding", 50), ("copy", 30)):
        model = _model("indrnn", task, T, H=64)
        bound = 2 ** (1 / tasks.get_task(task).seq_len(T))  # T + 20 steps for copy
        w = model.recurrent_weight().detach()
        assert (w >= 0).all() and (w <= bound).all() and w.max() > 1  # U(0, 2^(1/T))
        with torch.no_grad():
            model.core.weight.mul_(5).sub_(2)
        model.after_step()
        assert model.recurrent_weight().abs().max() <= bound
        assert set(model.recurrent_blocks()) == {"u"}
    with pytest.raises(ValueError, match="indrnn.*needs the task length T"):
        build_model(VariantSpec(cell="indrnn"), "adding")


def test_training_projects_indrnn_weights_after_every_step(tmp_path, monkeypatch):
    import rnngrad.train as tr

    spec = RunSpec(
        "adding",
        10,
        variant="indrnn",
        model=VariantSpec(cell="indrnn", hidden_size=8),
        steps=30,
        batch_size=16,
        lr=0.5,  # large steps push w out of the box unless projected
        eval_every=30,
        eval_size=32,
        probe_every=0,
    )
    built = []
    monkeypatch.setattr(
        tr, "build_model", lambda *a, **k: built.append(build_model(*a, **k)) or built[-1]
    )
    train_run(spec, tmp_path, probe=False, progress=False)
    w = built[-1].recurrent_weight().detach()
    assert w.abs().max() <= 2 ** (1 / 10) + 1e-7 and (w.abs() == 2 ** (1 / 10)).any()


@pytest.mark.parametrize("cell", NEW)
def test_stopped_and_resumed_run_equals_uninterrupted(tmp_path, monkeypatch, cell):
    spec = RunSpec(
        "adding",
        10,
        variant=cell,
        model=VariantSpec(cell=cell, hidden_size=8),
        steps=60,
        batch_size=16,
        eval_every=20,
        eval_size=64,
        probe_every=30,
        probe_batch=8,
        checkpoint_every=20,
    )
    full = train_run(spec, tmp_path / "full", progress=False)
    stop_after_checkpoint(monkeypatch, spec, tmp_path / "resumed", step=40)
    resumed = train_run(spec, tmp_path / "resumed", progress=False)
    assert resumed["resumed_from"] == 40
    for name in ("curve.parquet", "gradients.parquet", "spectra.parquet"):
        a = pd.read_parquet(tmp_path / "full" / name).drop(columns="elapsed", errors="ignore")
        b = pd.read_parquet(tmp_path / "resumed" / name).drop(columns="elapsed", errors="ignore")
        pd.testing.assert_frame_equal(a, b)
    for key in ("final_metric", "final_loss", "status", "steps_done"):
        assert resumed[key] == full[key]


def _config(**variant) -> dict:
    return {
        "variants": {"v": variant},
        "train": {"tasks": {"adding": [10]}, "seeds": [0]},
        "probes": {"tasks": {"adding": [10]}},
    }


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ({"cell": "lru", "r_min": 0.9, "r_max": 0.5}, r"variants\.v: r_min must be < r_max"),
        ({"cell": "lru", "r_min": 0.9, "r_max": 0.9}, r"variants\.v: r_min must be < r_max"),
        ({"cell": "lru", "r_max": 1.0}, r"variants\.v\.r_max"),
        ({"cell": "lru", "r_min": -0.1}, r"variants\.v\.r_min"),
        ({"cell": "lru", "max_phase": 0}, r"variants\.v\.max_phase"),
        ({"cell": "lru", "ring": 0.5}, r"unknown key\(s\) \['ring'\] in variants\.v"),
        ({"cell": "lstm", "r_min": 0.5}, r"variants\.v: r_min .*needs cell 'lru'"),
        ({"cell": "mingru", "max_phase": 1.0}, r"variants\.v: max_phase .*needs cell 'lru'"),
        ({"cell": "lru", "init": "orthogonal"}, r"variants\.v: init 'orthogonal'"),
    ],
)
def test_bad_lru_keys_are_rejected_naming_the_key(variant, message):
    with pytest.raises(ConfigError, match=message):
        check_config(_config(**variant))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"r_max": 1.0}, "r_max must be < 1"),
        ({"r_min": 0.5, "r_max": 0.2}, "r_min must be < r_max"),
        ({"max_phase": 7.0}, r"max_phase must be <= 6.28"),
        ({"r_min": float("nan")}, "r_min must be finite"),
    ],
)
def test_bad_lru_settings_are_rejected_by_the_spec(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VariantSpec(cell="lru", **kwargs)


def test_variants_command_lists_the_new_cells(tmp_path, capsys):
    cfg = _config(cell="lru", r_min=0.5)
    cfg["variants"].update({"mingru": {"cell": "mingru"}, "indrnn": {"cell": "indrnn"}})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["variants", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    for cell in NEW:
        assert f"cell={cell} " in out
    assert "r=[0.5, 0.999]" in out and f"max_phase={math.pi / 10:.3g}" in out


def test_lru_solves_adding_at_the_default_step_budget(tmp_path):
    # T = 50 fits in a minute on a 2-core CPU, stopping early once solved (T = 200:
    # see the README's Performance notes)
    spec = RunSpec("adding", 50, variant="lru", model=VariantSpec(cell="lru"), probe_every=0)
    summary = train_run(spec, tmp_path, probe=False, progress=False)
    assert summary["status"] == "solved", summary
    assert summary["steps_done"] < RunSpec.__dataclass_fields__["steps"].default


def test_indrnn_solves_adding_over_the_block_encoder(tmp_path):
    # one ReLU layer over the raw (value, marker) input cannot gate a value in and hold
    # it (rnngrad.cells); over the block's features e_t it solves adding, stopping early
    spec = RunSpec("adding", 16, variant="indrnn", model=VariantSpec(cell="indrnn"),
                   steps=1000, lr=3e-3, probe_every=0, device="cpu")  # fmt: skip
    summary = train_run(spec, tmp_path, probe=False, progress=False)
    assert summary["status"] == "solved" and summary["steps_done"] < spec.steps, summary
