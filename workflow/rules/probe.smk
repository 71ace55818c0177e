# Gradient probes at initialisation: no training, many seeds, long lengths (cheap).
# One job per variant probes every task and length of `probes.tasks`, one file each.


rule probe_init:
    output:
        files=probe_outputs(),
        usage="results/benchmarks/probe_init/{variant}.usage.json",
    log:
        "results/logs/probe_init/{variant}.log",
    benchmark:
        "results/benchmarks/probe_init/{variant}.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=probe_mem_mb,
        runtime=probe_runtime,
    params:
        points=PROBE_POINTS,
        settings=rnnconfig.probe_settings(CFG),
        device=CFG["device"],
    script:
        "../scripts/probe_init.py"
