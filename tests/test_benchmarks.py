"""The benchmark suite's code paths, at toy sizes: structure only, never timings."""

from __future__ import annotations

import json
import math
import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import torch

from benchmarks import __main__ as suite
from benchmarks.bench_flops import lstm_step_flops
from benchmarks.bench_grid import grid_efficiency, parse_log
from benchmarks.bench_growth import fit_slope
from rnngrad.mingru_scan import native_available

T0 = datetime(2026, 11, 27, 8, 32, 50)
TSV_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
# (jobid, rule, run, start s, end s, cpu s): 2 cores, makespan 100 s, 190 CPU s
JOBS = [
    (1, "train", ("adding", 10, "lstm", 0), 0, 100, 90.0),
    (2, "train", ("adding", 10, "rnn", 0), 0, 50, 50.0),
    (3, "probe_init", None, 50, 100, None),
]


def _stamp(seconds: float) -> str:
    return f"[{(T0 + timedelta(seconds=seconds)).strftime('%a %b %d %H:%M:%S %Y')}]"


def _bench_path(run) -> str:
    task, length, variant, seed = run
    return f"results/benchmarks/train/{task}/T{length}/{variant}/seed{seed}.tsv"


def _write_grid(workdir: Path, torch_threads: dict | None = None, log: bool = True) -> Path:
    """A finished two-core grid: Snakemake's log, benchmark files and summaries."""
    lines = ["Provided cores: 2", "Rules claiming more threads will be scaled down."]
    events = []
    for jobid, rule, run, start, end, cpu in JOBS:
        block = [_stamp(start), f"localrule {rule}:", "    output: x", f"    jobid: {jobid}"]
        if run is not None:
            block.append(f"    benchmark: {_bench_path(run)}")
            tsv = workdir / _bench_path(run)
            tsv.parent.mkdir(parents=True, exist_ok=True)
            tsv.write_text(
                TSV_HEADER + f"{end - start}\t0:01:40\t300\t900\t280\t285\t0\t0\t90\t{cpu}\n"
            )
            os.utime(tsv, (T0.timestamp() + end,) * 2)
            task, length, variant, seed = run
            summary = workdir / f"results/runs/{task}/T{length}/{variant}/seed{seed}/summary.json"
            summary.parent.mkdir(parents=True, exist_ok=True)
            record = dict(zip(("task", "length", "variant", "seed"), run, strict=True), threads=1)
            if torch_threads is not None:
                record["torch_threads"] = torch_threads.get(run[2], 1)
            summary.write_text(json.dumps(record))
        block.append("    resources: tmpdir=/tmp")
        events.append((start, 0, block))
        events.append((end, 1, [_stamp(end), f"Finished jobid: {jobid} (Rule: {rule})"]))
    for _, _, block in sorted(events, key=lambda e: (e[0], -e[1])):
        lines += block
    if log:
        path = workdir / ".snakemake" / "log" / "2026-11-27T083245.000000.snakemake.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
    return workdir / "results"


def test_grid_efficiency_from_the_log_and_benchmark_files(tmp_path):
    results = _write_grid(tmp_path, torch_threads={"lstm": 1, "rnn": 1})
    cores, jobs = parse_log(next((tmp_path / ".snakemake" / "log").glob("*.log")))
    assert cores == 2 and sorted(j.jobid for j in jobs) == [1, 2, 3]
    assert all(j.end is not None and not j.failed for j in jobs)

    eff = grid_efficiency(results)
    assert eff["measured"] and eff["cores"] == 2 and eff["finished"] == 3
    assert eff["makespan_s"] == pytest.approx(100)
    # train CPU from the benchmark files (90 + 50), probe_init counted busy (50)
    assert eff["cpu_s"] == pytest.approx(190) and eff["cpu_s_assumed"] == pytest.approx(50)
    assert eff["efficiency"] == pytest.approx(190 / 200)
    assert eff["occupancy"] == pytest.approx(1.0)
    assert eff["cpu_per_wall_median"] == pytest.approx(0.95)
    assert eff["max_concurrent_threads"] == 2 and not eff["oversubscribed"]
    assert eff["threads_ok"] is True and eff["torch_threads_recorded"] == 2


