"""The benchmark suite: `python -m benchmarks` (or `make bench`).

Runs every benchmark once, prints each figure with its goal beside it, and writes
results/bench/bench.json (machine, load before and after, every row, every figure).
Each figure is a ratio of two things timed side by side in this run (see
benchmarks/common.py); absolute times are context. On a machine with CUDA the suite
runs on the GPU (cuDNN kernels) unless --device cpu.

    python -m benchmarks [--quick] [--only loop probe growth grid flops scan]
                         [--grid-results results] [--grid-log FILE] [--out FILE]

Sections: loop (train_run against a bare loop), probe (probe against a step, and
probing's share of a default run), growth (step time and peak memory against T),
grid (scheduling efficiency of a finished grid, threads, thread scaling), flops
(achieved FLOP/s of an LSTM step against a GEMM peak), scan (a step of lru, mingru and
indrnn, per scan method, against the fused LSTM's, and its slope against T). --quick runs every code path at
toy sizes in seconds (for the tests), its numbers meaningless.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

from benchmarks import (
    bench_flops,
    bench_grid,
    bench_growth,
    bench_loop,
    bench_probe,
    bench_scan,
)
from benchmarks.common import ROOT, Figure, device_of, load, machine, training_numerics
from rnngrad.io import write_json

SECTIONS = ("loop", "probe", "growth", "grid", "flops", "scan")

# Sizes: "full" fits in about 5 minutes on a quiet 2-core CPU; "quick" is a smoke test.
SIZES = {
    "full": {
        "loop": {"lengths": (50, 200, 1000), "trial_seconds": 0.25, "trials": 8},
        "probe": {"lengths": (100, 1000), "repeats": 5},
        "share": {"share_steps": 200, "repeats": 2},
        "growth": {"lengths": (50, 100, 200, 500, 1000, 2000), "repeats": 3},
        "allocator": {"cell": "lstm", "length": 1000, "rounds": 2, "repeats": 2},
        "flops": {"length": 200, "repeats": 5},
        "scaling": {"repeats": 5},
        "scan": {"repeats": 5},
        "scan_slope": {"lengths": bench_scan.SLOPE_LENGTHS, "repeats": 3},
        "guard": {"length": 1000, "repeats": 2000},
        "denormals": {"length": 2000, "repeats": 3},
    },
    "quick": {
        "loop": {"lengths": (6,), "trial_seconds": 0.005, "trials": 2, "hidden_size": 8},
        "probe": {"lengths": (6,), "repeats": 1, "hidden_size": 8, "cells": ("lstm",)},
        "share": {"share_steps": 3, "repeats": 1, "length": 6},
        "growth": {"lengths": (4, 8), "repeats": 1, "hidden_size": 8, "cells": ("rnn_tanh",)},
        "allocator": {"cell": "lstm", "length": 6, "rounds": 1, "repeats": 1, "hidden_size": 8},
        "flops": {"length": 6, "repeats": 1, "hidden_size": 8, "gemm_n": 32},
        "scaling": {"repeats": 1, "length": 6, "hidden_size": 8, "counts": (1, 2)},
        "scan": {"lengths": (6,), "repeats": 1, "hidden_size": 8},
        "scan_slope": {"lengths": (4, 8), "repeats": 1, "hidden_size": 8},
        "guard": {"length": 6, "hidden_size": 8, "batch_size": 4, "repeats": 10},
        "denormals": {"length": 6, "repeats": 1, "hidden_size": 8},
    },
}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if abs(x) >= 1e-3 else f"{100 * x:.2g}%"  # 0.0048%, not 0.0%


def _loop(device, sizes) -> tuple[dict, list[Figure]]:
    rows = bench_loop.measure(device=device, **sizes["loop"])
    figs = [
        Figure(
            "1 loop",
            f"train_run/bare steps/s {r['cell']} T={r['length']} (A/A {r['noise_aa']:.2f})",
            r["ratio"],
            f">= {bench_loop.GOAL}",
            r["ratio"] >= bench_loop.GOAL,
        )
        for r in rows
    ]
    figs.append(
        Figure(
            "1 loop",
            "make_batch share of a bare step (max)",
            max(r["data_share"] for r in rows),
            "context",
            None,
            "share",
        )
    )
    return {"rows": rows}, figs


def _probe(device, sizes) -> tuple[dict, list[Figure]]:
    rows = bench_probe.measure(device=device, **sizes["probe"])
    share = bench_probe.probe_share(device=device, **sizes["share"])
    g = bench_probe.GOAL
    figs = [
        Figure(
            "2 probe",
            f"probe / step {r['cell']} T={r['length']}",
            r["ratio"],
            f"<= {g:g}x",
            r["ratio"] <= g,
            "x",
        )
        for r in rows
    ]
    where = f"{share['variant']} T={share['length']}"
    figs += [
        Figure(
            "2 probe",
            f"probing share, default run ({share['default_steps']} steps, "
            f"{share['default_probes']} probes; {where})",
            share["default_share"],
            f"<= {_pct(bench_probe.SHARE_GOAL)}",
            share["default_share"] <= bench_probe.SHARE_GOAL,
            "share",
        ),
        Figure(
            "2 probe",
            f"probing share, measured ({share['share_steps']} steps, 2 probes; {where})",
            share["measured_share"],
            "context",
            None,
            "share",
        ),
    ]
    return {"rows": rows, "share": share}, figs


def _growth(device, sizes) -> tuple[dict, list[Figure]]:
    result = bench_growth.measure(device=device, **sizes["growth"])
    lo, hi = bench_growth.GOAL
    figs = []
    for f in result["fits"]:
        span = f"T={f['lengths'][0]}..{f['lengths'][-1]}"
        for key, what in (("time_slope", "step time"), ("peak_slope", "peak memory")):
            v = f[key]
            ok = None if math.isnan(v) else lo <= v <= hi
            figs.append(
                Figure("3 growth", f"{what} slope {f['cell']} {span}", v, "1.0 +/- 0.1", ok)
            )
    if device.type == "cpu":
        a = bench_growth.allocator(**sizes["allocator"])
        result["allocator"] = a
        figs.append(
            Figure(
                "3 growth",
                f"step time, glibc default / keeping freed memory ({a['cell']} T={a['length']})",
                a["speedup"],
                "context: > 1 is page faults",
                None,
                "x",
            )
        )
    return result, figs


def _grid(device, sizes, results, log) -> tuple[dict, list[Figure]]:
    eff = bench_grid.grid_efficiency(results, log)
    scaling = bench_grid.thread_scaling(**sizes["scaling"])
    if eff["measured"]:
        figs = [
            Figure(
                "4 grid",
                f"scheduling efficiency, {eff['cores']} cores ({eff['finished']} jobs)",
                eff["efficiency"],
                f">= {bench_grid.GOAL}",
                eff["efficiency"] >= bench_grid.GOAL,
            ),
            Figure(
                "4 grid", "occupancy (core-seconds held by jobs)", eff["occupancy"], "context", None
            ),
            Figure(
                "4 grid",
                "job CPU s per wall s per thread (median)",
                eff["cpu_per_wall_median"],
                "context",
                None,
            ),
        ]
        ok = eff["threads_ok"]
        checked = (
            "not recorded (summaries predate torch_threads)"
            if ok is None
            else ("equal" if ok else f"{len(eff['thread_mismatches'])} mismatch(es)")
        )
        figs.append(
            Figure(
                "4 grid",
                f"torch threads vs Snakemake threads; peak {eff['max_concurrent_threads']} threads running",
                checked,
                f"equal; peak <= {eff['cores']}",
                None if ok is None else ok,
            )
        )
    else:
        figs = [
            Figure(
                "4 grid",
                "scheduling efficiency",
                f"not measured ({eff['reason']})",
                f">= {bench_grid.GOAL}",
                None,
            )
        ]
    for r in scaling["rows"][1:]:
        figs.append(
            Figure(
                "4 grid",
                f"grid throughput at {r['threads']} threads/job vs 1 ({r['cell']} T={r['length']})",
                r["throughput"],
                "context: > 1 favours more threads",
                None,
            )
        )
    return {"efficiency": eff, "scaling": scaling}, figs


def _flops(device, sizes) -> tuple[dict, list[Figure]]:
    r = bench_flops.measure(device=device, **sizes["flops"])
    where = f"{r['threads']} thread" if r["device"] == "cpu" else r["device"]
    figs = [
        Figure(
            "5 flops",
            f"LSTM step T={r['length']} achieved GFLOP/s",
            r["achieved_gflops"],
            "context",
            None,
        ),
        Figure(
            "5 flops",
            f"GEMM peak GFLOP/s (n={r['gemm_n']}, {where})",
            r["gemm_peak_gflops"],
            "context",
            None,
        ),
        Figure("5 flops", "LSTM step / GEMM peak", r["fraction_of_peak"], "context", None, "share"),
        Figure(
            "5 flops",
            "LSTM step / recurrent-size GEMM",
            r["fraction_of_recurrent_gemm"],
            "context",
            None,
            "share",
        ),
    ]
    return r, figs


def _scan(device, sizes) -> tuple[dict, list[Figure]]:
    scan = dict(sizes["scan"])
    if device.type == "cuda" and "lengths" not in scan:
        scan["lengths"] = (1000, 4000)  # cuDNN's sequential steps against log2 T rounds
    rows = bench_scan.measure(device=device, **scan)
    fits = bench_scan.slope(device=device, **sizes["scan_slope"])
    goal = f"<= {bench_scan.GOAL:g}x (goal {bench_scan.STRETCH:g}x)"
    figs = [
        Figure(
            "7 scan",
            f"step / LSTM step {r['cell']} {r['method']} T={r['length']}",
            r["ratio"],
            goal if (judged := r["cell"] != "indrnn" and "auto" in r["method"]) else "context",
            r["ratio"] <= bench_scan.GOAL if judged else None,
            "x",
        )
        for r in rows
    ]
    lo, hi = bench_growth.GOAL
    for f in fits:
        v = f["slope"]
        span = f"T={f['lengths'][0]}..{f['lengths'][-1]}"
        ok = None if math.isnan(v) else lo <= v <= hi
        figs.append(Figure("7 scan", f"step time slope {f['cell']} {span}", v, "1.0 +/- 0.1", ok))
    result = {"rows": rows, "slope": fits}
    if device.type == "cpu":
        g = bench_scan.guard_share(**sizes["guard"])
        result["guard"] = g
        if g is not None:  # None: numba's kernel does not build here (the fallback trains)
            figs.append(
                Figure(
                    "7 scan",
                    f"mingru input checks / training step (T={g['length']})",
                    g["share"],
                    f"<= {bench_scan.GUARD_GOAL:.0%}",
                    g["share"] <= bench_scan.GUARD_GOAL,
                    "share",
                )
            )
        d = bench_scan.denormals(device=device, **sizes["denormals"])
        result["denormals"] = d
        figs.append(
            Figure(
                "7 scan",
                f"lru step, subnormals kept / flushed (T={d['length']})",
                d["slowdown"],
                "context: > 1 is subnormal arithmetic",
                None,
                "x",
            )
        )
    return result, figs


def _fmt(f: Figure) -> str:
    v = f.value
    if isinstance(v, str) or v is None:
        return str(v)
    if f.unit == "share":
        return _pct(v)
    if f.unit == "x":
        return f"{v:.2f}x"
    return f"{v:.3g}" if abs(v) >= 10 else f"{v:.3f}"


def _table(figures: list[Figure]) -> str:
    """One line per figure: section, figure, value, goal, met (text values on their own)."""
    width = max(len(f.name) for f in figures)
    lines = [f"{'':8} {'figure':{width}}  {'value':>9}  {'goal':14} met"]
    for f in figures:
        mark = {True: "ok", False: "MISSED", None: "-"}[f.met]
        if isinstance(f.value, str):
            lines.append(f"{f.section:8} {f.name:{width}}  {'':>9}  {f.goal:14} {mark}")
            lines.append(f"{'':8} {'':{width}}  -> {f.value}")
        else:
            lines.append(f"{f.section:8} {f.name:{width}}  {_fmt(f):>9}  {f.goal:14} {mark}")
    return "\n".join(lines)


@training_numerics
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="toy sizes: every code path, fast")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--grid-results", default=str(ROOT / "results"), help="a finished grid's results folder"
    )
    parser.add_argument("--grid-log", default=None, help="its Snakemake log (default: the latest)")
    parser.add_argument("--out", default=str(ROOT / "results" / "bench" / "bench.json"))
    args = parser.parse_args(argv)

    device = device_of(args.device)
    sizes = SIZES["quick" if args.quick else "full"]
    info = machine(device)
    start, load_before = time.perf_counter(), load()
    print(
        f"rnngrad benchmarks on {info['cpu']} ({info['cores']} cores), torch {info['torch']}, "
        f"device {info['device']} ({info['device_name']}); cuda: {info['cuda']}; "
        f"load {load_before}",
        flush=True,
    )
    runners = {
        "loop": lambda: _loop(device, sizes),
        "probe": lambda: _probe(device, sizes),
        "growth": lambda: _growth(device, sizes),
        "grid": lambda: _grid(device, sizes, args.grid_results, args.grid_log),
        "flops": lambda: _flops(device, sizes),
        "scan": lambda: _scan(device, sizes),
    }
    sections, figures = {}, []
    for name in args.only:
        t0 = time.perf_counter()
        result, figs = runners[name]()
        seconds = time.perf_counter() - t0
        sections[name] = {"result": result, "seconds": seconds, "load_after": load()}
        figures += figs
        print(f"  {name}: {seconds:.0f} s, load {load()}", file=sys.stderr, flush=True)
    figures.append(
        Figure(
            "6 device",
            "device of this run",
            f"{info['device']} ({info['device_name']})",
            "cuda when available",
            None,
        )
    )
    figures.append(
        Figure(
            "6 device",
            "CUDA on this machine",
            info["cuda"],
            "GPU figures recorded beside CPU ones",
            None,
        )
    )
    wall = time.perf_counter() - start
    report = {
        "machine": info,
        "quick": args.quick,
        "load_before": load_before,
        "load_after": load(),
        "wall_seconds": wall,
        "sections": sections,
        "figures": [f.to_dict() for f in figures],
    }
    print(_table(figures))
    print(f"load (1, 5, 15 min) before {load_before}, after {report['load_after']}; {wall:.0f} s")
    write_json(Path(args.out), _plain(report))
    print(f"wrote {args.out}")
    return report


def _plain(obj):
    """JSON-ready: numpy and torch scalars to Python numbers, tuples to lists."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, torch.device):
        return str(obj)
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        return obj.item()
    return obj


if __name__ == "__main__":
    main()
