import json

import pandas as pd
import pytest
import torch

from rnngrad import columns
from rnngrad.models import VariantSpec
from rnngrad.train import RunSpec, train_run

SUMMARY_KEYS = {
    "task",
    "length",
    "variant",
    "seed",
    "cell",
    "init",
    "constraint",
    "clip_norm",
    "hidden_size",
    "lr",
    "status",
    "metric_name",
    "final_metric",
    "best_metric",
    "final_k",
    "final_loss",
    "baseline_loss",
    "loss_ratio",
    "steps_to_solve",
    "steps_done",
    "wall_seconds",
    "steps_per_second",
    "device",
    "torch_version",
    "git_commit",
    "config_hash",
    "spec",
    "diverged_at",
}
CURVE_COLUMNS = list(columns.CURVE_COLUMNS)


def _spec(**kw):
    base = dict(
        task="adding",
        length=10,
        variant="lstm",
        model=VariantSpec(cell="lstm", hidden_size=16),
        steps=60,
        batch_size=16,
        eval_every=20,
        eval_size=64,
        probe_every=30,
        probe_batch=8,
        checkpoint_every=20,
    )
    base.update(kw)
    return RunSpec(**base)


def _curve(path):
    return pd.read_parquet(path / "curve.parquet").drop(columns="elapsed")


def test_lstm_learns_adding_at_T10(tmp_path):
    spec = _spec(
        model=VariantSpec(cell="lstm", hidden_size=32),
        steps=400,
        batch_size=64,
        lr=1e-2,
        eval_every=50,
        eval_size=500,
        probe_every=0,
        checkpoint_every=1000,
    )
    summary = train_run(spec, tmp_path, probe=False, progress=False)
    assert summary["loss_ratio"] < 0.5, summary
    assert summary["final_metric"] < summary["baseline_loss"] / 2


def test_writes_every_file_and_field(tmp_path):
    summary = train_run(_spec(), tmp_path, config_hash="abc", progress=False)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert SUMMARY_KEYS <= set(on_disk)
    assert on_disk["status"] in {"solved", "unsolved"} and on_disk["steps_done"] == 60
    assert on_disk["config_hash"] == "abc" and on_disk["spec"]["model"]["cell"] == "lstm"
    curve = pd.read_parquet(tmp_path / "curve.parquet")
    assert list(curve.columns) == CURVE_COLUMNS
    assert curve["step"].tolist() == list(range(1, 61))
    assert curve["metric"].notna().sum() == 3  # evaluations at 20, 40, 60
    evals = curve["metric"].dropna().tolist()
    assert on_disk["final_metric"] == pytest.approx(sum(evals[-3:]) / 3)
    grads = pd.read_parquet(tmp_path / "gradients.parquet")
    assert sorted(grads["probe_step"].unique()) == [0, 30, 60]
    assert {"t", "distance", "grad_h", "grad_c", "jac_norm"} <= set(grads.columns)
    spectra = pd.read_parquet(tmp_path / "spectra.parquet")
    assert set(spectra["gate"]) == {"i", "f", "g", "o"}
    assert not (tmp_path / ".checkpoint.pt").exists()


def test_clipping_bounds_the_applied_gradient_norm(tmp_path, monkeypatch):
    clip = 0.05
    applied = []
    real_step = torch.optim.Adam.step

    def step(self, *a, **k):
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        applied.append(torch.nn.utils.get_total_norm(grads).item())
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    spec = _spec(model=VariantSpec(cell="rnn_tanh", hidden_size=16, clip_norm=clip), lr=0.05)
    train_run(spec, tmp_path, probe=False, progress=False)
    curve = pd.read_parquet(tmp_path / "curve.parquet")
    assert max(applied) <= clip * (1 + 1e-5)
    # the curve logs the norm before clipping, and whether it was clipped
    assert curve["clipped"].any() and (curve["grad_norm"] > clip).any()
    assert (curve["clipped"] == (curve["grad_norm"] > clip)).all()


