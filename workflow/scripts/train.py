"""Rule train: the seeds of one task, length and variant, one after another (logic in rnngrad.train)."""

import resource
from pathlib import Path

from rnngrad.config import GridPoint, config_hash, run_spec
from rnngrad.io import log_to, write_json
from rnngrad.train import train_run

w = snakemake.wildcards
with log_to(snakemake.log[0]):
    for seed, summary in zip(snakemake.params.seeds, snakemake.output.summaries, strict=True):
        spec = run_spec(
            snakemake.config,
            GridPoint(w.task, int(w.length), w.variant, seed),
            threads=snakemake.threads,
        )
        train_run(
            spec,
            Path(summary).parent,
            checkpoint=Path(snakemake.params.checkpoints) / f"seed{seed}.pt",
            config_hash=config_hash(snakemake.config),
        )
    # The job's own CPU count: Snakemake's benchmark file samples it and misses the tail.
    cpu = sum(
        r.ru_utime + r.ru_stime
        for r in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    )
    write_json(snakemake.output.usage, {"cpu_seconds": cpu})
