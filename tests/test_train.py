import json
import math

import pandas as pd
import pytest
import torch

import rnngrad.train as tr
from rnngrad import columns, probes, tasks
from rnngrad.models import SequenceModel, VariantSpec
from rnngrad.train import RunSpec, train_run
from tests.interrupt import stop_after_checkpoint

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
    "test_size",
    "test_metric",
    "test_loss",
    "test_loss_ratio",
    "stopped_early",
    "tf32",
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
        test_size=64,
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
    stop_after_checkpoint(monkeypatch, spec, tmp_path / "resumed", step=40)
    assert (tmp_path / "resumed" / ".checkpoint.pt").exists()
    assert not (tmp_path / "resumed" / "summary.json").exists()
    resumed = train_run(spec, tmp_path / "resumed", progress=False)
    assert resumed["resumed_from"] == 40
    pd.testing.assert_frame_equal(_curve(tmp_path / "full"), _curve(tmp_path / "resumed"))
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "full" / "gradients.parquet"),
        pd.read_parquet(tmp_path / "resumed" / "gradients.parquet"),
    )
    for key in (
        "final_metric",
        "best_metric",
        "final_loss",
        "status",
        "steps_done",
        "test_metric",
        "test_loss",
        "stopped_early",
    ):
        assert resumed[key] == full[key], key
    assert resumed["test_metric"] is not None


def test_unreadable_checkpoint_is_reported_and_ignored(tmp_path, caplog):
    ckpt = tmp_path / "broken.pt"
    ckpt.write_bytes(b"not a checkpoint")
    summary = train_run(_spec(), tmp_path / "run", checkpoint=ckpt, probe=False, progress=False)
    assert summary["resumed_from"] is None and summary["steps_done"] == 60
    assert str(ckpt) in caplog.text and "unreadable" in caplog.text


def test_checkpoint_of_another_spec_is_ignored(tmp_path, monkeypatch):
    stop_after_checkpoint(monkeypatch, _spec(), tmp_path, probe=False)
    summary = train_run(_spec(lr=0.5), tmp_path, probe=False, progress=False)
    assert summary["resumed_from"] is None


def test_bad_run_spec_names_the_field():
    with pytest.raises(ValueError, match="steps must be >= 1"):
        _spec(steps=0)
    with pytest.raises(ValueError, match=r"unknown device 'tpu'"):
        _spec(device="tpu")
    with pytest.raises(ValueError, match="unknown task"):
        _spec(task="parity")


# ---------------------------------------------------------------- the held-out test metric


def _eval_and_test(spec, tmp_path):
    """(evaluation metric, test metric) of a run that never stops early (threshold 0)."""
    s = train_run(
        _replace(spec, solve_threshold=0.0), tmp_path / "probe", probe=False, progress=False
    )
    assert s["evaluations"] == 1 and not s["stopped_early"] and s["status"] == "unsolved"
    return s["final_metric"], s["test_metric"]


def _replace(spec, **kw):
    return RunSpec.from_dict({**spec.to_dict(), **kw})


def test_a_run_that_passes_its_evaluation_but_not_its_test_is_unsolved(tmp_path):
    # One evaluation of a single example, then the final weights on 500 held-out ones:
    # a threshold between the two metrics passes the one and fails the other.
    for seed in range(10):
        spec = _spec(seed=seed, steps=20, eval_every=20, eval_size=1, test_size=500, probe_every=0)
        eval_mse, test_mse = _eval_and_test(spec, tmp_path / f"s{seed}")
        if eval_mse < test_mse:
            break
    else:
        pytest.fail("no seed gave an evaluation MSE below the test MSE")
    threshold = math.sqrt(eval_mse * test_mse)
    s = train_run(_replace(spec, solve_threshold=threshold), tmp_path / "run", progress=False)
    assert s["stopped_early"] is True and s["steps_to_solve"] == 20
    assert s["final_metric"] < threshold <= s["test_metric"] == test_mse
    assert s["status"] == "unsolved"
    assert s["test_size"] == 500 and s["test_loss"] == pytest.approx(test_mse)
    assert s["test_loss_ratio"] == pytest.approx(s["test_loss"] / s["baseline_loss"])


def test_a_run_that_never_passes_its_evaluation_but_passes_its_test_is_solved(tmp_path):
    for seed in range(10):
        spec = _spec(seed=seed, steps=20, eval_every=20, eval_size=1, test_size=500, probe_every=0)
        eval_mse, test_mse = _eval_and_test(spec, tmp_path / f"s{seed}")
        if eval_mse > test_mse:
            break
    else:
        pytest.fail("no seed gave an evaluation MSE above the test MSE")
    threshold = math.sqrt(eval_mse * test_mse)
    s = train_run(_replace(spec, solve_threshold=threshold), tmp_path / "run", progress=False)
    assert s["stopped_early"] is False and s["status"] == "solved"
    assert s["test_metric"] < threshold <= s["final_metric"]


