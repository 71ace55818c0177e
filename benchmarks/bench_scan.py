"""Scans: a training step of lru, mingru and indrnn against torch's fused LSTM, and against T.

step: forward and backward of the whole model (adding, T = 1000, H = 64, batch 64, one
thread on a CPU) for every new cell and, for lru and mingru, for every scan method of
rnngrad.scan (the one `linear_scan` picks for the device, marked "auto"), timed in one
rotation with nn.LSTM's step (oneDNN on a CPU, cuDNN on a GPU); each figure is a ratio
of step times (benchmarks/common.py: clock and statistic). Acceptance: at most 0.5x the
LSTM's step; the goal, 0.1x, is about the floor that the memory traffic over the
B x T x H states sets. On a GPU the same at T = 1000 and 4000.

slope: the step time of each new cell against T (50 to 4000), the log-log slope of the
fastest repeats: linear work in T gives 1.0.

Denormals: both sections run with torch.set_flush_denormal(True), as train_run does.
The LRU's gradient decays as |lambda|^distance and, in float32, spends hundreds of steps
between 1e-38 and 1e-45 (subnormal numbers), where x86 arithmetic is ~100x slower: the
backward GEMMs over them made the lru step 6x slower at T = 2000 than at T = 1000
(slope 2.3 from 1000 to 4000). `denormals` times the lru step at long T both ways.
Page faults (see bench_growth's allocator figure) bend the slope above 1 as well.

What is not here, measured once while choosing (one thread, T = 1000, B = H = 64, the
scan alone): a chunked scan (sequential within chunks of 32, carries across) took 4x
the sequential scan's forward, its strided slices defeating the cache; torch.compile of
it took 41 s to compile and ran forward + backward in 0.25 s against the sequential
scan's 0.02 s, so neither is an option on a CPU. The same minGRU Function in torch
over blocks of 8 to 128 steps held in cache (gates recomputed in the backward) was no
faster than its whole-tensor passes (85 to 92 ms against 89 ms, the scan alone): each
torch call runs its loop at 0.2 to 0.5 ns per number even in cache, so two dozen of
them cost what the memory traffic does. minGRU's "native" scan (rnngrad.mingru_scan:
g, the recurrence and the backward in one pass each, compiled by numba, torch's sigmoid
before them) is what it trains with on a CPU; "fused" is the same in one torch
Function (buffers reused; what it trains with where numba fails); "sequential" the
recurrence with the gates as autograd operations; "none" the model without a
recurrence, the floor under every scan: its gate GEMM (forward and two backward, about
11 ms each here, near one core's FLOP peak) and the encoder. Also measured once
(T = 1000): glibc told to keep freed memory (mallopt: mmap threshold 1 GB, trim
threshold 2 GB) makes the LSTM step 1.5x faster (oneDNN allocates its workspace every
step) and the others hardly at all: minGRU native 0.65x, LRU 0.45x of the LSTM's step.

    python -m benchmarks.bench_scan [--lengths 1000] [--repeats 5] [--device auto]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
from collections.abc import Iterator

import torch

from benchmarks.bench_growth import fit_slope
from benchmarks.common import (
    alternate,
    best_ratio,
    device_of,
    median_ratio,
    seconds,
    threads,
    training_numerics,
)
from rnngrad import tasks
from rnngrad.cells import scan_method
from rnngrad.models import VariantSpec, build_model
from rnngrad.train import flushing_subnormals

__all__ = [
    "GOAL",
    "GUARD_GOAL",
    "STRETCH",
    "denormals",
    "flush_denormal",
    "guard_share",
    "measure",
    "slope",
    "stepper",
]

GOAL = 0.5  # acceptance: a step of lru / mingru at most 0.5x the LSTM's
STRETCH = 0.1  # the goal: near the memory floor
GUARD_GOAL = 0.02  # the input checks before minGRU's kernel: at most 2 % of a step
METHODS = {
    "lru": ("sequential", "associative", "loop"),
    "mingru": ("native", "fused", "sequential", "associative", "log", "loop", "none"),
}
# "none": the model with its recurrence taken out (h_t = pz_t), its encoder, gate GEMM
# and readout kept: the floor that no scan goes under, whatever it is written in
NONE = "none"
SLOPE_LENGTHS = (50, 100, 200, 500, 1000, 2000, 4000)


@contextlib.contextmanager
def flush_denormal(on: bool = True) -> Iterator[None]:
    """CPU subnormal floats flushed to zero (on) or kept (off), then as they were."""
    before = flushing_subnormals()
    torch.set_flush_denormal(on)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)


def stepper(cell, length, hidden_size, batch_size, device, method="auto"):
    """A function running one forward + backward of `cell` on an adding batch."""
    model = build_model(VariantSpec(cell=cell, hidden_size=hidden_size), "adding", length, 0)
    model = model.to(device)
    x, y = tasks.make_batch("adding", length, batch_size, 0, 0, device)
    if method == NONE:
        model.core.scan = lambda xi, w: xi.narrow(-1, 0, hidden_size)
    elif model.core is not None:  # this model's scan, with the method asked for
        model.core.scan = functools.partial(type(model.core).scan, model.core, method=method)

    def step():
        model.zero_grad(set_to_none=True)
        tasks.loss("adding", model(x), y).backward()

    step()  # warm-up: allocator, oneDNN / cuDNN plans
    return step


def measure(
    lengths=(1000,),
    repeats: int = 5,
    hidden_size: int = 64,
    batch_size: int = 64,
    methods: dict | None = None,
    device: torch.device | None = None,
) -> list[dict]:
    """Step time of each cell (and scan method) over the LSTM's, timed side by side.

    Returns one row per (length, cell, method): step_s (fastest repeat), lstm_s, ratio
    (fastest / fastest), ratio_median (median of the per-repeat ratios).
    """
    device = device or device_of()
    methods = METHODS if methods is None else methods
    rows = []
    with threads(1), flush_denormal():
        for length in lengths:
            fns = {("lstm", "fused"): stepper("lstm", length, hidden_size, batch_size, device)}
            for cell in ("lru", "mingru", "indrnn"):
                chosen = methods.get(cell, ())
                # "auto" first: the method training uses; the others for the record
                auto = scan_method(cell, device.type)
                for method in ("auto", *(m for m in chosen if m != auto)):
                    fns[(cell, method)] = stepper(
                        cell, length, hidden_size, batch_size, device, method
                    )
            got = alternate(fns, repeats, device)
            lstm = got[("lstm", "fused")]
            for (cell, method), times in got.items():
                if cell == "lstm":
                    continue
                shown = f"{scan_method(cell, device.type)} (auto)" if method == "auto" else method
                rows.append(
                    {
                        "cell": cell,
                        "method": shown,
                        "length": length,
                        "device": device.type,
                        "step_s": min(times),
                        "lstm_s": min(lstm),
                        "ratio": best_ratio(times, lstm),
                        "ratio_median": median_ratio(times, lstm),
                    }
                )
    return rows


def guard_share(
    length: int = 1000, hidden_size: int = 64, batch_size: int = 64, repeats: int = 2000
) -> dict | None:
    """What the checks in front of minGRU's kernel cost, as a share of a training step.

    The checks are timed alone over many calls (they take microseconds, far below the
    noise of one step): mingru_scan.check_native on the step's p, and the kernel's own
    shape check (`sizes`) called from Python, which adds numba's dispatch and so
    overstates it; both run once in the forward and once in the backward. The step is
    the fastest of a few minGRU steps (native scan) at the same sizes. None where the
    kernel does not build here.
    """
    from rnngrad import mingru_kernel
    from rnngrad.mingru_scan import check_native, native_available

    if not native_available(torch.float32):
        return None
    p = torch.randn(length, batch_size, 2 * hidden_size)
    arrays = (
        p.numpy(),
        p.numpy(),
        p.new_empty(length, batch_size, hidden_size).numpy(),
        p.new_zeros(batch_size, hidden_size).numpy(),
        p.new_ones(1).numpy(),
    )

    cpu = torch.device("cpu")

    def per_call(fn) -> float:  # the suite's clock, over many calls
        fn()
        return seconds(lambda: [fn() for _ in range(repeats)], cpu) / repeats

    with threads(1), flush_denormal():
        check_s = per_call(lambda: check_native(p))
        sizes_s = per_call(lambda: mingru_kernel.sizes(*arrays))
        step = stepper("mingru", length, hidden_size, batch_size, cpu, "native")
        step_s = min(alternate({"step": step}, 5, cpu)["step"])
    guard_s = 2 * (check_s + sizes_s)
    return {
        "length": length,
        "check_s": check_s,
        "sizes_s": sizes_s,
        "step_s": step_s,
        "share": guard_s / step_s,
    }


def slope(
    cells=("lru", "mingru", "indrnn"),
    lengths=SLOPE_LENGTHS,
    repeats: int = 3,
    hidden_size: int = 64,
    batch_size: int = 64,
    device: torch.device | None = None,
) -> list[dict]:
    """Per cell: step time at each T (fastest repeat, lengths in rotation) and the slope."""
    device = device or device_of()
    out = []
    with threads(1), flush_denormal():
        for cell in cells:
            fns = {t: stepper(cell, t, hidden_size, batch_size, device) for t in lengths}
            got = alternate(fns, repeats, device)
            times = [min(got[t]) for t in lengths]
            out.append(
                {
                    "cell": cell,
                    "lengths": list(lengths),
                    "step_s": times,
                    "slope": fit_slope(lengths, times),
                }
            )
    return out


def denormals(
    length: int = 2000,
    repeats: int = 3,
    hidden_size: int = 64,
    batch_size: int = 64,
    device: torch.device | None = None,
) -> dict:
    """The lru step with subnormals kept over the step with them flushed (CPU)."""
    device = device or device_of()
    step = stepper("lru", length, hidden_size, batch_size, device)

    def kept():
        with flush_denormal(False):
            step()

    def flushed():
        with flush_denormal(True):
            step()

    with threads(1):
        got = alternate({"kept": kept, "flushed": flushed}, repeats, device)
    return {
        "length": length,
        "kept_s": min(got["kept"]),
        "flushed_s": min(got["flushed"]),
        "slowdown": best_ratio(got["kept"], got["flushed"]),
    }


@training_numerics
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", nargs="+", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--slope-lengths", nargs="+", type=int, default=list(SLOPE_LENGTHS))
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = device_of(args.device)
    lengths = args.lengths or ([1000, 4000] if device.type == "cuda" else [1000])
    rows = measure(tuple(lengths), args.repeats, device=device)
    for r in rows:
        print(
            f"{r['cell']:>7} {r['method']:<20} T={r['length']:<5} {1e3 * r['step_s']:8.1f} ms  "
            f"LSTM {1e3 * r['lstm_s']:8.1f} ms  ratio {r['ratio']:.3f} "
            f"(median {r['ratio_median']:.3f}; goal <= {GOAL}, stretch {STRETCH})"
        )
    fits = slope(lengths=tuple(args.slope_lengths), device=device)
    for f in fits:
        steps = " ".join(
            f"{t}:{1e3 * s:.1f}" for t, s in zip(f["lengths"], f["step_s"], strict=True)
        )
        print(f"{f['cell']:>7} slope {f['slope']:.3f} (ms at T: {steps})")
    g = guard_share(lengths[0]) if device.type == "cpu" else None
    if g is not None:
        print(
            f" mingru guard T={g['length']}: {1e6 * g['check_s']:.1f} us + kernel check "
            f"{1e6 * g['sizes_s']:.1f} us, twice a step of {1e3 * g['step_s']:.1f} ms: "
            f"{100 * g['share']:.3f} % (goal <= {100 * GUARD_GOAL:.0f} %)"
        )
    d = denormals(device=device) if device.type == "cpu" else None
    if d is not None:
        print(f"    lru T={d['length']}: subnormals kept / flushed {d['slowdown']:.2f}x")
    return {"rows": rows, "slope": fits, "guard": g, "denormals": d}


if __name__ == "__main__":
    main()
