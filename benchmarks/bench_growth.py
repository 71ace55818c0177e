"""Cost growth: a training step's time and peak memory against T, per cell.

BPTT through T steps does T steps of work and keeps T steps of activations, so both
should grow linearly: the fitted slope of log(cost) against log(T) should be 1.0 +/- 0.1.
A fixed cost per step (Adam, the readout, Python) pulls the slope below 1 at small T.

Time: one training step (forward, backward, Adam) of the fused cell on adding at each T,
the lengths timed in turn, repeated (benchmarks/common.py: clock and statistic).
Memory: on a GPU, torch.cuda.max_memory_allocated over the step, less what was
allocated before it. On a CPU torch keeps no such count, so each cell runs in a child
process that steps through the lengths in increasing order; the step's peak memory is
the growth of the process's peak resident set (VmHWM; Snakemake's max_rss is the same
kind of number) over that after a warm-up step at T = 2. (ru_maxrss would not do: Linux
carries it across exec from the parent.) Beside it: the bytes autograd saves
for backward in one step (torch.autograd.graph.saved_tensors_hooks), exact on any device.

allocator (CPU): the step at long T in a fresh process with glibc's default settings
against one that keeps freed memory (KEEP_FREED): the gap is the cost of faulting
each step's activations back in, which bends the time slope above 1.

    python -m benchmarks.bench_growth [--lengths 50 100 200 500 1000 2000]
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import (
    ROOT,
    alternate,
    device_of,
    grid_parser,
    rule_threads,
    threads,
    training_numerics,
)
from rnngrad import tasks
from rnngrad.models import VariantSpec, build_model

__all__ = ["GOAL", "KEEP_FREED", "allocator", "fit_slope", "measure", "step_memory", "step_times"]

CELLS = ("rnn_tanh", "lstm", "gru")
LENGTHS = (50, 100, 200, 500, 1000, 2000)
GOAL = (0.9, 1.1)  # log-log slope of cost against T: linear
MB = 2**20


def fit_slope(lengths, values) -> float:
    """Least-squares slope of log(value) against log(T); NaN with fewer than 2 points."""
    pts = [(math.log(t), math.log(v)) for t, v in zip(lengths, values, strict=True) if v > 0]
    if len(pts) < 2:
        return math.nan
    x, y = np.array(pts).T
    return float(np.polyfit(x, y, 1)[0])


def _stepper(cell, length, hidden_size, batch_size, device):
    model = build_model(VariantSpec(cell=cell, hidden_size=hidden_size), "adding", seed=0)
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = tasks.make_batch("adding", length, batch_size, 0, 0, device)

    def step():
        opt.zero_grad(set_to_none=True)
        tasks.loss("adding", model(x), y).backward()
        opt.step()

    return step


def _saved_bytes(step) -> int:
    """Bytes of the distinct storages autograd saves for backward during step()."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return sum(seen.values())


