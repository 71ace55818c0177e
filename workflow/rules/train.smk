# Training: one job per task, length and variant runs all its seeds, one after another.
# The job is a checkpoint: the sweep (common.smk, rnngrad.sweep) reads its seeds'
# statuses to decide whether the variant goes on to the next length, so the DAG grows
# as results arrive. Each run's checkpoint file lives outside the declared outputs, so
# a killed job resumes its unfinished run when Snakemake reruns the job.


checkpoint train:
    output:
        summaries=seed_files("summary.json"),
        curves=seed_files("curve.parquet"),
        gradients=seed_files("gradients.parquet"),
        spectra=seed_files("spectra.parquet"),
        usage="results/benchmarks/train/{task}/T{length}/{variant}.usage.json",
    log:
        "results/logs/train/{task}/T{length}/{variant}.log",
    benchmark:
        TRAIN_BENCHMARK
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=train_mem_mb,
        runtime=train_runtime,
    params:
        seeds=SEEDS,
        checkpoints="results/checkpoints/{task}/T{length}/{variant}",
        # the runs' own settings: editing another part of the config reruns nothing here
        runs=cell_identity,
    script:
        "../scripts/train.py"