def test_grid_thread_check_catches_a_mismatch_and_old_summaries(tmp_path):
    eff = grid_efficiency(_write_grid(tmp_path / "a", torch_threads={"rnn": 2}))
    assert eff["threads_ok"] is False
    assert any("torch 2" in m for m in eff["thread_mismatches"])
    assert grid_efficiency(_write_grid(tmp_path / "b"))["threads_ok"] is None  # not recorded


def test_grid_efficiency_without_a_log_or_without_benchmarks(tmp_path):
    eff = grid_efficiency(_write_grid(tmp_path / "a", log=False), cores=2)
    assert eff["measured"] and "benchmark files" in eff["source"] and eff["cores"] == 2
    assert eff["makespan_s"] == pytest.approx(100) and eff["cpu_s"] == pytest.approx(140)
    missing = grid_efficiency(tmp_path / "none" / "results")
    assert missing["measured"] is False and "no benchmark files" in missing["reason"]


def test_slope_fit_and_flop_count():
    assert fit_slope([50, 100, 200], [3.0, 6.0, 12.0]) == pytest.approx(1.0)
    assert fit_slope([50, 100], [1.0, 4.0]) == pytest.approx(2.0)
    assert math.isnan(fit_slope([50], [1.0]))
    # forward: B (T * 2 (I + H) 4H + 2 H O); a step counts 3x the forward products
    assert lstm_step_flops(10, 2, 4, inputs=2, outputs=1) == 3 * 2 * (10 * 2 * 6 * 16 + 8)


def test_the_suite_runs_every_section_and_writes_every_figure(tmp_path, capsys):
    results = _write_grid(tmp_path / "grid", torch_threads={"lstm": 1, "rnn": 1})
    out = tmp_path / "bench" / "bench.json"
    suite.main(["--quick", "--device", "cpu", "--grid-results", str(results), "--out", str(out)])

    report = json.loads(out.read_text())
    assert report["quick"] is True
    assert set(report["sections"]) == set(suite.SECTIONS)
    assert report["machine"]["cuda"]  # "not available here" or the GPU's name
    assert report["machine"]["device"] == "cpu" and report["load_before"] is not None
    figures = report["figures"]
    assert {f["section"].split()[0] for f in figures} == {"1", "2", "3", "4", "5", "6", "7"}
    for f in figures:
        assert set(f) == {"section", "name", "value", "goal", "met", "unit"}
        assert f["goal"] and f["met"] in (True, False, None)
    numbers = [f["value"] for f in figures if f["section"].startswith(("1", "2", "5"))]
    assert numbers and all(isinstance(v, float) and math.isfinite(v) for v in numbers)
    grid = report["sections"]["grid"]["result"]["efficiency"]
    assert grid["efficiency"] == pytest.approx(0.95) and grid["threads_ok"] is True
    growth = report["sections"]["growth"]["result"]
    assert {"time_slope", "peak_slope", "saved_slope"} <= set(growth["fits"][0])
    assert growth["allocator"]["default_s"] > 0 and growth["allocator"]["keep_freed_s"] > 0
    guard = report["sections"]["scan"]["result"]["guard"]
    if native_available(torch.float32):  # the checks in front of minGRU's kernel, timed
        assert 0 < guard["check_s"] < guard["step_s"] and 0 < guard["sizes_s"] < guard["step_s"]
        share = 2 * (guard["check_s"] + guard["sizes_s"]) / guard["step_s"]
        assert guard["share"] == pytest.approx(share)
        assert any(f["name"].startswith("mingru input checks") for f in figures)
    else:
        assert guard is None

    printed = capsys.readouterr().out
    for f in figures:  # every figure printed with its goal beside it
        line = next(
            x for x in printed.splitlines() if x.startswith(f["section"]) and f["name"] in x
        )
        assert f["goal"] in line