def test_huge_learning_rate_diverges_with_a_complete_summary(tmp_path):
    spec = _spec(model=VariantSpec(cell="rnn_relu", hidden_size=16), lr=1e6)
    summary = train_run(spec, tmp_path, progress=False)
    assert summary["status"] == "diverged"
    assert summary["diverged_at"] is not None and summary["steps_done"] == summary["diverged_at"]
    assert SUMMARY_KEYS <= set(json.loads((tmp_path / "summary.json").read_text()))
    curve = pd.read_parquet(tmp_path / "curve.parquet")
    assert curve["step"].iloc[-1] == summary["diverged_at"]
    assert not torch.isfinite(torch.tensor(curve["loss"].iloc[-1]))


def test_two_runs_with_one_seed_are_identical(tmp_path):
    a = train_run(
        _spec(model=VariantSpec(cell="gru", hidden_size=16), task="copy", length=5),
        tmp_path / "a",
        progress=False,
    )
    b = train_run(
        _spec(model=VariantSpec(cell="gru", hidden_size=16), task="copy", length=5),
        tmp_path / "b",
        progress=False,
    )
    pd.testing.assert_frame_equal(_curve(tmp_path / "a"), _curve(tmp_path / "b"))
    assert a["final_metric"] == b["final_metric"]


def test_probing_does_not_change_the_trajectory(tmp_path):
    spec = _spec(
        model=VariantSpec(cell="rnn_tanh", hidden_size=16, constraint="orthogonal"), probe_every=10
    )
    train_run(spec, tmp_path / "probed", probe=True, progress=False)
    train_run(spec, tmp_path / "plain", probe=False, progress=False)
    pd.testing.assert_frame_equal(_curve(tmp_path / "probed"), _curve(tmp_path / "plain"))


@pytest.mark.parametrize("cell", ["lstm", "rnn_tanh"])
def test_stopped_and_resumed_run_equals_uninterrupted(tmp_path, monkeypatch, cell):
    spec = _spec(model=VariantSpec(cell=cell, hidden_size=16, clip_norm=0.5), steps=60)
    full = train_run(spec, tmp_path / "full", progress=False)

    # Stop the run right after its checkpoint at step 40, as a kill would.
    import rnngrad.train as tr

    real_save = tr._save_checkpoint

    def save_then_die(path, spec_, model, opt, state):
        real_save(path, spec_, model, opt, state)
        if state.step == 40:
            raise KeyboardInterrupt

    monkeypatch.setattr(tr, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_run(spec, tmp_path / "resumed", progress=False)
    assert (tmp_path / "resumed" / ".checkpoint.pt").exists()
    assert not (tmp_path / "resumed" / "summary.json").exists()
    monkeypatch.setattr(tr, "_save_checkpoint", real_save)
    resumed = train_run(spec, tmp_path / "resumed", progress=False)
    assert resumed["resumed_from"] == 40
    pd.testing.assert_frame_equal(_curve(tmp_path / "full"), _curve(tmp_path / "resumed"))
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "full" / "gradients.parquet"),
        pd.read_parquet(tmp_path / "resumed" / "gradients.parquet"),
    )
    for key in ("final_metric", "best_metric", "final_loss", "status", "steps_done"):
        assert resumed[key] == full[key]


def test_unreadable_checkpoint_is_reported_and_ignored(tmp_path, caplog):
    ckpt = tmp_path / "broken.pt"
    ckpt.write_bytes(b"not a checkpoint")
    summary = train_run(_spec(), tmp_path / "run", checkpoint=ckpt, probe=False, progress=False)
    assert summary["resumed_from"] is None and summary["steps_done"] == 60
    assert str(ckpt) in caplog.text and "unreadable" in caplog.text


def test_checkpoint_of_another_spec_is_ignored(tmp_path, monkeypatch):
    import rnngrad.train as tr

    real_save = tr._save_checkpoint

    def save_then_die(path, spec_, model, opt, state):
        real_save(path, spec_, model, opt, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(tr, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_run(_spec(), tmp_path, probe=False, progress=False)
    monkeypatch.setattr(tr, "_save_checkpoint", real_save)
    summary = train_run(_spec(lr=0.5), tmp_path, probe=False, progress=False)
    assert summary["resumed_from"] is None


def test_bad_run_spec_names_the_field():
    with pytest.raises(ValueError, match="steps must be >= 1"):
        _spec(steps=0)
    with pytest.raises(ValueError, match=r"unknown device 'tpu'"):
        _spec(device="tpu")
    with pytest.raises(ValueError, match="unknown task"):
        _spec(task="parity")
