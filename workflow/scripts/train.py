"""Rule train: one run of a task, length, variant and seed (logic in rnngrad.train)."""

from pathlib import Path

from rnngrad.config import GridPoint, config_hash, run_spec
from rnngrad.io import log_to, write_cpu_usage
from rnngrad.train import train_run

w = snakemake.wildcards
with log_to(snakemake.log[0]):
    spec = run_spec(
        snakemake.config,
        GridPoint(w.task, int(w.length), w.variant, int(w.seed)),
        threads=snakemake.threads,
    )
    train_run(
        spec,
        Path(snakemake.output.summary).parent,
        checkpoint=Path(snakemake.params.checkpoint),
        config_hash=config_hash(snakemake.config),
    )
    write_cpu_usage(snakemake.output.usage)
