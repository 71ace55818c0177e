# One job per figure: restyling a figure reruns only that figure and the report.


rule figure:
    input:
        tables=figure_tables,
    output:
        png=report(
            "results/figures/{figure}.png",
            caption="../../report/captions/figure.rst",
            category="Figures",
            labels={"figure": "{figure}"},
        ),
        svg="results/figures/{figure}.svg",
    log:
        "results/logs/figures/{figure}.log",
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/figure.py"
