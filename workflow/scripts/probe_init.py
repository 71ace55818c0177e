"""Rule probe_init: gradient profiles at initialisation over seeds (logic in rnngrad.probes)."""

import torch

from rnngrad.config import variant_specs
from rnngrad.io import log_to, write_parquet
from rnngrad.probes import init_probe
from rnngrad.train import resolve_device

w = snakemake.wildcards
with log_to(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    df = init_probe(
        w.task,
        int(w.length),
        w.variant,
        variant_specs(snakemake.config)[w.variant],
        snakemake.params.seeds,
        snakemake.params.batch_size,
        device=resolve_device(snakemake.params.device),
        # float64: a vanilla RNN's float32 gradient underflows to 0 within a few hundred steps
        dtype=torch.float64,
    )
    write_parquet(snakemake.output[0], df)
