"""Cost of one gradient probe relative to one fused training step.

A probe (rnngrad.probes.gradient_profile: step-by-step unroll, dL/dh_t for every t,
one-step Jacobian norms) against one training step of the fused nn.RNN / nn.LSTM /
nn.GRU (forward, backward, Adam step) on the adding task at the same sequence length.
Both are timed side by side, alternating, so a change in machine load hits both;
the ratio is the median over repeats of probe time / step time.

    python benchmarks/bench_probe.py [--repeats 7] [--lengths 100 1000] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rnngrad import tasks
from rnngrad.models import VariantSpec, build_model
from rnngrad.probes import JAC_EXAMPLES, gradient_profile

__all__ = ["measure", "main"]

CELLS = ("rnn_tanh", "lstm", "gru")
LENGTHS = (100, 1000)
GOAL = 3.0  # a probe should cost at most ~3 training steps


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _time_pairs(cell, length, hidden_size, probe_batch, train_batch, repeats, task, jac_examples):
    """(step seconds, probe seconds) per repeat, alternating."""
    spec = VariantSpec(cell=cell, hidden_size=hidden_size)
    trained = build_model(spec, task, length=length, seed=0)
    probed = build_model(spec, task, length=length, seed=0)
    opt = torch.optim.Adam(trained.parameters(), lr=1e-3)
    x, y = tasks.make_batch(task, length, train_batch, seed=0, step=0)
    xp, yp = tasks.make_batch(task, length, probe_batch, tasks.PROBE_SEED, step=0)

    def train_step():
        opt.zero_grad(set_to_none=True)
        tasks.loss(task, trained(x), y).backward()
        opt.step()

    def probe():
        gradient_profile(probed, xp, yp, task, jac_examples=jac_examples)

    train_step(), probe()  # warm-up: allocator, oneDNN primitives
    return [(_seconds(train_step), _seconds(probe)) for _ in range(repeats)]


def measure(
    cells: tuple[str, ...] = CELLS,
    lengths: tuple[int, ...] = LENGTHS,
    hidden_size: int = 64,
    probe_batch: int = 32,
    train_batch: int = 64,
    repeats: int = 7,
    threads: int = 1,
    task: str = "adding",
    jac_examples: int | None = JAC_EXAMPLES,
) -> list[dict]:
    """Time probes and training steps side by side.

    Returns:
        one dict per (cell, length): cell, length, hidden_size, probe_batch,
        train_batch, threads, jac_examples, train_s and probe_s (medians, seconds),
        ratio (median of the per-repeat probe / step ratios).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    rows = []
    try:
        for cell in cells:
            for length in lengths:
                pairs = _time_pairs(
                    cell, length, hidden_size, probe_batch, train_batch, repeats, task, jac_examples
                )
                rows.append(
                    {
                        "cell": cell,
                        "length": length,
                        "hidden_size": hidden_size,
                        "probe_batch": probe_batch,
                        "train_batch": train_batch,
                        "threads": threads,
                        "jac_examples": jac_examples,
                        "train_s": statistics.median(t for t, _ in pairs),
                        "probe_s": statistics.median(p for _, p in pairs),
                        "ratio": statistics.median(p / t for t, p in pairs),
                    }
                )
    finally:
        torch.set_num_threads(previous)
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=list(CELLS))
    parser.add_argument("--lengths", nargs="+", type=int, default=list(LENGTHS))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--jac-examples", type=int, default=JAC_EXAMPLES)
    args = parser.parse_args(argv)
    rows = measure(
        tuple(args.cells),
        tuple(args.lengths),
        repeats=args.repeats,
        threads=args.threads,
        jac_examples=args.jac_examples,
    )
    print(f"{'cell':9} {'T':>5} {'step ms':>8} {'probe ms':>9} {'ratio':>6}")
    for r in rows:
        flag = "" if r["ratio"] <= GOAL else f"  > {GOAL:g}x goal"
        print(
            f"{r['cell']:9} {r['length']:5d} {1e3 * r['train_s']:8.1f} "
            f"{1e3 * r['probe_s']:9.1f} {r['ratio']:5.2f}x{flag}"
        )
    print(
        f"H={rows[0]['hidden_size']}, probe batch {rows[0]['probe_batch']}, train batch "
        f"{rows[0]['train_batch']}, {rows[0]['threads']} thread(s), Jacobians over "
        f"{rows[0]['jac_examples']} example(s), torch {torch.__version__}"
    )
    return rows


if __name__ == "__main__":
    main()
