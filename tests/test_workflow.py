"""The Snakemake DAG: planning on the default config, and the whole smoke grid end to end."""

from __future__ import annotations

import html
import re
from collections import Counter

import pandas as pd
import pytest

from rnngrad.aggregate import TABLES
from rnngrad.config import load_config, probe_grid, train_grid
from rnngrad.figures import FIGURES
from tests.workflow_helpers import ROOT, copy_workflow, snakemake


def _job_counts(output: str) -> Counter:
    """Parse Snakemake's 'Job stats' table of a dry run."""
    block = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    counts = Counter()
    for line in block.splitlines()[3:]:
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


def _executed_rules(output: str) -> Counter:
    return Counter(re.findall(r"^(?:local)?rule (\w+):", output, flags=re.M))


@pytest.mark.slow
def test_dry_run_plans_the_default_grid(tmp_path):
    workdir = copy_workflow(tmp_path)
    proc = snakemake(workdir, "-n")
    cfg = load_config(ROOT / "config" / "config.yaml")
    assert _job_counts(proc.stdout) == {
        "train": len(train_grid(cfg)),
        "probe_init": len(probe_grid(cfg)),
        "aggregate": 1,
        "figure": len(FIGURES),
        "report": 1,
        "all": 1,
    }


@pytest.mark.slow
def test_invalid_config_fails_before_any_job(tmp_path):
    workdir = copy_workflow(tmp_path)
    bad = (workdir / "config" / "smoke.yaml").read_text().replace("cell: gru", "cell: gru2")
    (workdir / "config" / "bad.yaml").write_text(bad)
    proc = snakemake(workdir, "--configfile", "config/bad.yaml", check=False)
    assert proc.returncode != 0
    assert "variants.gru.cell: 'gru2' is not one of" in proc.stdout + proc.stderr
    assert not (workdir / "results").exists()


def _prose(page: str) -> str:
    """The report's visible text outside tables, code and maths."""
    page = re.sub(r"<(script|style|table|math|pre|code)\b.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.mark.slow
def test_smoke_grid_end_to_end(smoke_run):
    results = smoke_run / "results"
    cfg = load_config(smoke_run / "config" / "smoke.yaml")
    for table in TABLES:
        assert (results / "tables" / f"{table}.parquet").is_file()
        assert (results / "tables" / f"{table}.csv").is_file()
    runs = pd.read_parquet(results / "tables" / "runs.parquet")
    assert len(runs) == len(train_grid(cfg))
    page = (results / "report" / "report.html").read_text()
    # every figure embedded, nothing fetched from elsewhere
    assert page.count('src="data:image/png;base64,') >= len(FIGURES)
    assert not re.search(r'<(img|script|link)[^>]+(src|href)="https?://', page)
    for name in FIGURES:
        assert (results / "figures" / f"{name}.png").stat().st_size > 10_000
        assert (results / "figures" / f"{name}.svg").is_file()
    # every table present, cross-references resolved, no missing values in the prose
    assert page.count("<table") >= 5
    prose = _prose(page)
    assert "?@" not in prose and not re.search(r"@(fig|tbl|eq)-", prose)
    assert not re.search(r"\b(nan|NaN|None)\b", prose)
    assert "<math" in page and "mathjax" not in page.lower()
    assert re.search(r"Rendered on \S+ by the\s+(quarto|jupyter-fallback)\s+renderer", prose)
    # provenance names the config file Snakemake read, not a placeholder
    assert "Config: config/smoke.yaml, hash" in html.unescape(re.sub(r"<[^>]+>", "", page))


@pytest.mark.slow
def test_smoke_grid_is_up_to_date_and_reruns_only_what_changed(smoke_run):
    proc = snakemake(smoke_run, "--configfile", "config/smoke.yaml", "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr
    (smoke_run / "results" / "figures" / "cost.png").unlink()
    proc = snakemake(
        smoke_run,
        "--configfile",
        "config/smoke.yaml",
        "--workflow-profile",
        "workflow/profiles/default",
    )
    assert _executed_rules(proc.stdout + proc.stderr) == {"figure": 1, "report": 1, "all": 1}
    assert (smoke_run / "results" / "figures" / "cost.png").is_file()
