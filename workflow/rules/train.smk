# One training run per task, length, variant and seed. The checkpoint lives outside the
# declared outputs, so a killed job resumes from it when Snakemake reruns the job.


rule train:
    output:
        summary=f"{RUN_DIR}/summary.json",
        curve=f"{RUN_DIR}/curve.parquet",
        gradients=f"{RUN_DIR}/gradients.parquet",
        spectra=f"{RUN_DIR}/spectra.parquet",
    log:
        "results/logs/train/{task}/T{length}/{variant}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{task}/T{length}/{variant}/seed{seed}.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=train_mem_mb,
        runtime=train_runtime,
    params:
        checkpoint="results/checkpoints/{task}/T{length}/{variant}/seed{seed}.pt",
        # the run's own settings: editing another part of the config reruns nothing here
        run=run_identity,
    script:
        "../scripts/train.py"
