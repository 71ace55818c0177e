"""Hardware context: an LSTM training step's achieved FLOP/s against a GEMM peak.

The step's FLOPs are those of its matrix products: per time step and example, the
input product 2 * I * 4H and the recurrent product 2 * H * 4H, plus the readout
2 * H * O once per example (adding reads the last step); backward does two products
of each forward shape (gradients of the input and of the weight), so a step counts
3x the forward products. Elementwise gate arithmetic is left out (it is memory-bound
and a small share of the FLOPs).

Peaks, timed in turn with the step at the train rule's threads (one on a CPU):
- gemm_peak: a large square fp32 product (n = 1024 on a CPU, 4096 on a GPU), the
  machine's best FLOP/s for this precision;
- recurrent_gemm: the product one recurrent step makes, (B, H) @ (H, 4H), the best a
  step-by-step recurrence can hope for at this size.

    python -m benchmarks.bench_flops [--length 200] [--repeats 5]
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.common import (
    alternate,
    best_ratio,
    device_of,
    rule_threads,
    threads,
    training_numerics,
)
from rnngrad import tasks
from rnngrad.models import VariantSpec, build_model

__all__ = ["lstm_step_flops", "measure"]


def lstm_step_flops(length: int, batch: int, hidden: int, inputs: int = 2, outputs: int = 1) -> int:
    """Matrix-product FLOPs of one LSTM training step (forward + backward) on adding."""
    forward = batch * (length * 2 * (inputs + hidden) * 4 * hidden + 2 * hidden * outputs)
    return 3 * forward


def measure(
    length: int = 200,
    batch_size: int = 64,
    hidden_size: int = 64,
    repeats: int = 5,
    gemm_n: int | None = None,
    device: torch.device | None = None,
) -> dict:
    """Achieved FLOP/s of an LSTM step, GEMM peaks, and their ratios (fastest repeats)."""
    device = device or device_of()
    n = gemm_n or (4096 if device.type == "cuda" else 1024)
    with threads(rule_threads("train")):
        model = build_model(VariantSpec(cell="lstm", hidden_size=hidden_size), "adding", seed=0)
        model = model.to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        x, y = tasks.make_batch("adding", length, batch_size, 0, 0, device)
        gen = torch.Generator().manual_seed(0)
        a, b = (torch.randn(n, n, generator=gen).to(device) for _ in range(2))
        h = torch.randn(batch_size, hidden_size, generator=gen).to(device)
        w = torch.randn(hidden_size, 4 * hidden_size, generator=gen).to(device)
        small_reps = 200

        def step():
            opt.zero_grad(set_to_none=True)
            tasks.loss("adding", model(x), y).backward()
            opt.step()

        def gemm():
            a @ b

        def small():
            for _ in range(small_reps):
                h @ w

        for fn in (step, gemm, small):
            fn()  # warm-up
        got = alternate({"step": step, "gemm": gemm, "small": small}, repeats, device)
        n_threads = torch.get_num_threads()
    flops = lstm_step_flops(length, batch_size, hidden_size)
    gemm_flops = 2 * n**3
    small_flops = small_reps * 2 * batch_size * hidden_size * 4 * hidden_size
    achieved = flops / min(got["step"])
    return {
        "device": device.type,
        "threads": n_threads if device.type == "cpu" else None,
        "length": length,
        "batch_size": batch_size,
        "hidden_size": hidden_size,
        "step_flops": flops,
        "step_s": min(got["step"]),
        "achieved_gflops": achieved / 1e9,
        "gemm_n": n,
        "gemm_peak_gflops": gemm_flops / min(got["gemm"]) / 1e9,
        "recurrent_gemm_gflops": small_flops / min(got["small"]) / 1e9,
        # achieved / peak = (flops / step_s) / (gemm_flops / gemm_s)
        "fraction_of_peak": best_ratio(got["gemm"], got["step"]) * flops / gemm_flops,
        "fraction_of_recurrent_gemm": best_ratio(got["small"], got["step"]) * flops / small_flops,
    }


@training_numerics
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    r = measure(args.length, repeats=args.repeats, device=device_of(args.device))
    print(
        f"LSTM step T={r['length']} B={r['batch_size']} H={r['hidden_size']}: "
        f"{r['achieved_gflops']:.2f} GFLOP/s; GEMM peak {r['gemm_peak_gflops']:.1f} GFLOP/s "
        f"(n={r['gemm_n']}, {r['threads']} thread(s)) -> {100 * r['fraction_of_peak']:.1f}% of peak; "
        f"recurrent-size GEMM {r['recurrent_gemm_gflops']:.1f} GFLOP/s -> "
        f"{100 * r['fraction_of_recurrent_gemm']:.1f}%"
    )
    return r


if __name__ == "__main__":
    main()
