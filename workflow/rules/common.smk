# Helpers shared by the rules: the checked config, the grids and the paths of the runs.
# The config is checked here, before any job runs: the schema (workflow/schemas/),
# duplicate keys, and combinations a schema cannot express. Errors name the key.
import os
from functools import partial
from pathlib import Path

import snakemake
from snakemake.exceptions import IncompleteCheckpointException

from rnngrad import config as rnnconfig
from rnngrad import plan, sweep
from rnngrad.aggregate import TABLES
from rnngrad.columns import RUN_FILES
from rnngrad.figures import FIGURE_TABLES, FIGURES
from rnngrad.specs import TASKS

for _path in workflow.configfiles:
    rnnconfig.read_yaml(
        _path
    )  # rejects duplicate keys, which YAML would silently merge
CFG = rnnconfig.check_config(
    dict(config), source=" + ".join(map(str, workflow.configfiles))
)
config.update(CFG)
CONFIG_HASH = rnnconfig.config_hash(CFG)
TRAIN = rnnconfig.train_grid(CFG)  # every run the grid plans; the sweep trains a prefix
PROBES = rnnconfig.probe_grid(CFG)
SEEDS = CFG["train"]["seeds"]
ADAPTIVE = CFG["train"]["adaptive"]
SEQUENTIAL = CFG["train"]["sequential"]
TRAIN_CELLS = sorted({(p.task, p.variant) for p in TRAIN}, key=str)
if ADAPTIVE and workflow.is_main_process:
    logger.info(
        "Length sweep (train.adaptive): the first length of each task is planned now; "
        "a variant's next runs join the DAG as its results arrive (checkpoint train)"
        + (
            ": its first seed climbs alone, and the lengths around its first failure "
            "get every seed (train.sequential)."
            if SEQUENTIAL
            else "."
        )
    )
# glibc returns freed memory to the system at every step otherwise, and oneDNN's LSTM
# then page-faults through its workspace: keeping it makes an LSTM step at T = 1000
# 2.7x faster (README, "Performance"). The jobs inherit the variables.
os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", str(2**30))
os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", str(2**30))
PROBE_VARIANTS = sorted({p.variant for p in PROBES})

# One train job per run (task, length, variant, seed): the sweep decides run by run.
RUN_DIR = "results/runs/{task}/T{length}/{variant}/seed{seed}"
# A train job's outputs: the run's files (rnngrad.columns.RUN_FILES), named by their stems
RUN_OUTPUTS = {Path(name).stem: f"{RUN_DIR}/{name}" for name in RUN_FILES}
TRAIN_BENCHMARK = "results/benchmarks/train/{task}/T{length}/{variant}/seed{seed}.tsv"
# One init-probe job per variant writes the files of every probed task and length.
PROBE_FILE = "results/probes/{task}/T{length}/{variant}.parquet"
PROBE_POINTS = [
    [t, n] for t, lengths in CFG["probes"]["tasks"].items() for n in lengths
]


wildcard_constraints:
    task="|".join(sorted(TASKS)),
    length=r"\d+",
    variant=r"[a-z][a-z0-9_]*",
    seed=r"\d+",
    table="|".join(TABLES),
    figure="|".join(FIGURES),


def probe_outputs():
    """The init-probe files of one variant (a wildcard): every probed task and length."""
    return [
        PROBE_FILE.format(task=t, length=n, variant="{variant}")
        for t, n in PROBE_POINTS
    ]


def _verdict(task, variant, length, seed):
    """A run's verdict once its train job (a checkpoint) has run, else None."""
    try:
        job = checkpoints.train.get(
            task=task, length=length, variant=variant, seed=seed
        )
    except IncompleteCheckpointException:
        return None
    return sweep.read_verdict(job.output.summary)


def _design(task, variant):
    return sweep.sweep_design(
        CFG["train"]["tasks"][task],
        SEEDS,
        partial(_verdict, task, variant),
        rnnconfig.climb_criterion(CFG, task),
        SEQUENTIAL,
        ADAPTIVE,
    )


def _sweep_files(task, variant, seed, wildcards):
    """The runs of one seed that the sweep's design (rnngrad.sweep) asks for, once the
    design is complete. One input function per seed: each waits on one pending run at a
    time (its own first), so the seeds' runs of one length are scheduled side by side.
    """
    design = _design(task, variant)
    while design.pending:
        length, waits = next(
            (r for r in design.pending if r[1] == seed), design.pending[0]
        )
        # raises until that run is done; Snakemake then runs it and asks again
        checkpoints.train.get(task=task, length=length, variant=variant, seed=waits)
        design = _design(task, variant)
    keys = [
        dict(task=task, length=n, variant=variant, seed=s)
        for n, s in design.needed
        if s == seed
    ]
    runs = [f"{RUN_DIR}/{name}".format(**k) for k in keys for name in RUN_FILES]
    return runs + [TRAIN_BENCHMARK.format(**k) for k in keys]


def sweep_inputs():
    """One input function per task, variant and seed: its runs, as far as the sweep went."""
    return {
        f"sweep_{task}_{variant}_{seed}": partial(_sweep_files, task, variant, seed)
        for task, variant in TRAIN_CELLS
        for seed in SEEDS
    }


def init_probe_files():
    return [PROBE_FILE.format(**vars(p)) for p in PROBES]


def init_probe_benchmarks():
    return expand("results/benchmarks/probe_init/{variant}.tsv", variant=PROBE_VARIANTS)


def figure_tables(wildcards):
    """Only the tables a figure draws from, so a table change reruns only its figures."""
    return [f"results/tables/{t}.parquet" for t in FIGURE_TABLES[wildcards.figure]]


# What the report's reproducibility section shows.
SNAKEMAKE_VERSION = snakemake.__version__


def shown_path(path) -> str:
    """A config path as the user would type it: relative to the working folder when inside."""
    full, here = Path(path).resolve(), Path.cwd().resolve()
    return str(full.relative_to(here)) if full.is_relative_to(here) else str(path)


# The command that reproduces the report, not this invocation's argv: a report param that
# changed with --cores or -n would rerun the report.
CONFIG_FILES = [shown_path(p) for p in workflow.configfiles]


def run_identity(wildcards):
    """The settings that fix the run's numbers (a change to them reruns the job)."""
    point = rnnconfig.GridPoint(
        wildcards.task, int(wildcards.length), wildcards.variant, int(wildcards.seed)
    )
    return rnnconfig.run_spec(CFG, point).identity()


def train_runtime(wildcards, attempt):
    """Minutes for a Slurm job of one run: rnngrad.plan's cost of its whole budget (the
    measured step times) with 50 % to spare, grown on retry."""
    spec = rnnconfig.variant_specs(CFG)[wildcards.variant]
    length = int(wildcards.length)
    seconds = plan.run_seconds(CFG, spec.cell, spec.hidden_size, wildcards.task, length)
    return int(10 + 1.5 * seconds / 60) * attempt


def train_mem_mb(wildcards, attempt):
    return (1000 + 2 * int(wildcards.length)) * attempt


def probe_runtime(wildcards, attempt):
    """Minutes: rnngrad.plan's cost of the variant's probes, 3x to spare."""
    width = rnnconfig.variant_specs(CFG)[wildcards.variant].hidden_size
    settings = rnnconfig.probe_settings(CFG)
    seconds = sum(
        plan.probe_seconds(t, n, width, settings.jac_examples, settings.seeds)
        for t, n in PROBE_POINTS
    )
    return int(5 + 3 * seconds / 60) * attempt


def probe_mem_mb(wildcards, attempt):
    return (1500 + max(n for _, n in PROBE_POINTS)) * attempt
