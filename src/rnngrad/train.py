"""One training run: Adam, optional global-norm clipping, evaluation, probes, checkpoints.

The loop is the only training loop in rnngrad; variants differ by data (the
VariantSpec), never by a copy of the loop. Clipping acts between backward() and
step(), and the global gradient norm is recorded before it (Pascanu et al. 2013).

Three batches besides the training ones, each from its own random stream
(rnngrad.tasks.STREAMS): the evaluation batch, on which the run stops early once the
metric passes the threshold; the held-out test batch, on which the final weights are
evaluated once and which alone decides `status`; and the probe batch.

A NaN or inf loss or gradient norm ends the run as `diverged`, recorded at the step it
occurred, with a complete summary. The per-step values stay on the device until the
curve is flushed (at evaluations, probes and checkpoints), so there is no host sync per
step; the first bad step is found then. A checkpoint (rnngrad.checkpoints) is written
every `checkpoint_every` steps. TF32 off on CUDA, subnormals flushed on the CPU: rnngrad.device.
"""

from __future__ import annotations

import logging
import math
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from rnngrad import checkpoints, native, tasks
from rnngrad.checkpoints import RunState
from rnngrad.columns import CURVE_COLUMNS, HORIZON_COLUMNS, RUN_FILES
from rnngrad.device import flush_denormals, flushing_subnormals, no_tf32, resolve_device
from rnngrad.io import discard_temporaries, write_json, write_parquet
from rnngrad.models import build_model
from rnngrad.probes import TRAIN_JAC_EXAMPLES, gradient_profile, weight_spectra
from rnngrad.settings import RunSpec

__all__ = [
    "RunSpec",
    "train_run",
    "resolve_device",
    "flush_denormals",
    "flushing_subnormals",
    "no_tf32",
]

log = logging.getLogger(__name__)

TEST_CHUNK = 250_000  # examples x steps per forward pass of the test evaluation (memory)


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _probe(model, x, y, task: str, probe_step: int, state: RunState) -> None:
    profile = gradient_profile(model, x, y, task, jac_examples=TRAIN_JAC_EXAMPLES)
    for frame, records in ((profile, state.probes), (weight_spectra(model), state.spectra)):
        frame.insert(0, "probe_step", probe_step)
        records.append(frame.to_dict(orient="list"))


