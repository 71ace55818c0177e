"""Rule probe_init: one variant's gradient profiles at initialisation, every task and length
(logic in rnngrad.probes)."""

import torch

from rnngrad.config import variant_specs
from rnngrad.io import log_to, write_cpu_usage, write_parquet
from rnngrad.probes import init_probe
from rnngrad.train import resolve_device

variant = snakemake.wildcards.variant
with log_to(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    spec = variant_specs(snakemake.config)[variant]
    for (task, length), path in zip(snakemake.params.points, snakemake.output.files, strict=True):
        df = init_probe(
            task,
            length,
            variant,
            spec,
            snakemake.params.settings.seeds,
            snakemake.params.settings.batch_size,
            device=resolve_device(snakemake.params.device),
            # float64: a vanilla RNN's float32 gradient underflows to 0 within a few hundred steps
            dtype=torch.float64,
            jac_examples=snakemake.params.settings.jac_examples,
        )
        write_parquet(path, df)
    write_cpu_usage(snakemake.output.usage)
