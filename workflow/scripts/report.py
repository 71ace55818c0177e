"""Rule report: render report/report.qmd to self-contained HTML (logic in rnngrad.render)."""

import sys
from pathlib import Path

from rnngrad.io import log_to
from rnngrad.render import render_report

with log_to(snakemake.log[0]):
    renderer = render_report(
        snakemake.input.qmd,
        snakemake.output.html,
        params={
            "tables_dir": str(Path(snakemake.input.tables[0]).parent),
            "figures_dir": str(Path(snakemake.input.figures[0]).parent),
            "config": dict(snakemake.config),
            "anchors_file": snakemake.input.anchors,
            "config_hash": snakemake.params.config_hash,
            "config_files": snakemake.params.config_files,
            "commands": snakemake.params.commands,
            "snakemake_version": snakemake.params.snakemake_version,
        },
    )
    print(f"rendered {snakemake.output.html} with {renderer}", file=sys.stderr)