def test_the_test_batch_is_its_own_stream_evaluated_in_chunks(tmp_path, monkeypatch):
    spec = _spec(task="copy", length=5, steps=20, eval_every=20, test_size=100, probe_every=0)
    whole = train_run(spec, tmp_path / "whole", probe=False, progress=False)
    calls = []
    real = tasks.make_batch
    monkeypatch.setattr(tasks, "make_batch", lambda *a, **k: calls.append((a, k)) or real(*a, **k))
    monkeypatch.setattr(tr, "TEST_CHUNK", 7 * 25)  # 7 examples of 25 steps per forward pass
    chunked = train_run(spec, tmp_path / "chunked", probe=False, progress=False)
    assert chunked["test_metric"] == pytest.approx(whole["test_metric"], abs=1e-12)
    assert chunked["test_loss"] == pytest.approx(whole["test_loss"], rel=1e-6)
    streams = {k.get("stream", "train"): a[2:4] for a, k in calls}
    assert streams["test"] == (100, spec.seed) and streams["eval"] == (spec.eval_size, spec.seed)
    assert [a[4] for a, k in calls if k.get("stream") in ("eval", "test")] == [0, 0]


# ---------------------------------------------------------------- divergence at its step


def test_nan_in_the_loss_is_recorded_at_its_step(tmp_path, monkeypatch):
    k = 13  # between flushes (evaluations every 20 steps)
    real = tasks.make_batch

    def poisoned(task, length, batch, seed, step, device="cpu", stream="train"):
        x, y = real(task, length, batch, seed, step, device, stream=stream)
        return (x * math.nan, y) if stream == "train" and step == k - 1 else (x, y)

    monkeypatch.setattr(tasks, "make_batch", poisoned)
    summary = train_run(_spec(), tmp_path, progress=False)
    assert summary["status"] == "diverged" and summary["diverged_at"] == k
    assert summary["steps_done"] == k and summary["test_metric"] is None
    assert SUMMARY_KEYS <= set(json.loads((tmp_path / "summary.json").read_text()))
    curve = pd.read_parquet(tmp_path / "curve.parquet")
    assert curve["step"].tolist() == list(range(1, k + 1))
    assert math.isnan(curve["loss"].iloc[-1])


def test_an_infinite_gradient_norm_with_a_finite_loss_is_recorded_at_its_step(
    tmp_path, monkeypatch
):
    k = 7
    real = torch.nn.utils.get_total_norm
    calls = []

    def norm(*a, **kw):
        calls.append(1)
        out = real(*a, **kw)
        return out * math.inf if len(calls) == k else out

    monkeypatch.setattr(torch.nn.utils, "get_total_norm", norm)
    summary = train_run(_spec(), tmp_path, probe=False, progress=False)
    assert summary["status"] == "diverged" and summary["diverged_at"] == k
    curve = pd.read_parquet(tmp_path / "curve.parquet")
    assert curve["step"].iloc[-1] == k and math.isfinite(curve["loss"].iloc[-1])
    assert math.isinf(curve["grad_norm"].iloc[-1])


# ---------------------------------------------------------------- hooks and precision


def test_the_loop_calls_after_step_after_every_optimiser_step(tmp_path, monkeypatch):
    seen = []
    real_step = torch.optim.Adam.step

    def step(self, *a, **k):
        seen.append("step")
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    monkeypatch.setattr(
        SequenceModel, "after_step", lambda self: seen.append("after"), raising=False
    )
    summary = train_run(_spec(steps=30), tmp_path, probe=False, progress=False)
    assert seen == ["step", "after"] * summary["steps_done"]


def test_tf32_is_off_and_recorded(tmp_path):
    summary = train_run(_spec(steps=20), tmp_path, probe=False, progress=False)
    assert summary["tf32"] is False and summary["device"] == "cpu"
    # the CUDA branch, without a GPU: the flags are off inside and restored after
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = matmul.allow_tf32, cudnn.allow_tf32
    try:
        matmul.allow_tf32 = cudnn.allow_tf32 = True
        with tr.no_tf32(torch.device("cuda")) as tf32:
            assert tf32 is False and not matmul.allow_tf32 and not cudnn.allow_tf32
        assert matmul.allow_tf32 and cudnn.allow_tf32
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = saved


def test_training_probes_are_float64_and_use_the_training_jacobian_examples(tmp_path):
    spec = _spec(model=VariantSpec(cell="rnn_tanh", hidden_size=8), probe_batch=8)
    train_run(spec, tmp_path, progress=False)
    grads = pd.read_parquet(tmp_path / "gradients.parquet")
    assert list(grads.columns) == ["probe_step", *columns.PROFILE_COLUMNS]
    reading = grads["distance"] >= 0
    assert (grads.loc[reading, "bound_examples"] == probes.TRAIN_JAC_EXAMPLES).all()
    assert (grads.loc[reading, "bound_holds"] == 1.0).all()
    assert (grads["grad_h"] > 0).all()


def test_training_on_the_cpu_flushes_subnormals_and_restores_the_state_before(
    tmp_path, monkeypatch
):
    seen = []
    real_loss = tasks.loss

    def loss(task, out, y):
        seen.append(tr.flushing_subnormals())
        return real_loss(task, out, y)

    monkeypatch.setattr(tasks, "loss", loss)
    spec = RunSpec("adding", 5, steps=3, eval_every=3, test_size=8)
    for before in (False, True):
        torch.set_flush_denormal(before)
        try:
            seen.clear()
            train_run(spec, tmp_path / str(before), progress=False)
            assert seen and all(seen)  # flushed at every training step
            assert tr.flushing_subnormals() == before  # and the state before restored
        finally:
            torch.set_flush_denormal(False)
