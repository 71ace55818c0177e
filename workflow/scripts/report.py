"""Rule report: render report/report.qmd to self-contained HTML (logic in rnngrad.render)."""

import sys
from pathlib import Path

from rnngrad.io import log_to
from rnngrad.render import render_report, report_params

with log_to(snakemake.log[0]):
    renderer = render_report(
        snakemake.input.qmd,
        snakemake.output.html,
        params=report_params(
            Path(snakemake.input.tables[0]).parent,
            Path(snakemake.input.figures[0]).parent,
            snakemake.config,
            snakemake.input.anchors,
            snakemake.params.config_hash,
            snakemake.params.config_files,
            snakemake.params.snakemake_version,
        ),
    )
    print(f"rendered {snakemake.output.html} with {renderer}", file=sys.stderr)
