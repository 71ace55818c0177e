# Training: one job per run (task, length, variant, seed). The job is a checkpoint: the
# sweep (common.smk, rnngrad.sweep) reads each run's verdict to decide which runs come
# next, so the DAG grows as results arrive. Each run's checkpoint file lives outside the
# declared outputs, so a killed job resumes its run when Snakemake reruns the job.


checkpoint train:
    output:
        **RUN_OUTPUTS,  # summary, curve, gradients, spectra, horizon
        usage="results/benchmarks/train/{task}/T{length}/{variant}/seed{seed}.usage.json",
    log:
        "results/logs/train/{task}/T{length}/{variant}/seed{seed}.log",
    benchmark:
        TRAIN_BENCHMARK
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
