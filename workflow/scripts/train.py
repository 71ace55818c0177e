"""Rule train: one training run of the grid (logic in rnngrad.train)."""

from pathlib import Path

from rnngrad.config import GridPoint, config_hash, run_spec
from rnngrad.io import log_to
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
        checkpoint=snakemake.params.checkpoint,
        config_hash=config_hash(snakemake.config),
    )
