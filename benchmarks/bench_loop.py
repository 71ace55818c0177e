"""Loop overhead: train_run's steps/s against a bare hand-written torch loop.

Both loops train the same model (same seed) with Adam on the same batches from
make_batch, one thread; train_run evaluates once (at the end) and does not probe,
so what is compared is the loop itself: gradient-norm logging, deferred host
syncs, progress accounting. Trials alternate between the two loops so machine
noise hits both alike. Run: python benchmarks/bench_loop.py
"""

from __future__ import annotations

import statistics
import tempfile
import time

import torch

from rnngrad import tasks
from rnngrad.models import VariantSpec, build_model
from rnngrad.train import RunSpec, train_run


def bare_loop(spec: RunSpec) -> float:
    """Steps per second of the plainest correct loop over the same model and batches."""
    model = build_model(spec.model, spec.task, length=spec.length, seed=spec.seed)
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
    start = time.perf_counter()
    for step in range(spec.steps):
        x, y = tasks.make_batch(spec.task, spec.length, spec.batch_size, spec.seed, step)
        loss = tasks.loss(spec.task, model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    loss.item()
    return spec.steps / (time.perf_counter() - start)


def rnngrad_loop(spec: RunSpec) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        return train_run(spec, tmp, probe=False, progress=False)["steps_per_second"]


def measure(cells=("lstm",), lengths=(100,), steps: int = 150, trials: int = 5,
            hidden_size: int = 64, batch_size: int = 64) -> list[dict]:
    """Median steps/s of both loops and their ratio, per cell and length (one thread)."""
    torch.set_num_threads(1)
    rows = []
    for cell in cells:
        for length in lengths:
            spec = RunSpec(
                task="adding", length=length, variant=cell,
                model=VariantSpec(cell=cell, hidden_size=hidden_size),
                steps=steps, batch_size=batch_size, eval_every=steps, eval_size=batch_size,
                checkpoint_every=10 * steps, probe_every=0, threads=1,
            )
            ours, bare = [], []
            for _ in range(trials):
                bare.append(bare_loop(spec))
                ours.append(rnngrad_loop(spec))
            rows.append({
                "cell": cell, "length": length,
                "bare_steps_per_s": statistics.median(bare),
                "train_run_steps_per_s": statistics.median(ours),
                "ratio": statistics.median(ours) / statistics.median(bare),
            })
    return rows


if __name__ == "__main__":
    for r in measure():
        print(
            f"{r['cell']:>8} T={r['length']:<5} bare {r['bare_steps_per_s']:7.1f} steps/s   "
            f"train_run {r['train_run_steps_per_s']:7.1f} steps/s   ratio {r['ratio']:.3f} (goal >= 0.95)"
        )
