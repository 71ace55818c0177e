# Helpers shared by the rules: the checked config, the grids and the paths of the runs.
# The config is checked here, before any job runs: the schema (workflow/schemas/),
# duplicate keys, and combinations a schema cannot express. Errors name the key.
from functools import partial
from pathlib import Path

import snakemake

from rnngrad import config as rnnconfig
from rnngrad import sweep
from rnngrad.aggregate import TABLES
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
TRAIN_CELLS = sorted({(p.task, p.variant) for p in TRAIN}, key=str)
if ADAPTIVE and workflow.is_main_process:
    logger.info(
        "Length sweep (train.adaptive): the first length of each task is planned now; "
        "a variant's next length joins the DAG once a majority of its seeds solved the "
        "one before (checkpoint train)."
    )
PROBE_VARIANTS = sorted({p.variant for p in PROBES})

# One train job per task, length and variant runs all its seeds (one after another);
# each run keeps its own folder.
CELL_DIR = "results/runs/{task}/T{length}/{variant}"
RUN_DIR = f"{CELL_DIR}/seed{{seed}}"
RUN_FILES = ("summary.json", "curve.parquet", "gradients.parquet", "spectra.parquet")
TRAIN_BENCHMARK = "results/benchmarks/train/{task}/T{length}/{variant}.tsv"
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


def seed_files(name):
    """One file of each seed of a train job (its task, length and variant still wildcards)."""
    return expand(f"{RUN_DIR}/{name}", seed=SEEDS, allow_missing=True)


def probe_outputs():
    """The init-probe files of one variant (a wildcard): every probed task and length."""
    return [
        PROBE_FILE.format(task=t, length=n, variant="{variant}")
        for t, n in PROBE_POINTS
    ]


def _statuses(task, variant, length):
    """The seeds' statuses at one length, once its train job (a checkpoint) has run.

    Before that, checkpoints.train.get raises; Snakemake then runs the job and asks again.
    """
    job = checkpoints.train.get(task=task, length=length, variant=variant)
    return sweep.read_statuses(job.output.summaries)


def _sweep_files(task, variant, wildcards):
    # The sweep's decision (rnngrad.sweep): the lengths trained so far and the next one.
    lengths = sweep.sweep_lengths(
        CFG["train"]["tasks"][task], partial(_statuses, task, variant), ADAPTIVE
    )
    keys = [dict(task=task, length=n, variant=variant) for n in lengths]
    runs = [
        f"{RUN_DIR}/{name}".format(**k, seed=s)
        for k in keys
        for s in SEEDS
        for name in RUN_FILES
    ]
    return runs + [TRAIN_BENCHMARK.format(**k) for k in keys]


def sweep_inputs():
    """One input function per task and variant: its runs, as far as its sweep went.

    Each function waits on its own checkpoints, so the sweeps of all variants advance
    side by side (one input function waits on one checkpoint at a time).
    """
    return {
        f"sweep_{task}_{variant}": partial(_sweep_files, task, variant)
        for task, variant in TRAIN_CELLS
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
REPORT_COMMANDS = [
    "snakemake --cores all --workflow-profile workflow/profiles/default "
    + " ".join(f"--configfile {p}" for p in CONFIG_FILES),
]


def cell_identity(wildcards):
    """The settings that fix the job's numbers, per seed (a change to them reruns the job)."""
    return [
        rnnconfig.run_spec(
            CFG,
            rnnconfig.GridPoint(
                wildcards.task, int(wildcards.length), wildcards.variant, seed
            ),
        ).identity()
        for seed in SEEDS
    ]


def train_runtime(wildcards, attempt):
    """Minutes for a Slurm job of every seed: measured CPU step times (one thread, up to
    0.33 ms per step and unit of length: the GRU) with 50 % to spare, grown on retry."""
    steps = rnnconfig.train_steps(CFG, wildcards.task)
    seq = TASKS[wildcards.task].seq_len(int(wildcards.length))
    return int(10 + len(SEEDS) * steps * seq * 0.5e-3 / 60) * attempt


def train_mem_mb(wildcards, attempt):
    return (1000 + 2 * int(wildcards.length)) * attempt


def probe_runtime(wildcards, attempt):
    """Minutes: measured 2 ms per probed step and seed at H = 64 (LSTM, 2 Jacobian
    examples, one CPU thread), growing like H^2.5 (the eigenproblems), 3x to spare."""
    width = rnnconfig.variant_specs(CFG)[wildcards.variant].hidden_size
    steps = sum(TASKS[t].seq_len(n) for t, n in PROBE_POINTS) * CFG["probes"]["seeds"]
    per_step = 0.002 * CFG["probes"]["jac_examples"] / 2 * max(1.0, width / 64) ** 2.5
    return int(5 + 3 * steps * per_step / 60) * attempt


def probe_mem_mb(wildcards, attempt):
    return (1500 + max(n for _, n in PROBE_POINTS)) * attempt