def train_run(
    spec: RunSpec,
    out_dir: str | Path,
    *,
    checkpoint: str | Path | None = None,
    config_hash: str | None = None,
    probe: bool = True,
    progress: bool = True,
) -> dict:
    """Train one run and write summary.json, curve.parquet, gradients.parquet, spectra.parquet.

    Args:
        spec: the run.
        out_dir: folder for the run's files (created).
        checkpoint: checkpoint file, outside the declared outputs; default
            `out_dir/.checkpoint.pt`. It is removed once the run's files are written.
        config_hash: hash of the config the spec came from, recorded in the summary.
        probe: measure gradient profiles during training (never changes the run's numbers).
        progress: draw a tqdm progress bar on stderr (the job's log).

    Returns:
        The summary, also written as summary.json.

    Example:
        >>> train_run(RunSpec("adding", 50, steps=200), "/tmp/run")  # doctest: +SKIP
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt = Path(checkpoint) if checkpoint is not None else out_dir / ".checkpoint.pt"
    device = resolve_device(spec.device)
    torch.set_num_threads(spec.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
    for path in (ckpt, *(out_dir / name for name in RUN_FILES)):
        for stale in discard_temporaries(path):
            log.info("removed %s, left by a killed run", stale)
    with no_tf32(device) as tf32, flush_denormals(device):
        run = _Run(spec, device, ckpt, probe=probe)
        run.train(progress)
        run.finish()
        summary = run.summary(tf32, config_hash)
        _write_outputs(out_dir, run.state, summary)
    ckpt.unlink(missing_ok=True)
    return summary


class _Run:
    """One run: train() steps, evaluates, probes and checkpoints; finish() probes and tests the
    final weights; summary() reports. Resumes from its checkpoint when there is one."""

    def __init__(self, spec: RunSpec, device: torch.device, ckpt: Path, *, probe: bool):
        self.spec, self.device, self.ckpt, self.probing = spec, device, ckpt, probe
        self.task = tasks.get_task(spec.task)
        self._build()
        state = checkpoints.load(ckpt, spec, self.model, self.opt)
        self.resumed_from = state.step if state is not None else None
        if state is None and ckpt.exists():
            self._build()  # a refused checkpoint may have been loaded in part
        self.state = state or RunState()
        self.after_step = getattr(self.model, "after_step", None)  # e.g. IndRNN's |u| bound
        threshold = spec.solve_threshold
        self.threshold = self.task.solve_threshold if threshold is None else threshold
        self.eval_batch = self._fixed_batch(spec.length, spec.eval_size, "eval")
        self.probe_batch = self._fixed_batch(spec.length, spec.probe_batch, "probe")
        self.clip = spec.model.clip_norm
        self.pending: list[tuple[torch.Tensor, torch.Tensor]] = []  # (loss, norm) on the device
        self.t0 = self.wall = 0.0
        self.test: tuple[float | None, float | None] = (None, None)  # (loss, metric)

    def _fixed_batch(self, length: int, size: int, stream: str):
        spec = self.spec
        return tasks.make_batch(spec.task, length, size, spec.seed, 0, self.device, stream=stream)

    def _build(self) -> None:
        spec = self.spec
        model = build_model(spec.model, spec.task, length=spec.length, seed=spec.seed)
        self.model = model.to(self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(self.params, lr=spec.effective_lr)

    def train(self, progress: bool) -> None:
        spec, state = self.spec, self.state
        if self.probing and state.step == 0 and not state.probes:
            self.probe()
        self.bar = tqdm(
            total=spec.steps,
            initial=state.step,
            file=sys.stderr,
            mininterval=5.0,
            disable=not progress,
            desc=f"{spec.task} T={spec.length} {spec.variant} seed={spec.seed}",
        )
        self.t0 = time.perf_counter() - state.elapsed
        while state.step < spec.steps and state.steps_to_solve is None:  # or a divergence breaks
            self.step()
            at_eval = state.step % spec.eval_every == 0 or state.step == spec.steps
            at_probe = self.probing and spec.probe_every > 0 and state.step % spec.probe_every == 0
            at_ckpt = state.step % spec.checkpoint_every == 0
            if not (at_eval or at_probe or at_ckpt):
                continue
            if not self.flush() or (at_eval and not self.evaluate()):
                break
            if at_probe:
                self.probe()
            if at_ckpt and state.steps_to_solve is None and state.step < spec.steps:
                self.checkpoint()
        self.flush()
        self.bar.close()
        self.wall = time.perf_counter() - self.t0

    def step(self) -> None:
        spec = self.spec
        x, y = tasks.make_batch(
            spec.task, spec.length, spec.batch_size, spec.seed, self.state.step, self.device
        )
        loss = tasks.loss(spec.task, self.model(x), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for p in self.params if p.grad is not None]
        norm = torch.nn.utils.get_total_norm(grads, error_if_nonfinite=False)
        if self.clip is not None:
            torch.nn.utils.clip_grads_with_norm_(self.params, self.clip, norm)
        self.opt.step()
        if self.after_step is not None:
            self.after_step()
        self.state.step += 1
        self.bar.update(1)
        self.pending.append((loss.detach(), norm.detach()))

    def flush(self) -> bool:
        # One host sync for all pending steps. The curve keeps the steps up to and including
        # the first with a NaN or inf loss or gradient norm; the run diverged at that step.
        state, pending = self.state, self.pending
        if not pending:
            return True
        losses = torch.stack([p[0] for p in pending]).double().cpu()
        norms = torch.stack([p[1] for p in pending]).double().cpu()
        first = state.step - len(pending) + 1
        pending.clear()
        now = time.perf_counter() - self.t0
        bad = ~(torch.isfinite(losses) & torch.isfinite(norms))
        ok = not bool(bad.any())
        n = len(losses) if ok else int(bad.nonzero()[0]) + 1
        for i in range(n):
            state.curve["step"].append(first + i)
            state.curve["loss"].append(float(losses[i]))
            state.curve["grad_norm"].append(float(norms[i]))
            state.curve["clipped"].append(bool(self.clip is not None and norms[i] > self.clip))
            state.curve["elapsed"].append(now)
        if not ok:
            state.diverged_at = state.step = first + n - 1
        return ok

    def evaluate(self) -> bool:
        state = self.state
        eval_loss, value = _evaluate(self.model, self.spec.task, *self.eval_batch)
        if not math.isfinite(eval_loss):
            state.diverged_at = state.step
            return False
        state.evals["step"].append(state.step)
        state.evals["metric"].append(value)
        state.evals["eval_loss"].append(eval_loss)
        self.bar.set_postfix({self.task.metric_name: f"{value:.4g}"}, refresh=False)
        if tasks.is_solved(self.spec.task, value, self.threshold):
            state.steps_to_solve = state.step
        return True

    def probe(self) -> None:
        _probe(self.model, *self.probe_batch, self.spec.task, self.state.step, self.state)

    def checkpoint(self) -> None:
        self.state.elapsed = time.perf_counter() - self.t0
        checkpoints.write(self.ckpt, self.spec, self.model, self.opt, self.state)

    def finish(self) -> None:
        state = self.state
        if state.diverged_at is not None:
            return
        last_probe = state.probes[-1]["probe_step"][0] if state.probes else None
        if self.probing and last_probe != state.step:
            self.probe()
        if self.probing and self.spec.horizon_length is not None:
            self.probe_horizon()
        self.test = self._test()

    def _test(self) -> tuple[float | None, float | None]:
        # in chunks of TEST_CHUNK examples x steps, so 2000 examples at T = 1000 fit in memory
        spec = self.spec
        x, y = self._fixed_batch(spec.length, spec.test_size, "test")
        chunk = max(1, TEST_CHUNK // self.task.seq_len(spec.length))
        loss, value = _evaluate(self.model, spec.task, x, y, chunk)
        return tuple(v if math.isfinite(v) else None for v in (loss, value))

    def probe_horizon(self) -> None:
        # A model trained at any length runs at any other (its weights do not depend on T),
        # so the horizon of every trained model of a task is measured at one common length,
        # not capped by the length it happened to be trained at. One Jacobian example: the
        # bound is checked at the trained length already.
        spec = self.spec
        x, y = self._fixed_batch(spec.horizon_length, spec.probe_batch, "probe")
        profile = gradient_profile(self.model, x, y, spec.task, jac_examples=1)
        profile.insert(0, "probe_length", spec.horizon_length)
        profile.insert(0, "probe_step", self.state.step)
        self.state.horizon = profile.to_dict(orient="list")

    def summary(self, tf32: bool, config_hash: str | None) -> dict:
        spec, state, task, device, wall = self.spec, self.state, self.task, self.device, self.wall
        scan, dtype = self.model.scan_method(), next(self.model.parameters()).dtype
        k = spec.final_k
        metrics = state.evals["metric"][-k:]
        losses = state.evals["eval_loss"][-k:]
        baseline = tasks.baseline_loss(spec.task, spec.length)
        final_loss = sum(losses) / len(losses) if losses else None
        test_loss, test_metric = self.test
        solved = test_metric is not None and tasks.is_solved(spec.task, test_metric, self.threshold)
        status = "diverged" if state.diverged_at is not None else "solved" if solved else "unsolved"
        pick = max if task.higher_is_better else min
        return {
            "task": spec.task,
            "length": spec.length,
            "variant": spec.variant,
            "seed": spec.seed,
            **spec.model.to_dict(),
            "lr": spec.effective_lr,
            "status": status,
            "metric_name": task.metric_name,
            "solve_threshold": self.threshold,
            "test_size": spec.test_size,
            "test_metric": test_metric,
            "test_loss": test_loss,
            "test_loss_ratio": test_loss / baseline if test_loss is not None else None,
            "stopped_early": state.steps_to_solve is not None,
            "final_metric": sum(metrics) / len(metrics) if metrics else None,
            "best_metric": pick(state.evals["metric"]) if metrics else None,
            "final_k": k,
            "evaluations": len(state.evals["metric"]),
            "final_loss": final_loss,
            "baseline_loss": baseline,
            "loss_ratio": final_loss / baseline if final_loss is not None else None,
            "steps_to_solve": state.steps_to_solve,
            "diverged_at": state.diverged_at,
            "steps_done": state.step,
            "wall_seconds": wall,
            "steps_per_second": state.step / wall if wall > 0 else None,
            "resumed_from": self.resumed_from,
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "tf32": tf32,
            "scan": scan,
            # why minGRU on a CPU trains without its compiled kernel ("" when it has it), and
            # what compiled it when it does (the two round differently: rnngrad.native)
            "scan_reason": native.why_unavailable(dtype) if scan == "fused" else "",
            "native_compiler": native.compiler() if scan == "native" else "",
            "threads": spec.threads,
            "torch_threads": torch.get_num_threads(),  # what torch used: checked against threads
            "torch_version": torch.__version__,
            "git_commit": _git_commit(),
            "config_hash": config_hash,
            "spec": spec.to_dict(),
        }


def _evaluate(model, task: str, x, y, chunk: int | None = None) -> tuple[float, float]:
    # Loss and metric are means over examples (and positions, the same number per example),
    # so the chunks' means weighted by their sizes give the whole batch's.
    n = x.shape[0]
    chunk = n if chunk is None else chunk
    loss = value = 0.0
    with torch.no_grad():
        for lo in range(0, n, chunk):
            xs, ys = x[lo : lo + chunk], y[lo : lo + chunk]
            out = model(xs)
            w = xs.shape[0] / n
            loss += w * float(tasks.loss(task, out, ys))
            value += w * float(tasks.metric(task, out, ys))
    return loss, value


def _frames(records: list[dict]) -> pd.DataFrame:
    return pd.concat(map(pd.DataFrame, records), ignore_index=True) if records else pd.DataFrame()


def _write_outputs(out_dir: Path, state: RunState, summary: dict) -> None:
    evals = pd.DataFrame(state.evals)
    curve = pd.DataFrame(state.curve).merge(evals, on="step", how="left")[list(CURVE_COLUMNS)]
    write_parquet(out_dir / "curve.parquet", curve)
    write_parquet(out_dir / "gradients.parquet", _frames(state.probes))
    write_parquet(out_dir / "spectra.parquet", _frames(state.spectra))
    horizon = pd.DataFrame(state.horizon or {c: [] for c in HORIZON_COLUMNS})
    write_parquet(out_dir / "horizon.parquet", horizon[list(HORIZON_COLUMNS)])
    # The summary goes last: its presence means the run's files are complete.
    write_json(out_dir / "summary.json", summary)