def _peak_rss_kib() -> int:
    """This process's peak resident set (VmHWM), KiB; 0 where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def step_memory(cell, lengths, hidden_size=64, batch_size=64, device=None) -> list[dict]:
    """Peak memory of one step at each length (see the module docstring), in MB.

    On a CPU call it in a fresh process (python -m benchmarks.bench_growth --memory ...):
    the peak resident set only grows, so lengths must come in increasing order.
    """
    device = device or torch.device("cpu")
    rows = []
    if device.type == "cpu":
        _stepper(cell, 2, hidden_size, batch_size, device)()  # warm-up: libraries, pools
        base = _peak_rss_kib()
    for length in sorted(lengths):
        step = _stepper(cell, length, hidden_size, batch_size, device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            before = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
        saved = _saved_bytes(step)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            peak = (torch.cuda.max_memory_allocated(device) - before) / MB
        else:
            peak = (_peak_rss_kib() - base) / 1024
        rows.append({"length": length, "peak_mb": peak, "saved_mb": saved / MB})
        del step
    return rows


def _memory_in_child(cell, lengths, hidden_size, batch_size) -> list[dict]:
    cmd = [sys.executable, "-m", "benchmarks.bench_growth", "--memory", cell]
    cmd += ["--lengths", *map(str, lengths), "--hidden-size", str(hidden_size)]
    cmd += ["--batch-size", str(batch_size)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True, timeout=600)
    return json.loads(out.stdout)


# glibc: keep freed memory for reuse instead of unmapping it (read at process start)
KEEP_FREED = {"MALLOC_MMAP_THRESHOLD_": str(2**30), "MALLOC_TRIM_THRESHOLD_": str(2**30)}


def step_times(cell, lengths, repeats=3, hidden_size=64, batch_size=64, device=None) -> dict:
    """Fastest step time (s) at each length, the lengths timed in turn."""
    device = device or device_of()
    steps = {t: _stepper(cell, t, hidden_size, batch_size, device) for t in lengths}
    for step in steps.values():
        step()  # warm-up
    got = alternate(steps, repeats, device)
    return {t: min(v) for t, v in got.items()}


def allocator(
    cell: str = "lstm", length: int = 1000, rounds: int = 2, repeats: int = 2, hidden_size=64
) -> dict:
    """CPU step time with glibc's default allocator settings against KEEP_FREED.

    Each setting needs a fresh process (glibc reads it at start); the two alternate,
    `rounds` times. At long T a step frees and reallocates hundreds of MB; by default
    glibc unmaps the largest blocks and the next step faults them back in page by page.

    Returns:
        cell, length, default_s and keep_freed_s (fastest), speedup (default / keep_freed).
    """

    def child(env: dict) -> float:
        cmd = [sys.executable, "-m", "benchmarks.bench_growth", "--time", cell]
        cmd += ["--lengths", str(length), "--repeats", str(repeats)]
        cmd += ["--hidden-size", str(hidden_size)]
        out = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=600
        )
        return json.loads(out.stdout)[str(length)]

    base = {k: v for k, v in os.environ.items() if k not in KEEP_FREED}
    default, kept = [], []
    for _ in range(rounds):
        default.append(child(base))
        kept.append(child({**base, **KEEP_FREED}))
    return {
        "cell": cell,
        "length": length,
        "env": KEEP_FREED,
        "default_s": min(default),
        "keep_freed_s": min(kept),
        "speedup": min(default) / min(kept),
    }


def measure(
    cells=CELLS,
    lengths=LENGTHS,
    repeats: int = 3,
    hidden_size: int = 64,
    batch_size: int = 64,
    device: torch.device | None = None,
) -> dict:
    """Step time and peak memory per cell and length, and their log-log slopes.

    Returns:
        {"rows": one dict per (cell, length): step_s, peak_mb, saved_mb;
         "fits": one dict per cell: time_slope, peak_slope, saved_slope}.
    """
    device = device or device_of()
    rows, fits = [], []
    with threads(rule_threads("train")):
        for cell in cells:
            times = step_times(cell, lengths, repeats, hidden_size, batch_size, device)
            if device.type == "cpu":
                memory = _memory_in_child(cell, lengths, hidden_size, batch_size)
            else:
                memory = step_memory(cell, lengths, hidden_size, batch_size, device)
            mem = {m["length"]: m for m in memory}
            cell_rows = [
                {
                    "cell": cell,
                    "length": t,
                    "device": device.type,
                    "step_s": times[t],
                    "peak_mb": mem[t]["peak_mb"],
                    "saved_mb": mem[t]["saved_mb"],
                }
                for t in lengths
            ]
            rows += cell_rows
            fits.append(
                {
                    "cell": cell,
                    "lengths": list(lengths),
                    **{
                        f"{key}_slope": fit_slope(lengths, [r[col] for r in cell_rows])
                        for key, col in (
                            ("time", "step_s"),
                            ("peak", "peak_mb"),
                            ("saved", "saved_mb"),
                        )
                    },
                }
            )
    return {"rows": rows, "fits": fits}


@training_numerics
def main(argv: list[str] | None = None) -> dict | list:
    parser = grid_parser(__doc__, CELLS, LENGTHS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--memory", metavar="CELL", help="child mode: print step_memory as JSON")
    parser.add_argument("--time", metavar="CELL", help="child mode: print step_times as JSON")
    args = parser.parse_args(argv)
    if args.time:
        with threads(rule_threads("train")):
            times = step_times(
                args.time,
                args.lengths,
                args.repeats,
                args.hidden_size,
                args.batch_size,
                torch.device("cpu"),
            )
        print(json.dumps(times))
        return times
    if args.memory:
        with threads(rule_threads("train")):
            rows = step_memory(args.memory, args.lengths, args.hidden_size, args.batch_size)
        print(json.dumps(rows))
        return rows
    result = measure(
        tuple(args.cells),
        tuple(args.lengths),
        args.repeats,
        args.hidden_size,
        args.batch_size,
        device_of(args.device),
    )
    for r in result["rows"]:
        print(
            f"{r['cell']:9} T={r['length']:<5} {1e3 * r['step_s']:8.1f} ms  "
            f"peak {r['peak_mb']:7.1f} MB  saved {r['saved_mb']:7.1f} MB"
        )
    for f in result["fits"]:
        print(
            f"{f['cell']:9} slopes: time {f['time_slope']:.2f}, peak memory "
            f"{f['peak_slope']:.2f}, saved {f['saved_slope']:.2f} (goal {GOAL[0]}-{GOAL[1]})"
        )
    return result


if __name__ == "__main__":
    main()
