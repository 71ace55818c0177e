"""Scheduling efficiency of a grid whose train jobs are checkpoints of several seeds each."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from benchmarks.bench_grid import grid_efficiency, parse_log

T0 = datetime(2026, 12, 1, 9, 0, 0)
HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
SEEDS = (0, 1, 2)
# (jobid, kind, rule, benchmark, start s, end s, sampled cpu s, own cpu s or None)
# 2 cores, makespan 100 s. The first train job ran 100 s: Snakemake's sampler saw 70 s of
# its CPU time (the last sample 30 s before the end), the job counted 96 s itself.
JOBS = [
    (1, "checkpoint", "train", "train/adding/T10/lstm.tsv", 0, 100, 70.0, 96.0),
    (2, "checkpoint", "train", "train/adding/T10/rnn.tsv", 0, 40, 39.0, 38.0),
    (3, "rule", "probe_init", "probe_init/rnn.tsv", 40, 98, 57.0, None),
    (4, "rule", "aggregate", None, 98, 100, None, None),
]


def _stamp(seconds: float) -> str:
    return f"[{(T0 + timedelta(seconds=seconds)).strftime('%a %b %d %H:%M:%S %Y')}]"


def _grid(root: Path, threads: dict | None = None) -> Path:
    lines = ["Provided cores: 2"]
    events = []
    for jobid, kind, rule, bench, start, end, sampled, own in JOBS:
        block = [_stamp(start), f"local{kind} {rule}:", "    output: x", f"    jobid: {jobid}"]
        if bench is not None:
            path = root / "results" / "benchmarks" / bench
            block.append(f"    benchmark: {path.relative_to(root)}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                HEADER + f"{end - start}\t0:01:40\t300\t900\t280\t285\t0\t0\t90\t{sampled}\n"
            )
            os.utime(path, ((T0 + timedelta(seconds=end)).timestamp(),) * 2)
            if own is not None:
                path.with_suffix(".usage.json").write_text(json.dumps({"cpu_seconds": own}))
        if rule == "train":
            task, length, variant = bench.removesuffix(".tsv").split("/")[1:]
            for seed in SEEDS:
                run = root / "results" / "runs" / task / length / variant / f"seed{seed}"
                run.mkdir(parents=True, exist_ok=True)
                n = (threads or {}).get((variant, seed), 1)
                run.joinpath("summary.json").write_text(json.dumps(
                    {"task": task, "length": int(length[1:]), "variant": variant, "seed": seed,
                     "threads": n, "torch_threads": n}))  # fmt: skip
        events.append((start, 0, block))
        events.append((end, 1, [_stamp(end), f"Finished jobid: {jobid} (Rule: {rule})"]))
    for _, _, block in sorted(events, key=lambda e: (e[0], -e[1])):
        lines += block
    log = root / ".snakemake" / "log" / "2026-12-01T090000.000000.snakemake.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("\n".join(lines) + "\n")
    return root / "results"


def test_checkpoint_jobs_are_read_from_the_log(tmp_path):
    _grid(tmp_path)
    cores, jobs = parse_log(next((tmp_path / ".snakemake" / "log").glob("*.log")))
    assert cores == 2
    assert sorted((j.jobid, j.rule) for j in jobs) == [
        (1, "train"), (2, "train"), (3, "probe_init"), (4, "aggregate"),
    ]  # fmt: skip
    assert all(j.end is not None for j in jobs)


def test_cpu_is_the_larger_of_the_sampled_and_the_own_count(tmp_path):
    eff = grid_efficiency(_grid(tmp_path))
    assert eff["measured"] and eff["makespan_s"] == pytest.approx(100)
    # max(70, 96) + max(39, 38) + 57 (no own count) + 2 (aggregate: wall, assumed busy)
    assert eff["cpu_s"] == pytest.approx(96 + 39 + 57 + 2)
    assert eff["cpu_s_benchmark_files"] == pytest.approx(70 + 39 + 57 + 2)
    assert eff["efficiency"] == pytest.approx(194 / 200)
    assert eff["efficiency_benchmark_files"] == pytest.approx(168 / 200)
    assert eff["jobs_with_own_cpu_count"] == 2 and eff["cpu_s_assumed"] == pytest.approx(2)
    assert eff["rules"] == {"aggregate": 1, "probe_init": 1, "train": 2}


def test_thread_check_covers_every_seed_of_a_train_job(tmp_path):
    eff = grid_efficiency(_grid(tmp_path / "ok"))
    assert eff["threads_ok"] is True and eff["summaries"] == 6
    bad = grid_efficiency(_grid(tmp_path / "bad", threads={("lstm", 2): 2}))
    assert bad["threads_ok"] is False
    assert any("lstm.tsv seed 2: Snakemake 1, summary 2" in m for m in bad["thread_mismatches"])
