"""Probe cost: one gradient probe against one fused training step, and a run's share.

A probe (rnngrad.probes.gradient_profile: a float64 copy of the model, step-by-step
unroll, dL/dh_t for every t, one-step Jacobian norms of TRAIN_JAC_EXAMPLES examples, as
during training) against one training step of the fused nn.RNN / nn.LSTM / nn.GRU
(forward, backward, Adam step) on the adding task at the same sequence length, timed
side by side (benchmarks/common.py: clock, alternation, statistic).

`jacobian_cost`: a probe with K Jacobian examples against one with a single example (the
probe before the per-example bound), side by side; `bound_tightness`: the per-example
tightness (bound / measured ratio) at initialisation at a few distances over seeds.

The share of a default run spent probing: train_run on a run of the default config
(config/config.yaml, adding at its longest T, LSTM: the costliest probe), shortened to
`share_steps` steps with a probe at the start and the end, its probe calls timed inside
the run. The per-probe and per-step costs it yields give the share for the default
schedule: `steps` steps with a probe every `probe_every` steps, and at both ends.

    python -m benchmarks.bench_probe [--repeats 5] [--lengths 100 1000]
    python -m benchmarks.bench_probe --jacobians      (cost of K Jacobian examples, T=1000)
    python -m benchmarks.bench_probe --tightness      (bound / measured at init, T=1000)
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import statistics
import tempfile
from unittest import mock

import numpy as np
import torch

import rnngrad.train
from benchmarks.common import (
    ROOT,
    alternate,
    best_ratio,
    clock,
    device_of,
    grid_parser,
    median_ratio,
    rule_threads,
    sync,
    threads,
    training_numerics,
)
from rnngrad import probes, tasks
from rnngrad.config import GridPoint, load_config, run_spec, train_steps
from rnngrad.models import VariantSpec, build_model
from rnngrad.probes import JAC_EXAMPLES, TRAIN_JAC_EXAMPLES, gradient_profile
from rnngrad.train import train_run

__all__ = [
    "GOAL",
    "SHARE_GOAL",
    "JAC_GOAL",
    "measure",
    "probe_share",
    "jacobian_cost",
    "bound_tightness",
    "main",
]

CELLS = ("rnn_tanh", "lstm", "gru")
LENGTHS = (100, 1000)
GOAL = 3.0  # a probe should cost at most ~3 training steps
SHARE_GOAL = 0.05  # probing takes at most 5% of a default run's wall time
JAC_GOAL = 3.0  # init probes: K Jacobian examples cost at most 3x a one-example probe
DEFAULT_CONFIG = ROOT / "config" / "config.yaml"


def _time_pairs(cell, length, hidden_size, probe_batch, train_batch, repeats, task, jac, device):
    """(step seconds, probe seconds) lists, timed side by side."""
    spec = VariantSpec(cell=cell, hidden_size=hidden_size)
    trained = build_model(spec, task, length=length, seed=0).to(device)
    probed = build_model(spec, task, length=length, seed=0).to(device)
    opt = torch.optim.Adam(trained.parameters(), lr=1e-3)
    x, y = tasks.make_batch(task, length, train_batch, 0, 0, device)
    xp, yp = tasks.make_batch(task, length, probe_batch, 0, 0, device, stream="probe")

    def train_step():
        opt.zero_grad(set_to_none=True)
        tasks.loss(task, trained(x), y).backward()
        opt.step()

    def probe():
        gradient_profile(probed, xp, yp, task, jac_examples=jac)

    train_step(), probe()  # warm-up: allocator, oneDNN / cuDNN primitives
    got = alternate({"step": train_step, "probe": probe}, repeats, device)
    return got["step"], got["probe"]


def measure(
    cells: tuple[str, ...] = CELLS,
    lengths: tuple[int, ...] = LENGTHS,
    hidden_size: int = 64,
    probe_batch: int = 32,
    train_batch: int = 64,
    repeats: int = 5,
    task: str = "adding",
    jac_examples: int | None = TRAIN_JAC_EXAMPLES,
    device: torch.device | None = None,
) -> list[dict]:
    """Time probes and training steps side by side (threads: the train rule's).

    Returns:
        one dict per (cell, length): sizes, train_s and probe_s (fastest repeat, seconds),
        ratio (probe / step, fastest repeats) and ratio_median (of per-repeat ratios).
    """
    device = device or device_of()
    n_threads = rule_threads("train")
    rows = []
    with threads(n_threads):
        for cell in cells:
            for length in lengths:
                step_s, probe_s = _time_pairs(
                    cell,
                    length,
                    hidden_size,
                    probe_batch,
                    train_batch,
                    repeats,
                    task,
                    jac_examples,
                    device,
                )
                rows.append(
                    {
                        "cell": cell,
                        "length": length,
                        "hidden_size": hidden_size,
                        "probe_batch": probe_batch,
                        "train_batch": train_batch,
                        "threads": n_threads,
                        "device": device.type,
                        "jac_examples": jac_examples,
                        "train_s": min(step_s),
                        "probe_s": min(probe_s),
                        "ratio": best_ratio(probe_s, step_s),
                        "ratio_median": median_ratio(probe_s, step_s),
                    }
                )
    return rows


def _default_spec(config, length, cell, device) -> tuple:
    cfg = load_config(config)
    lengths = cfg["train"]["tasks"].get("adding") or [100]
    point = GridPoint("adding", length or max(lengths), cell, 0)
    spec = run_spec(cfg, point, threads=rule_threads("train"))
    return dataclasses.replace(spec, device=device.type), cfg


def probe_share(
    share_steps: int = 200,
    repeats: int = 2,
    config=DEFAULT_CONFIG,
    length: int | None = None,
    cell: str = "lstm",
    device: torch.device | None = None,
) -> dict:
    """Share of a default run's time spent probing, timed inside train_run.

    train_run runs a default-config run shortened to `share_steps` steps with a probe at
    the start and at the end; its probe calls (rnngrad.train._probe: the profile, the
    spectra, their tables) are timed by a wrapper, the whole call from outside, on the
    suite's clock. A difference of two runs (probes on and off) would drown a 1% share
    in this machine's noise; timing the probes themselves does not.

    Returns:
        a dict: the run (task, length, variant, steps, threads), run_s (the whole call)
        and probing_s (fastest repeat), probe_s and step_s (per probe; per step with
        everything else), measured_share (of the shortened run, 2 probes), and
        default_share: the same costs over the default schedule (config steps, a probe
        every probe_every steps and at both ends).
    """
    device = device or device_of()
    spec, cfg = _default_spec(config, length, cell, device)
    short = dataclasses.replace(
        spec, steps=share_steps, probe_every=share_steps, solve_threshold=0.0
    )  # solve_threshold 0: never solved, so the run does all its steps
    now = clock(device)
    inner = rnngrad.train._probe
    probing: list[float] = []

    def timed_probe(*args, **kwargs):
        sync(device)
        start = now()
        inner(*args, **kwargs)
        sync(device)
        probing[-1] += now() - start

    def run() -> tuple[float, float]:
        probing.append(0.0)
        with (
            tempfile.TemporaryDirectory() as tmp,
            contextlib.redirect_stderr(io.StringIO()),
            mock.patch.object(rnngrad.train, "_probe", timed_probe),
            threads(spec.threads),
        ):
            sync(device)
            start = now()
            train_run(short, tmp, probe=True, progress=True)
            sync(device)
            return now() - start, probing[-1]

    runs = [run() for _ in range(repeats)]
    total, probe_total = min(runs)
    n_probes = 2  # at step 0 and at the last step (probe_every = steps)
    probe_s = probe_total / n_probes
    step_s = (total - probe_total) / share_steps
    steps, every = train_steps(cfg, spec.task, spec.length), cfg["train"]["probe_every"]
    # probes at step 0, every `every` steps, and at the last step unless one fell there
    default_probes = 2 if not every else steps // every + 1 + (steps % every != 0)
    default_probe_time = default_probes * probe_s
    return {
        "task": spec.task,
        "length": spec.length,
        "variant": spec.variant,
        "share_steps": share_steps,
        "threads": spec.threads,
        "device": device.type,
        "run_s": total,
        "probing_s": probe_total,
        "probe_s": probe_s,
        "step_s": step_s,
        "probe_over_step": probe_s / step_s,
        "measured_share": probe_total / total,
        "default_steps": steps,
        "default_probe_every": every,
        "default_probes": default_probes,
        "default_share": default_probe_time / (default_probe_time + steps * step_s),
        "median_share": statistics.median(p / t for t, p in runs),
    }


def jacobian_cost(
    cells: tuple[str, ...] = CELLS,
    length: int = 1000,
    hidden_size: int = 64,
    probe_batch: int = 32,
    counts: tuple[int, ...] = (2, 4, 8, 16, 32),
    repeats: int = 3,
    task: str = "adding",
    device: torch.device | None = None,
) -> list[dict]:
    """A probe with K Jacobian examples against the same probe with one, side by side.

    The one-example probe is the probe before the per-example bound (float64, one
    example's Jacobians); its cost is the unroll and backward pass plus T eigenproblems.

    Returns:
        one dict per (cell, K): one_s and probe_s (fastest repeats, seconds), ratio
        (probe / one, fastest repeats), ratio_median (of per-repeat ratios), fits (ratio
        <= JAC_GOAL).
    """
    device = device or device_of()
    rows = []
    with threads(1):
        for cell in cells:
            spec = VariantSpec(cell=cell, hidden_size=hidden_size)
            model = build_model(spec, task, length=length, seed=0).to(device)
            x, y = tasks.make_batch(task, length, probe_batch, 0, 0, device, stream="probe")

            def profile(k, model=model, x=x, y=y):
                return lambda: gradient_profile(model, x, y, task, jac_examples=k)

            for k in counts:
                got = alternate({"one": profile(1), "k": profile(k)}, repeats, device)
                ratio = best_ratio(got["k"], got["one"])
                rows.append(
                    {
                        "cell": cell,
                        "length": length,
                        "hidden_size": hidden_size,
                        "probe_batch": probe_batch,
                        "jac_examples": k,
                        "one_s": min(got["one"]),
                        "probe_s": min(got["k"]),
                        "ratio": ratio,
                        "ratio_median": median_ratio(got["k"], got["one"]),
                        "fits": ratio <= JAC_GOAL,
                    }
                )
    return rows


def bound_tightness(
    cell: str = "rnn_tanh",
    length: int = 1000,
    hidden_size: int = 64,
    probe_batch: int = 32,
    seeds: int = 10,
    distances: tuple[int, ...] = (10, 100, 500, 999),
    jac_examples: int | None = JAC_EXAMPLES,
    task: str = "adding",
    device: torch.device | None = None,
) -> list[dict]:
    """Per-example tightness of the product bound at initialisation, pooled over seeds.

    For each seed: the init probe's model and batch, the per-example measured ratio
    ||dL/dh_t|| / ||dL/dh_r|| and bound (rnngrad.probes); at each distance, the median
    and 90th percentile of bound / measured over every (seed, example), and the share
    of pairs where the bound held.
    """
    device = device or device_of()
    spec = VariantSpec(cell=cell, hidden_size=hidden_size)
    first_read = tasks.get_task(task).first_read(length)
    tight: dict[int, list[np.ndarray]] = {d: [] for d in distances}
    holds: dict[int, list[np.ndarray]] = {d: [] for d in distances}
    with threads(1):
        for seed in range(seeds):
            model = build_model(spec, task, length=length, seed=seed).to(device)
            x, y = tasks.make_batch(task, length, probe_batch, seed, 0, device, stream="probe")
            r = probes._probe(model, x, y, task, jac_examples)
            g = r["grad_h"][:, : r["jac_norm"].shape[1]]
            log_ratio = np.log(g) - np.log(g[first_read])
            for d in distances:
                t = first_read - d
                tight[d].append(np.exp(r["log_bound"][t] - log_ratio[t]))
                bound = r["log_bound"][t] + np.log1p(probes.BOUND_SLACK)
                holds[d].append(log_ratio[t] <= bound)
    rows = []
    for d in distances:
        values = np.concatenate(tight[d])
        rows.append(
            {
                "cell": cell,
                "length": length,
                "distance": d,
                "pairs": int(values.size),
                "tightness_median": float(np.median(values)),
                "tightness_q90": float(np.quantile(values, 0.9)),
                "bound_share": float(np.concatenate(holds[d]).mean()),
            }
        )
    return rows


@training_numerics
def main(argv: list[str] | None = None) -> list[dict]:
    parser = grid_parser(__doc__, CELLS, LENGTHS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--jac-examples", type=int, default=TRAIN_JAC_EXAMPLES)
    parser.add_argument("--jacobians", action="store_true", help="cost of K Jacobian examples")
    parser.add_argument("--tightness", action="store_true", help="the bound's tightness at init")
    args = parser.parse_args(argv)
    device = device_of(args.device)
    if args.jacobians:
        rows = jacobian_cost(repeats=args.repeats, device=device)
        print(f"{'cell':9} {'K':>3} {'one s':>7} {'K s':>7} {'ratio':>6}")
        for r in rows:
            flag = "" if r["fits"] else f"  > {JAC_GOAL:g}x"
            print(
                f"{r['cell']:9} {r['jac_examples']:3d} {r['one_s']:7.2f} {r['probe_s']:7.2f} "
                f"{r['ratio']:5.2f}x{flag}"
            )
        return rows
    if args.tightness:
        rows = bound_tightness(device=device)
        for r in rows:
            print(
                f"{r['cell']} T={r['length']} distance {r['distance']:4d}: bound / measured "
                f"median {r['tightness_median']:.3g}, q90 {r['tightness_q90']:.3g} "
                f"({r['pairs']} pairs, bound held at {100 * r['bound_share']:.1f}%)"
            )
        return rows
    rows = measure(
        tuple(args.cells),
        tuple(args.lengths),
        repeats=args.repeats,
        jac_examples=args.jac_examples,
        device=device,
    )
    print(f"{'cell':9} {'T':>5} {'step ms':>8} {'probe ms':>9} {'ratio':>6}")
    for r in rows:
        flag = "" if r["ratio"] <= GOAL else f"  > {GOAL:g}x goal"
        print(
            f"{r['cell']:9} {r['length']:5d} {1e3 * r['train_s']:8.1f} "
            f"{1e3 * r['probe_s']:9.1f} {r['ratio']:5.2f}x{flag}"
        )
    share = probe_share(device=device)
    print(
        f"probing: {100 * share['measured_share']:.1f}% of a {share['share_steps']}-step run, "
        f"{100 * share['default_share']:.1f}% of a default run (goal <= {100 * SHARE_GOAL:g}%)"
    )
    return rows


if __name__ == "__main__":
    main()
