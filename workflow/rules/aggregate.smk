# Every run, probe and benchmark file -> tidy tables (parquet, with a CSV twin each).
# The runs are those the length sweep trained: one input function per task and variant
# (common.smk) waits on that variant's checkpoints, so the list grows as results arrive.


rule aggregate:
    input:
        **sweep_inputs(),
        probes=init_probe_files(),
    output:
        parquet=expand("results/tables/{table}.parquet", table=TABLES),
        csv=expand("results/tables/{table}.csv", table=TABLES),
    log:
        "results/logs/aggregate.log",
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    script:
        "../scripts/aggregate.py"
