# The paper-style report: Quarto when it is on PATH, else the fallback (notebook + pandoc).


rule report:
    input:
        qmd="report/report.qmd",
        prose="report/prose.md.j2",
        quarto="report/_quarto.yml",
        bib="report/references.bib",
        anchors="report/anchors.csv",
        tables=expand("results/tables/{table}.parquet", table=TABLES),
        figures=expand("results/figures/{figure}.png", figure=FIGURES),
    output:
        html=report(
            "results/report/report.html",
            caption="../../report/captions/report.rst",
            category="Report",
        ),
    log:
        "results/logs/report.log",
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=15,
    params:
        config_hash=CONFIG_HASH,
        config_files=CONFIG_FILES,
        snakemake_version=SNAKEMAKE_VERSION,
    script:
        "../scripts/report.py"
