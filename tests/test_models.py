import itertools
import math

import pytest
import torch

from rnngrad.models import CELLS, FUSED_CELLS, INITS, VariantSpec, build_model, gate_blocks
from rnngrad.tasks import make_batch


def _valid_specs(**kw):
    for cell, init in itertools.product(CELLS, INITS):
        try:
            yield VariantSpec(cell=cell, init=init, hidden_size=12, **kw)
        except ValueError:
            continue


SPECS = list(_valid_specs())


def test_every_valid_cell_and_init_is_covered():
    pairs = {(s.cell, s.init) for s in SPECS}
    assert {(c, i) for c in FUSED_CELLS for i in ("default", "orthogonal")} <= pairs
    assert {(c, "default") for c in CELLS} <= pairs  # the diagonal cells: lru, mingru, indrnn
    assert ("rnn_relu", "identity") in pairs and ("lstm", "chrono") in pairs


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.cell}-{s.init}")
@pytest.mark.parametrize("task", ["adding", "copy"])
def test_builds_runs_and_unroll_equals_fused(spec, task):
    model = build_model(spec, task, length=9, seed=0)
    x, y = make_batch(task, 9, 5, seed=0, step=0)
    out = model(x)
    assert out.shape == ((5,) if task == "adding" else (5, 29, 10))
    unrolled, states = model.unroll(x)
    assert len(states) == x.shape[1]
    torch.testing.assert_close(unrolled, out, atol=1e-5, rtol=0)


@pytest.mark.parametrize("cell", ["rnn_tanh", "rnn_relu"])
def test_unroll_equals_fused_with_orthogonal_constraint(cell):
    model = build_model(
        VariantSpec(cell=cell, constraint="orthogonal", hidden_size=12), "adding", seed=0
    )
    x, _ = make_batch("adding", 30, 4, seed=0, step=0)
    torch.testing.assert_close(model.unroll(x)[0], model(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("cell", FUSED_CELLS)
def test_orthogonal_init_makes_every_gate_block_orthogonal(cell):
    model = build_model(VariantSpec(cell=cell, init="orthogonal", hidden_size=16), "adding", seed=1)
    blocks = gate_blocks(model.recurrent_weight().detach(), cell)
    assert len(blocks) == {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}[cell]
    for q in blocks.values():
        assert (q.T @ q - torch.eye(16)).abs().max() < 1e-5


def test_identity_init_is_irnn():
    model = build_model(
        VariantSpec(cell="rnn_relu", init="identity", hidden_size=8), "adding", seed=0
    )
    assert torch.equal(model.rnn.weight_hh_l0.detach(), torch.eye(8))
    assert model.rnn.nonlinearity == "relu"
    assert (model.rnn.bias_hh_l0 == 0).all()
    with pytest.raises(ValueError, match="identity.*rnn_relu"):
        VariantSpec(cell="lstm", init="identity")


def test_chrono_sets_forget_bias_in_one_vector_and_zeroes_the_other():
    T, H = 100, 32
    model = build_model(
        VariantSpec(cell="lstm", init="chrono", hidden_size=H), "adding", length=T, seed=0
    )
    b_ih, b_hh = model.rnn.bias_ih_l0.detach(), model.rnn.bias_hh_l0.detach()
    assert (b_ih == 0).all()
    forget, inp = b_hh[H : 2 * H], b_hh[:H]
    assert (forget >= 0).all() and (forget <= torch.log(torch.tensor(T - 1.0))).all()
    torch.testing.assert_close(inp, -forget)
    assert (b_hh[2 * H :] == 0).all()
    with pytest.raises(ValueError, match="chrono.*lstm"):
        VariantSpec(cell="rnn_tanh", init="chrono")
    with pytest.raises(ValueError, match="chrono.*T >= 3"):
        build_model(VariantSpec(cell="lstm", init="chrono"), "adding")


def test_chrono_spans_the_largest_lag_of_copy():
    # copy at T reads symbol 9 (position 9) at position T + 19: forget biases reach log(T + 19)
    T, H = 20, 512
    model = build_model(
        VariantSpec(cell="lstm", init="chrono", hidden_size=H), "copy", length=T, seed=0
    )
    forget = model.rnn.bias_hh_l0.detach()[H : 2 * H]
    assert forget.max() <= math.log(T + 19)
    assert forget.max() > math.log(T)  # beyond T: the old upper end, T - 1, missed the lags


def test_forget_bias_init_sets_the_lstm_forget_gate_to_one():
    H = 16
    plain = build_model(VariantSpec(cell="lstm", hidden_size=H), "adding", seed=3)
    model = build_model(
        VariantSpec(cell="lstm", init="forget_bias", hidden_size=H), "adding", seed=3
    )
    b_ih, b_hh = model.rnn.bias_ih_l0.detach(), model.rnn.bias_hh_l0.detach()
    torch.testing.assert_close(b_ih[H : 2 * H] + b_hh[H : 2 * H], torch.ones(H))
    # the other gates keep torch's default draw, the same as the plain LSTM's
    for name in ("bias_ih_l0", "bias_hh_l0"):
        mine, theirs = getattr(model.rnn, name).detach(), getattr(plain.rnn, name).detach()
        torch.testing.assert_close(mine[:H], theirs[:H])
        torch.testing.assert_close(mine[2 * H :], theirs[2 * H :])
    with pytest.raises(ValueError, match="forget_bias.*lstm"):
        VariantSpec(cell="gru", init="forget_bias")


def test_orthogonal_constraint_stays_orthogonal_after_training_steps():
    model = build_model(
        VariantSpec(cell="rnn_tanh", constraint="orthogonal", hidden_size=16), "adding", seed=0
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(20):
        x, y = make_batch("adding", 20, 16, seed=0, step=step)
        loss = ((model(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    w = model.recurrent_weight().detach()
    assert (w.T @ w - torch.eye(16)).abs().max() < 1e-5
    assert not torch.allclose(
        w, build_model(model.spec, "adding", seed=0).recurrent_weight().detach()
    )


@pytest.mark.parametrize("cell", ["gru", "lru", "mingru", "indrnn"])
def test_seed_fixes_the_initial_weights(cell):
    spec = VariantSpec(cell=cell, hidden_size=8)
    a, b = (build_model(spec, "copy", length=5, seed=5) for _ in range(2))
    c = build_model(spec, "copy", length=5, seed=6)
    for (_, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.equal(p, q)
    assert not torch.equal(a.readout.weight, c.readout.weight)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cell": "transformer"}, r"unknown cell 'transformer'; options are \['rnn_tanh'"),
        ({"init": "xavier"}, r"unknown init 'xavier'; options are"),
        ({"constraint": "unitary"}, r"unknown constraint 'unitary'"),
        ({"cell": "lstm", "constraint": "orthogonal"}, "constraint 'orthogonal'.*'lstm'"),
        ({"clip_norm": 0.0}, "clip_norm must be > 0"),
        ({"hidden_size": 0}, "hidden_size must be >= 1"),
        ({"cell": "lru", "init": "orthogonal"}, "init 'orthogonal'.*diagonal recurrence"),
        ({"cell": "gru", "r_max": 0.9}, "r_max sets the LRU's ring.*needs cell 'lru'"),
        ({"cell": "lru", "r_min": 0.99, "r_max": 0.9}, "r_min must be < r_max"),
        ({"cell": "lru", "r_max": 1.0}, "r_max must be < 1"),
    ],
)
def test_bad_variants_name_the_key(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VariantSpec(**kwargs)


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match=r"unknown variant key\(s\) \['dropout'\]"):
        VariantSpec.from_dict({"cell": "lstm", "dropout": 0.1})
