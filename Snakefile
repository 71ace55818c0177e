# rnngrad: train, probe, aggregate, draw and report. Run: snakemake --cores 8
# Settings of the grid live in config/; threads and resources in workflow/profiles/.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/probe.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        "results/report/report.html",
    default_target: True
