# Helpers shared by the rules: the checked config, the grids and the paths of the runs.
# The config is checked here, before any job runs: the schema (workflow/schemas/),
# duplicate keys, and combinations a schema cannot express. Errors name the key.
from pathlib import Path

import snakemake

from rnngrad import config as rnnconfig
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
TRAIN = rnnconfig.train_grid(CFG)
PROBES = rnnconfig.probe_grid(CFG)

RUN_DIR = "results/runs/{task}/T{length}/{variant}/seed{seed}"


wildcard_constraints:
    task="|".join(sorted(TASKS)),
    length=r"\d+",
    variant=r"[a-z][a-z0-9_]*",
    seed=r"\d+",
    table="|".join(TABLES),
    figure="|".join(FIGURES),


def run_files(name):
    """One file of every training run of the grid."""
    return [f"{RUN_DIR}/{name}".format(**vars(p)) for p in TRAIN]


def train_benchmarks():
    return [
        "results/benchmarks/train/{task}/T{length}/{variant}/seed{seed}.tsv".format(
            **vars(p)
        )
        for p in TRAIN
    ]


def init_probe_files():
    return [
        "results/probes/{task}/T{length}/{variant}.parquet".format(**vars(p))
        for p in PROBES
    ]


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


def run_identity(wildcards):
    """The settings that fix one run's numbers (a change to them reruns the run)."""
    point = rnnconfig.GridPoint(
        wildcards.task, int(wildcards.length), wildcards.variant, int(wildcards.seed)
    )
    return rnnconfig.run_spec(CFG, point).identity()


def train_runtime(wildcards, attempt):
    """Minutes for a Slurm job: measured CPU speed with room to spare, grown on retry."""
    steps = CFG["train"]["steps"]
    return int(10 + steps * int(wildcards.length) / 4000) * attempt


def train_mem_mb(wildcards, attempt):
    return (1000 + 2 * int(wildcards.length)) * attempt


def probe_runtime(wildcards, attempt):
    return int(5 + CFG["probes"]["seeds"] * int(wildcards.length) / 200) * attempt
