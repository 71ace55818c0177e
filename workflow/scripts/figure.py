"""Rule figure: one figure from the tables (logic in rnngrad.figures)."""

from pathlib import Path

from rnngrad.figures import make_figure
from rnngrad.io import log_to

with log_to(snakemake.log[0]):
    make_figure(
        snakemake.wildcards.figure,
        Path(snakemake.input.tables[0]).parent,
        Path(snakemake.output.png).with_suffix(""),
        snakemake.config,
    )
