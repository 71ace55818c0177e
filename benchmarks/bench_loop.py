"""Loop overhead: train_run's steps/s against a bare hand-written torch loop.

Both loops train the same model (same seed) with Adam on the same batches from
make_batch and end with the same single evaluation; train_run runs as the workflow
runs it (progress bar on, its output discarded) but without probes, so what is compared
is the loop itself: gradient-norm logging, deferred host syncs, progress accounting.
The loops alternate trial by trial, so machine noise hits both alike (see
benchmarks/common.py for the clock and the statistic). A second bare loop in the same
rotation gives bare against bare, the noise floor of the ratio on this machine now.
The bare loop also times make_batch: the data's share of a step.

    python -m benchmarks.bench_loop [--lengths 50 200 1000] [--trials 3]
"""

from __future__ import annotations

import contextlib
import io
import statistics
import tempfile

import torch

from benchmarks.common import (
    best_ratio,
    clock,
    device_of,
    grid_parser,
    interleave,
    median_ratio,
    rule_threads,
    sync,
    threads,
    train_clock,
    training_numerics,
)
from rnngrad import tasks
from rnngrad.models import VariantSpec, build_model
from rnngrad.train import RunSpec, train_run

__all__ = ["GOAL", "bare_loop", "measure", "train_run_loop"]

CELLS = ("rnn_tanh", "lstm", "gru")
LENGTHS = (50, 200, 1000)
GOAL = 0.97  # train_run keeps at least 97% of a bare loop's steps/s


def bare_loop(spec: RunSpec, device: torch.device) -> tuple[float, float]:
    """(seconds, of which make_batch) of the plainest correct loop over the same work."""
    model = build_model(spec.model, spec.task, length=spec.length, seed=spec.seed).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=spec.effective_lr)
    x_eval, y_eval = tasks.make_batch(
        spec.task, spec.length, spec.eval_size, spec.seed, 0, device, stream="eval"
    )
    now = clock(device)
    data = 0.0
    sync(device)
    start = now()
    for step in range(spec.steps):
        t = now()
        x, y = tasks.make_batch(spec.task, spec.length, spec.batch_size, spec.seed, step, device)
        data += now() - t
        loss = tasks.loss(spec.task, model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():  # train_run's one evaluation (eval_every = steps)
        float(tasks.loss(spec.task, model(x_eval), y_eval))
    sync(device)
    return now() - start, data


def train_run_loop(spec: RunSpec, device: torch.device) -> float:
    """Seconds of train_run's loop (its own timer: setup and file writing excluded)."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        contextlib.redirect_stderr(io.StringIO()),
        train_clock(device),
    ):
        summary = train_run(spec, tmp, probe=False, progress=True)
    return summary["wall_seconds"]


def _spec(cell, length, steps, hidden_size, batch_size, device, n_threads) -> RunSpec:
    return RunSpec(
        task="adding",
        length=length,
        variant=cell,
        model=VariantSpec(cell=cell, hidden_size=hidden_size),
        steps=steps,
        batch_size=batch_size,
        eval_every=steps,
        eval_size=batch_size,
        checkpoint_every=10 * steps,
        probe_every=0,
        device=device.type,
        threads=n_threads,
    )


def measure(
    cells=CELLS,
    lengths=LENGTHS,
    trial_seconds: float = 0.25,
    trials: int = 6,
    hidden_size: int = 64,
    batch_size: int = 64,
    device: torch.device | None = None,
) -> list[dict]:
    """Steps/s of both loops and their ratio, per cell and length.

    The steps per trial are chosen so a trial lasts about `trial_seconds` (at least 3),
    from one timed bare step after a warm-up. Threads: the train rule's (profile).
    """
    device = device or device_of()
    n_threads = rule_threads("train")
    rows = []
    with threads(n_threads):
        for cell in cells:
            for length in lengths:
                one = _spec(cell, length, 1, hidden_size, batch_size, device, n_threads)
                bare_loop(one, device), train_run_loop(one, device)  # warm-up: allocator, oneDNN
                step_s, _ = bare_loop(one, device)
                steps = max(3, min(500, round(trial_seconds / step_s)))
                spec = _spec(cell, length, steps, hidden_size, batch_size, device, n_threads)
                # each loop reports its own time (setup and file writing excluded)
                # the bare loop runs twice: bare against bare (A/A) is the noise floor
                got = interleave(
                    {
                        "bare": lambda s=spec: bare_loop(s, device),
                        "ours": lambda s=spec: train_run_loop(s, device),
                        "bare_again": lambda s=spec: bare_loop(s, device),
                    },
                    trials,
                )
                bare_s = [b[0] for b in got["bare"]]
                again_s = [b[0] for b in got["bare_again"]]
                rows.append(
                    {
                        "cell": cell,
                        "length": length,
                        "steps": steps,
                        "trials": trials,
                        "threads": n_threads,
                        "device": device.type,
                        "bare_steps_per_s": steps / min(bare_s),
                        "train_run_steps_per_s": steps / min(got["ours"]),
                        # steps/s ratio = bare seconds / train_run seconds
                        "ratio": best_ratio(bare_s, got["ours"]),
                        "ratio_median": median_ratio(bare_s, got["ours"]),
                        "noise_aa": best_ratio(bare_s, again_s),  # 1.0 on a quiet machine
                        "data_share": statistics.median(d / s for s, d in got["bare"]),
                    }
                )
    return rows


@training_numerics
def main(argv: list[str] | None = None) -> list[dict]:
    parser = grid_parser(__doc__, CELLS, LENGTHS)
    parser.add_argument("--trials", type=int, default=6)
    args = parser.parse_args(argv)
    rows = measure(
        tuple(args.cells), tuple(args.lengths), trials=args.trials, device=device_of(args.device)
    )
    for r in rows:
        print(
            f"{r['cell']:>8} T={r['length']:<5} bare {r['bare_steps_per_s']:7.1f} steps/s   "
            f"train_run {r['train_run_steps_per_s']:7.1f} steps/s   ratio {r['ratio']:.3f} "
            f"(median {r['ratio_median']:.3f}, A/A {r['noise_aa']:.3f}, goal >= {GOAL})   data {100 * r['data_share']:.1f}%"
        )
    return rows


if __name__ == "__main__":
    main()
