"""Shared fixtures: a small synthetic results tree with the files training and probes write.

`make_results_tree(root)` writes, for 2 tasks x 2 lengths x 3 variants x 2 seeds,
summary.json, curve.parquet, gradients.parquet, spectra.parquet, horizon.parquet and the Snakemake
benchmark TSVs, plus the init probes (3 seeds each). One run diverges; one stops early
on its evaluation batch but fails its held-out test (unsolved, stopped_early). The numbers
are synthetic but shaped like real ones: exponential gradient profiles under a product
bound that holds for every example, a falling loss, clipped steps where the gradient norm
passes the threshold, statuses decided by the test metric.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnngrad.columns import HORIZON_COLUMNS

TASKS = {"adding": [10, 20], "copy": [10, 20]}
VARIANTS = {
    "lstm": {"cell": "lstm"},
    "rnn": {"cell": "rnn_tanh"},
    "rnn_clip": {"cell": "rnn_tanh", "clip_norm": 1.0},
}
SEEDS = [0, 1]
INIT_SEEDS = [0, 1, 2]
STEPS = 60
EVAL_EVERY = 10
DIVERGED = ("adding", 20, "rnn", 1)
EARLY_UNSOLVED = ("adding", 10, "rnn", 1)  # stopped early on evaluation, failed its test
TEST_SIZE = 2000
JAC_EXAMPLES = 8  # examples behind the bound columns of the vanilla cells' profiles
# per-step decay factor of ||dL/dh_t|| at initialisation, per cell
DECAY = {"lstm": 0.9, "gru": 0.85, "rnn_tanh": 0.5, "rnn_relu": 0.95}
GATES = {"lstm": ["i", "f", "g", "o"], "gru": ["r", "z", "n"], "rnn_tanh": ["h"], "rnn_relu": ["h"]}

CONFIG = {
    "device": "cpu",
    "hidden_size": 16,
    "variants": VARIANTS,
    "train": {
        "tasks": TASKS,
        "seeds": SEEDS,
        "steps": STEPS,
        "batch_size": 8,
        "lr": 0.001,
        "eval_every": EVAL_EVERY,
        "eval_size": 32,
        "final_k": 3,
        "probe_every": 30,
        "probe_batch": 8,
        "checkpoint_every": 30,
    },
    "probes": {"tasks": TASKS, "seeds": len(INIT_SEEDS), "batch_size": 8},
}


def _decay(v: dict) -> float:
    if v.get("constraint", "none") == "orthogonal":
        return 0.97
    base = DECAY[v["cell"]]
    return base**0.3 if v.get("init", "default") in ("orthogonal", "chrono") else base


def _status(task: str, length: int, variant: str, seed: int, variants: dict) -> str:
    if (task, length, variant, seed) == DIVERGED:
        return "diverged"
    if (task, length, variant, seed) == EARLY_UNSOLVED:
        return "unsolved"
    if variant not in VARIANTS:  # larger trees: solved while the gradient survives T steps
        return "solved" if _decay(variants[variant]) ** length * (1 + seed) > 0.05 else "unsolved"
    if variant == "lstm" or (length == 10 and variant == "rnn_clip"):
        return "solved"
    if length == 10 and variant == "rnn" and seed == 0:
        return "solved"
    return "unsolved"


def _profile(task: str, length: int, v: dict, scale: float, rng) -> pd.DataFrame:
    cell = v["cell"]
    seq = length + 20 if task == "copy" else length
    first_read = length + 10 if task == "copy" else length - 1
    t = np.arange(seq)
    distance = first_read - t
    grad = scale * _decay(v) ** np.clip(distance, 0, None)
    grad = grad * np.exp(rng.normal(0, 0.05, size=seq))
    jac = np.full(seq, _decay(v) * 1.2)
    # the bound on ||dL/dh_t|| / ||dL/dh_r|| (r the first read): 1 at r, NaN after it; none
    # for the LSTM (its h is not its whole state); it holds for every example
    no_bound = cell == "lstm"
    reading = distance >= 0
    bound = np.nan if no_bound else np.where(reading, (_decay(v) * 1.2) ** distance, np.nan)
    tightness = np.nan if no_bound else np.where(reading, 1.2**distance, np.nan)
    return pd.DataFrame(
        {
            "t": t,
            "distance": distance,
            "grad_h": grad,
            "grad_h_q1": grad * 0.8,
            "grad_h_q3": grad * 1.25,
            "grad_c": grad * 1.1 if cell == "lstm" else np.nan,
            "grad_c_q1": grad * 0.9 if cell == "lstm" else np.nan,
            "grad_c_q3": grad * 1.3 if cell == "lstm" else np.nan,
            "jac_norm": jac,
            "bound": bound,
            "bound_holds": np.nan if no_bound else np.where(reading, 1.0, np.nan),
            "tightness": tightness,
            "tightness_q90": tightness * 1.1,
            "bound_examples": np.where(reading & (not no_bound), JAC_EXAMPLES, 0),
        }
    )


def _test_values(task, length, seed, status, baseline, early) -> tuple:
    """(test_metric, test_loss) on the held-out batch: they decide the status."""
    if status == "diverged":
        return None, None
    u = np.random.default_rng([length, seed, 99]).random()
    if task == "adding":  # mse, solved below 0.01
        mse = {"solved": 0.004 * (1 + 0.2 * u), "unsolved": baseline * 0.9 * (1 + 0.05 * u)}
        mse = 0.015 if early and status == "unsolved" else mse[status]
        return mse, mse
    accuracy = 0.995 + 0.004 * u if status == "solved" else 0.2 + 0.05 * u  # solved >= 0.99
    return accuracy, baseline * (0.02 if status == "solved" else 0.9)


def _write_run(
    root: Path, task: str, length: int, variant: str, seed: int, variants: dict, n_steps: int
) -> None:
    rng = np.random.default_rng([length, seed, len(variant), len(task)])
    v = {"init": "default", "constraint": "none", "clip_norm": None, "hidden_size": 16, "lr": None}
    v.update(variants[variant])
    status = _status(task, length, variant, seed, variants)
    out = root / "runs" / task / f"T{length}" / variant / f"seed{seed}"
    out.mkdir(parents=True, exist_ok=True)

    early = status == "solved" or (task, length, variant, seed) == EARLY_UNSOLVED
    steps = n_steps if not early else int(n_steps * (0.6 + 0.15 * seed))
    if status == "diverged":
        steps = int(n_steps * 0.4)
    step = np.arange(steps)
    baseline = 1 / 6 if task == "adding" else 10 * math.log(8) / (length + 20)
    final_frac = 0.02 if early else 0.9
    frac = final_frac + (1 - final_frac) * np.exp(-step / (n_steps / 8))
    loss = baseline * frac * np.exp(rng.normal(0, 0.05, steps))
    if status == "diverged":
        loss[-1] = np.nan
    is_eval = (step % EVAL_EVERY == 0) | (step == steps - 1)
    eval_loss = np.where(is_eval, baseline * frac, np.nan)
    metric = eval_loss if task == "adding" else np.where(is_eval, 1 - 0.875 * frac, np.nan)
    if status == "diverged":
        eval_loss[-1] = metric[-1] = np.nan
    grad_norm = np.exp(rng.normal(0, 0.7, steps)) * (3.0 if variant.startswith("rnn") else 0.5)
    if status == "diverged":
        grad_norm[-3:] = [50.0, 1e4, np.inf]
    clip = v["clip_norm"]
    curve = pd.DataFrame(
        {
            "step": step,
            "loss": loss,
            "metric": metric,
            "eval_loss": eval_loss,
            "grad_norm": grad_norm,
            "clipped": grad_norm > clip if clip else np.zeros(steps, bool),
            "elapsed": (step + 1) * 0.01 * length / 10,
        }
    )
    curve.to_parquet(out / "curve.parquet", index=False)

    probe_steps = [0, n_steps // 2, n_steps - 1]
    probes = [p for p in probe_steps if p < steps] if status != "diverged" else [0]
    grads = []
    spectra = []
    for p in probes:
        prof = _profile(task, length, v, 1.0 + p / n_steps, rng)
        prof.insert(0, "probe_step", p)
        grads.append(prof)
        for gate in GATES[v["cell"]]:
            spectra.append(
                {
                    "probe_step": p,
                    "gate": gate,
                    "spectral_norm": 1.0 + 0.6 * p / n_steps + 0.1 * rng.random(),
                    "spectral_radius": 0.8 + 0.3 * p / n_steps + 0.05 * rng.random(),
                }
            )
    pd.concat(grads, ignore_index=True).to_parquet(out / "gradients.parquet", index=False)
    pd.DataFrame(spectra).to_parquet(out / "spectra.parquet", index=False)
    # the final model at the grid's longest length (a diverged run has none)
    common = max(TASKS[task])
    horizon = (
        _profile(task, common, v, 1.0 + steps / n_steps, rng) if status != "diverged" else None
    )
    if horizon is None:
        horizon = pd.DataFrame({c: pd.Series(dtype=float) for c in HORIZON_COLUMNS})
    else:
        horizon.insert(0, "probe_length", common)
        horizon.insert(0, "probe_step", steps)
    horizon[list(HORIZON_COLUMNS)].to_parquet(out / "horizon.parquet", index=False)

    evals = metric[np.isfinite(metric)][-3:]
    losses = eval_loss[np.isfinite(eval_loss)][-3:]
    final_loss = float(losses.mean())
    wall = float(curve["elapsed"].iloc[-1])
    test_metric, test_loss = _test_values(task, length, seed, status, baseline, early)
    summary = {
        "task": task,
        "length": length,
        "variant": variant,
        "seed": seed,
        **v,
        "lr": 0.001,
        "status": status,
        "metric_name": "mse" if task == "adding" else "accuracy",
        "solve_threshold": 0.01 if task == "adding" else 0.99,
        "test_size": TEST_SIZE,
        "test_metric": test_metric,
        "test_loss": test_loss,
        "test_loss_ratio": test_loss / baseline if test_loss is not None else None,
        "stopped_early": early,
        "final_metric": float(evals.mean()) if status != "diverged" else None,
        "best_metric": float(evals.min() if task == "adding" else evals.max()),
        "final_k": 3,
        "evaluations": int(np.isfinite(metric).sum()),
        "final_loss": final_loss if status != "diverged" else None,
        "baseline_loss": baseline,
        "loss_ratio": final_loss / baseline if status != "diverged" else None,
        "steps_to_solve": steps - 1 if early else None,
        "diverged_at": steps - 1 if status == "diverged" else None,
        "steps_done": steps,
        "wall_seconds": wall,
        "steps_per_second": steps / wall,
        "resumed_from": None,
        "device": "cpu",
        "device_name": "cpu",
        "tf32": False,
        "threads": 1,
        "torch_version": "2.13.0+cpu",
        "git_commit": "0123456789abcdef0123456789abcdef01234567",
        "config_hash": "abcdef123456",
        "spec": {"task": task, "length": length, "variant": variant, "model": v, "seed": seed},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))

    bench = root / "benchmarks" / "train" / task / f"T{length}" / variant / f"seed{seed}.tsv"
    bench.parent.mkdir(parents=True, exist_ok=True)
    bench.write_text(
        "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
        f"{wall + 1.5:.4f}\t0:00:0{int(wall)}\t{300 + length:.2f}\t900.1\t280.0\t285.0\t0.1\t"
        f"0.2\t95.0\t{wall * 0.95:.2f}\n"
    )


def make_results_tree(
    root: str | Path,
    tasks: dict = TASKS,
    variants: dict = VARIANTS,
    seeds: list = SEEDS,
    steps: int = STEPS,
) -> dict:
    """Write the synthetic results tree under `root`; return its config mapping.

    The defaults make the small tree of the tests; larger arguments make a tree for
    looking at the figures at the size of the default grid.
    """
    root = Path(root)
    for task, lengths in tasks.items():
        for length in lengths:
            for variant in variants:
                for seed in seeds:
                    _write_run(root, task, length, variant, seed, variants, steps)
                rng = np.random.default_rng([length, len(variant), len(task), 7])
                v = {"init": "default", "constraint": "none", **variants[variant]}
                frames = []
                for seed in INIT_SEEDS:
                    prof = _profile(task, length, v, 1.0, rng)
                    for i, (k, val) in enumerate(
                        {"task": task, "length": length, "variant": variant, "seed": seed}.items()
                    ):
                        prof.insert(i, k, val)
                    frames.append(prof)
                path = root / "probes" / task / f"T{length}" / f"{variant}.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                pd.concat(frames, ignore_index=True).to_parquet(path, index=False)
    config = json.loads(json.dumps(CONFIG))
    config["variants"] = json.loads(json.dumps(variants))
    config["train"].update(tasks=tasks, seeds=seeds, steps=steps)
    config["probes"]["tasks"] = tasks
    return config


@pytest.fixture(scope="session")
def results_tree(tmp_path_factory) -> tuple[Path, dict]:
    """(results_dir, config) of a synthetic results tree shared by the session."""
    root = tmp_path_factory.mktemp("results")
    return root, make_results_tree(root)


@pytest.fixture(scope="session")
def tables_dir(results_tree, tmp_path_factory) -> Path:
    """The aggregated tables of `results_tree`, written once per session."""
    from rnngrad.aggregate import aggregate

    root, config = results_tree
    out = root / "tables"
    aggregate(root, out, config)
    return out


@pytest.fixture(scope="session")
def figures_dir(results_tree, tables_dir) -> Path:
    """Every figure of FIGURES made from `tables_dir`, written once per session."""
    import matplotlib

    matplotlib.use("Agg")
    from rnngrad.figures import FIGURES, make_figure

    root, config = results_tree
    out = root / "figures"
    for name in FIGURES:
        make_figure(name, tables_dir, out / name, config)
    return out


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """The whole DAG on config/smoke.yaml, run once per session in a scratch copy."""
    from tests.workflow_helpers import copy_workflow, snakemake

    workdir = copy_workflow(tmp_path_factory.mktemp("smoke"))
    snakemake(
        workdir,
        "--configfile",
        "config/smoke.yaml",
        "--workflow-profile",
        "workflow/profiles/default",
    )
    return workdir
