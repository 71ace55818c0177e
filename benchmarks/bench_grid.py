"""Scheduling of the grid: efficiency under `snakemake --cores N`, threads, and thread scaling.

efficiency (from a finished results folder): the CPU seconds the jobs did, over the
core-seconds the run held, (sum of job CPU seconds) / (N * makespan); 1.0 when every
core worked all the time. Job start and end times come from Snakemake's log
(.snakemake/log/*.snakemake.log beside the results folder: "[time]" then "rule X:",
"checkpoint X:" or "Finished jobid: N"), CPU seconds from the rule's `benchmark:` files
(cpu_time) and, where a job wrote one, its own count beside the file (X.usage.json,
getrusage of the job's process): Snakemake samples a job's CPU time every 0.5 s for its
first 15 s, then every 30 s, and keeps the last sample, so a benchmark file misses up to
30 s at the end of every job longer than 15 s. Both are lower bounds of the job's CPU
time (the own count misses the interpreter's exit); the larger one counts, and
efficiency_benchmark_files gives the figure from the benchmark files alone. A job with
neither (aggregate, figure, report) counts its wall time times its threads, as if it
kept its cores busy. Without a log, the benchmark files alone: each job ends when its
file was written (mtime) and began `s` seconds before.

Two further numbers separate the scheduler from the machine: occupancy, the share of
core-seconds held by running jobs (the scheduler's part), and cpu_per_wall, a job's CPU
seconds per wall second per thread (the machine's part: below 1 the job waited for a
CPU, other load; above 1 it used more cores than Snakemake gave it, oversubscription).

threads: every run's summary.json records the threads Snakemake gave the job and the
threads torch used (torch_threads); they must be equal, and the threads of the jobs
running at any moment must never add up to more than N.

thread scaling: wall time of one training step at 1, 2, ... torch threads, in turn. With
at least as many jobs as cores, k threads per job beat one only if k threads run a step
more than k times faster: the grid's throughput at k threads per job, relative to one,
is speedup(k) / k.

    python -m benchmarks.bench_grid [--grid-results results] [--grid-log FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
import torch

from benchmarks.common import alternate, rule_threads, threads, training_numerics
from rnngrad import tasks
from rnngrad.models import VariantSpec, build_model

__all__ = ["GOAL", "Job", "grid_efficiency", "parse_log", "thread_scaling"]

GOAL = 0.9
_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
_RULE = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$")
_FINISHED = re.compile(r"^Finished jobid: (\d+)")
_ERROR = re.compile(r"^Error in rule (\w+):$")
_FIELD = re.compile(r"^\s+(jobid|benchmark|threads|wildcards): (.*)$")
_CORES = re.compile(r"^Provided cores: (\d+)")
_JOB = re.compile(r"(?P<task>\w+)/T(?P<length>\d+)/(?P<variant>\w+)(?:/seed(?P<seed>\d+))?\.tsv$")


@dataclass
class Job:
    """One job of a Snakemake run: times are seconds since the epoch."""

    jobid: int
    rule: str
    start: float
    end: float | None = None
    threads: int = 1
    benchmark: str | None = None
    failed: bool = False


def parse_log(path: str | Path) -> tuple[int | None, list[Job]]:
    """(cores, jobs) of one Snakemake log; a job still running has end None."""
    cores, jobs, stamp = None, {}, None
    current: Job | None = None
    error: bool = False
    for line in Path(path).read_text(errors="replace").splitlines():
        if m := _CORES.match(line):
            cores = int(m.group(1))
        elif m := _STAMP.match(line):
            stamp = datetime.strptime(" ".join(m.group(1).split()), "%a %b %d %H:%M:%S %Y")
            stamp, current, error = stamp.timestamp(), None, False
        elif (m := _RULE.match(line)) and stamp is not None:
            current = Job(jobid=-1, rule=m.group(1), start=stamp)
        elif (m := _FINISHED.match(line)) and stamp is not None:
            if (job := jobs.get(int(m.group(1)))) is not None:
                job.end = stamp
        elif _ERROR.match(line):
            error = True
        elif m := _FIELD.match(line):
            key, value = m.groups()
            if key == "jobid" and error and (job := jobs.get(int(value))) is not None:
                job.end, job.failed = stamp, True
            elif current is not None and key == "jobid":
                current.jobid = int(value)
                jobs[current.jobid] = current
            elif current is not None and key == "threads":
                current.threads = int(value)
            elif current is not None and key == "benchmark":
                current.benchmark = value.strip()
    return cores, list(jobs.values())


def _read_tsv(path: Path) -> dict | None:
    """s, cpu_time (the benchmark file's) and cpu_s (the larger of it and the job's own count)."""
    try:
        row = pd.read_csv(path, sep="\t").iloc[0]
        out = {"s": float(row["s"]), "cpu_time": float(row["cpu_time"])}
    except (OSError, KeyError, IndexError, ValueError, pd.errors.ParserError):
        return None
    if out["cpu_time"] != out["cpu_time"]:  # NA: the job ended before the first sample
        out["cpu_time"] = 0.0
    out["cpu_s"], out["own"] = out["cpu_time"], None
    try:
        own = float(json.loads(path.with_suffix(".usage.json").read_text())["cpu_seconds"])
        out["cpu_s"], out["own"] = max(out["cpu_time"], own), own
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return out


def _jobs_from_benchmarks(root: Path) -> list[Job]:
    jobs = []
    for i, path in enumerate(sorted((root / "benchmarks").rglob("*.tsv"))):
        if (tsv := _read_tsv(path)) is not None:
            end = path.stat().st_mtime
            rel = str(path.relative_to(root.parent))
            jobs.append(
                Job(
                    i,
                    path.relative_to(root / "benchmarks").parts[0],
                    end - tsv["s"],
                    end,
                    benchmark=rel,
                )
            )
    return jobs


def _find_log(root: Path) -> Path | None:
    """The latest Snakemake log beside the results folder that started a job."""
    logs = sorted((root.parent / ".snakemake" / "log").glob("*.snakemake.log"))
    for log in reversed(logs):
        if parse_log(log)[1]:
            return log
    return None


def _summaries(root: Path) -> dict[tuple, dict]:
    out = {}
    for path in (root / "runs").rglob("summary.json"):
        try:
            s = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        out[(s.get("task"), s.get("length"), s.get("variant"), s.get("seed"))] = s
    return out


def _job_runs(benchmark: str | None, summaries: dict[tuple, dict]) -> list[dict]:
    """The summaries of the runs a train job trained (one, or every seed of its cell)."""
    m = _JOB.search(benchmark or "")
    if m is None:
        return []
    cell = (m["task"], int(m["length"]), m["variant"])
    seed = int(m["seed"]) if m["seed"] is not None else None
    return [s for k, s in summaries.items() if k[:3] == cell and seed in (None, k[3])]


def _local_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _max_concurrent(jobs: list[Job]) -> int:
    events = sorted([(j.start, j.threads) for j in jobs] + [(j.end, -j.threads) for j in jobs],
                    key=lambda e: (e[0], e[1]))  # fmt: skip
    running = peak = 0
    for _, delta in events:  # a job ending at the second another starts frees its cores first
        running += delta
        peak = max(peak, running)
    return peak


def grid_efficiency(
    results: str | Path = "results", log: str | Path | None = None, cores: int | None = None
) -> dict:
    """Scheduling efficiency, occupancy, CPU per wall and the thread checks of a finished grid.

    Args:
        results: the results folder of a run (its parent holds .snakemake/).
        log: a Snakemake log; default the latest one beside the results folder.
        cores: N; default the log's "Provided cores", else this machine's cores.

    Returns:
        a dict with measured False and a reason when there is nothing to measure;
        else source, cores, jobs, finished, failed, running, makespan_s, cpu_s (of which
        cpu_s_assumed: jobs without a benchmark file), efficiency, occupancy,
        cpu_s_benchmark_files and efficiency_benchmark_files (Snakemake's sampled CPU
        time alone), jobs_with_own_cpu_count,
        cpu_per_wall (median and max over benchmarked jobs), max_concurrent_threads,
        and the thread check: summaries, torch_threads_recorded, thread_mismatches,
        threads_ok (None when no summary records torch_threads).
    """
    root = Path(results)
    if not any((root / "benchmarks").rglob("*.tsv")):
        return {"measured": False, "reason": f"no benchmark files under {root / 'benchmarks'}"}
    log = Path(log) if log else _find_log(root)
    if log is not None:
        log_cores, jobs = parse_log(log)
        source = f"snakemake log {log}"
    else:
        log_cores, jobs = None, _jobs_from_benchmarks(root)
        source = f"benchmark files under {root / 'benchmarks'} (train jobs only)"
    cores_source = "given" if cores else ("the log" if log_cores else "this machine (no log)")
    cores = cores or log_cores or _local_cores()
    done = [j for j in jobs if j.end is not None]
    if not done:
        return {"measured": False, "reason": f"{source}: no finished job"}
    makespan = max(j.end for j in done) - min(j.start for j in done)
    cpu = assumed = held = sampled = 0.0
    per_wall = []
    own_counts = 0
    for j in done:
        wall = j.end - j.start
        held += wall * j.threads
        tsv = _read_tsv(root.parent / j.benchmark) if j.benchmark and not j.failed else None
        if tsv is None:
            cpu += wall * j.threads
            sampled += wall * j.threads
            assumed += wall * j.threads
        else:
            cpu += tsv["cpu_s"]
            sampled += tsv["cpu_time"]
            own_counts += tsv["own"] is not None
            if tsv["s"] > 0:
                per_wall.append(tsv["cpu_s"] / (tsv["s"] * j.threads))

    summaries = _summaries(root)
    recorded = [s for s in summaries.values() if "torch_threads" in s]
    mismatches = [
        f"{k}: threads {s.get('threads')}, torch {s['torch_threads']}"
        for k, s in summaries.items()
        if "torch_threads" in s and s["torch_threads"] != s.get("threads")
    ]
    for j in done:  # the log's threads (Snakemake's) against what the job's runs recorded
        for s in _job_runs(j.benchmark, summaries) if j.rule == "train" else ():
            if s.get("threads") != j.threads:
                mismatches.append(
                    f"{j.benchmark} seed {s.get('seed')}: Snakemake {j.threads}, "
                    f"summary {s.get('threads')}"
                )
    peak_threads = _max_concurrent(done)
    return {
        "measured": True,
        "source": source,
        "cores": cores,
        "cores_from": cores_source,
        "jobs": len(jobs),
        "finished": sum(not j.failed for j in done),
        "failed": sum(j.failed for j in done),
        "running": len(jobs) - len(done),
        "rules": dict(sorted(Counter(j.rule for j in done).items())),
        "makespan_s": makespan,
        "cpu_s": cpu,
        "cpu_s_assumed": assumed,
        "cpu_s_benchmark_files": sampled,
        "jobs_with_own_cpu_count": own_counts,
        "efficiency": cpu / (cores * makespan) if makespan > 0 else float("nan"),
        "efficiency_benchmark_files": sampled / (cores * makespan)
        if makespan > 0
        else float("nan"),
        "occupancy": held / (cores * makespan) if makespan > 0 else float("nan"),
        "cpu_per_wall_median": statistics.median(per_wall) if per_wall else None,
        "cpu_per_wall_max": max(per_wall) if per_wall else None,
        "max_concurrent_threads": peak_threads,
        "oversubscribed": peak_threads > cores,
        "summaries": len(summaries),
        "torch_threads_recorded": len(recorded),
        "thread_mismatches": mismatches,
        "threads_ok": (not mismatches and peak_threads <= cores) if recorded else None,
    }


def thread_scaling(
    cell: str = "lstm",
    length: int = 100,
    counts: tuple[int, ...] | None = None,
    repeats: int = 5,
    hidden_size: int = 64,
    batch_size: int = 64,
) -> dict:
    """Wall time of a training step (CPU) at each thread count, timed in turn.

    Returns:
        {"rows": one dict per thread count: step_s (fastest), speedup (over one thread),
         throughput (speedup / threads: the grid's relative throughput at that many
         threads per job), cpu_per_wall (CPU seconds per wall second of the step);
         "best": the thread count with the highest throughput; "rule": the profile's}.
    """
    counts = counts or tuple(k for k in (1, 2, 4, 8) if k <= _local_cores())
    device = torch.device("cpu")
    model = build_model(VariantSpec(cell=cell, hidden_size=hidden_size), "adding", seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = tasks.make_batch("adding", length, batch_size, 0, 0)
    cpu_wall: dict[int, list[float]] = {k: [] for k in counts}

    def at(k: int):
        def step():
            with threads(k):
                c0, w0 = time.process_time(), time.perf_counter()
                opt.zero_grad(set_to_none=True)
                tasks.loss("adding", model(x), y).backward()
                opt.step()
                cpu_wall[k].append((time.process_time() - c0) / (time.perf_counter() - w0))

        return step

    fns = {k: at(k) for k in counts}
    for fn in fns.values():
        fn()  # warm-up at every thread count
    got = alternate(fns, repeats, device, wall=True)  # several threads: only wall time tells
    base = min(got[counts[0]])
    rows = [
        {
            "cell": cell,
            "length": length,
            "threads": k,
            "step_s": min(got[k]),
            "speedup": base / min(got[k]),
            "throughput": base / min(got[k]) / k,
            "cpu_per_wall": statistics.median(cpu_wall[k]),
        }
        for k in counts
    ]
    best = max(rows, key=lambda r: r["throughput"])["threads"]
    return {"rows": rows, "best": best, "rule": rule_threads("train")}


@training_numerics
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid-results", default="results")
    parser.add_argument("--grid-log", default=None)
    parser.add_argument("--cores", type=int, default=None)
    args = parser.parse_args(argv)
    eff = grid_efficiency(args.grid_results, args.grid_log, args.cores)
    print(json.dumps(eff, indent=1, default=str))
    scaling = thread_scaling()
    for r in scaling["rows"]:
        print(
            f"{r['threads']} thread(s): step {1e3 * r['step_s']:.1f} ms, speedup "
            f"{r['speedup']:.2f}, grid throughput {r['throughput']:.2f}, CPU/wall {r['cpu_per_wall']:.2f}"
        )
    return {"efficiency": eff, "scaling": scaling}


if __name__ == "__main__":
    main()
