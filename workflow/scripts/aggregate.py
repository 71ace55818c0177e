"""Rule aggregate: the grid's runs, probes and benchmarks -> tables (logic in rnngrad.aggregate)."""

from pathlib import Path

from rnngrad.aggregate import build_tables, write_table
from rnngrad.io import log_to

with log_to(snakemake.log[0]):
    tables = build_tables(
        run_dirs=[Path(p).parent for p in snakemake.input.summaries],
        probe_files=snakemake.input.probes,
        benchmark_files=snakemake.input.benchmarks,
        config=snakemake.config,
    )
    for path in snakemake.output.parquet:
        write_table(tables[Path(path).stem], Path(path).with_suffix(""))
