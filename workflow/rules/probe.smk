# Gradient probes at initialisation: no training, many seeds, long lengths (cheap).


rule probe_init:
    output:
        "results/probes/{task}/T{length}/{variant}.parquet",
    log:
        "results/logs/probe_init/{task}/T{length}/{variant}.log",
    benchmark:
        "results/benchmarks/probe_init/{task}/T{length}/{variant}.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=probe_runtime,
    params:
        seeds=CFG["probes"]["seeds"],
        batch_size=CFG["probes"]["batch_size"],
        device=CFG["device"],
    script:
        "../scripts/probe_init.py"
