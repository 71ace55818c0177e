"""Rule aggregate: the runs the sweep trained, the probes and benchmarks -> tables
(logic in rnngrad.aggregate)."""

from pathlib import Path

from rnngrad.aggregate import build_tables, write_table
from rnngrad.io import log_to

files = [Path(p) for p in snakemake.input]
with log_to(snakemake.log[0]):
    tables = build_tables(
        run_dirs=[p.parent for p in files if p.name == "summary.json"],
        probe_files=snakemake.input.probes,
        benchmark_files=[p for p in files if p.suffix == ".tsv"],
        config=snakemake.config,
    )
    for path in snakemake.output.parquet:
        write_table(tables[Path(path).stem], Path(path).with_suffix(""))
