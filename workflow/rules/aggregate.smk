# Every run, probe and benchmark file -> tidy tables (parquet, with a CSV twin each).


rule aggregate:
    input:
        summaries=run_files("summary.json"),
        curves=run_files("curve.parquet"),
        gradients=run_files("gradients.parquet"),
        spectra=run_files("spectra.parquet"),
        benchmarks=train_benchmarks(),
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
