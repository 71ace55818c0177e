# rnngrad: train, probe, aggregate, draw and report. Run: snakemake --cores 8
# Settings of the grid live in config/; threads and resources in workflow/profiles/.
from snakemake.utils import min_version

min_version("9.0")


# The default grid, unless --configfile names others: Snakemake would otherwise merge
# the two, and a smaller grid would inherit the default's extra tasks and lengths.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/probe.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/report.smk"


# The figures and tables are targets too: a deleted one is rebuilt (with what depends
# on it), where Snakemake would otherwise leave a missing intermediate file missing.
rule all:
    default_target: True
    input:
        "results/report/report.html",
        expand("results/figures/{figure}.{ext}", figure=FIGURES, ext=("png", "svg")),
        expand("results/tables/{table}.{ext}", table=TABLES, ext=("parquet", "csv")),
