"""The Snakemake DAG: planning on the default config, and the whole smoke grid end to end."""

from __future__ import annotations

import html
import json
import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import yaml

from rnngrad.aggregate import TABLES
from rnngrad.config import load_config, probe_grid, train_grid
from rnngrad.figures import FIGURES
from rnngrad.sweep import read_verdict, sweep_runs
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
    return Counter(re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):", output, flags=re.M))


def _expected_jobs(cfg: dict, trained_runs: int) -> dict:
    return {
        "train": trained_runs,
        "probe_init": len({p.variant for p in probe_grid(cfg)}),
        "aggregate": 1,
        "figure": len(FIGURES),
        "report": 1,
        "all": 1,
    }


@pytest.mark.slow
def test_dry_run_plans_the_first_length_of_the_sweep(tmp_path):
    """The default grid: one train job per task and variant (its first length), one init-probe
    job per variant; the later lengths wait on results, and the dry run says so."""
    workdir = copy_workflow(tmp_path)
    proc = snakemake(workdir, "-n")
    cfg = load_config(ROOT / "config" / "config.yaml")
    assert cfg["train"]["adaptive"]
    first = {(p.task, p.variant) for p in train_grid(cfg)}
    assert _job_counts(proc.stdout) == _expected_jobs(cfg, len(first))
    out = proc.stdout + proc.stderr
    assert "Length sweep (train.adaptive)" in out
    assert "checkpoint jobs, which will result in alteration of the DAG" in out
    planned = set(re.findall(r"wildcards: task=(\w+), length=(\d+), variant=(\w+)", out))
    firsts = {t: min(lengths) for t, lengths in cfg["train"]["tasks"].items()}
    assert planned == {(t, str(firsts[t]), v) for t, v in first}


@pytest.mark.slow
def test_dry_run_without_the_sweep_plans_every_length(tmp_path):
    workdir = copy_workflow(tmp_path)
    cfg = yaml.safe_load((workdir / "config" / "smoke.yaml").read_text())
    cfg["train"]["adaptive"] = cfg["train"]["sequential"] = False
    (workdir / "config" / "full.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(workdir, "--configfile", "config/full.yaml", "-n")
    checked = load_config(workdir / "config" / "full.yaml")
    assert _job_counts(proc.stdout) == _expected_jobs(checked, len(train_grid(checked)))
    assert "Length sweep" not in proc.stdout + proc.stderr


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


def _trained(results) -> dict[tuple, str]:
    """(task, length, variant, seed) -> status of every run folder with a summary."""
    return {
        (p.parts[-5], int(p.parts[-4][1:]), p.parts[-3], int(p.parts[-2][4:])): read_verdict(p)
        for p in sorted((results / "runs").glob("*/T*/*/seed*/summary.json"))
    }


@pytest.mark.slow
def test_smoke_grid_sweeps_lengths(smoke_run):
    """The smoke grid's sweep goes on for a variant whose seeds solved the first length and
    stops for the others: exactly the runs rnngrad.sweep asks for were trained."""
    results = smoke_run / "results"
    cfg = load_config(smoke_run / "config" / "smoke.yaml")
    trained = _trained(results)

    def verdict_of(task, length, variant, seed):
        return trained[(task, length, variant, seed)]

    variants = cfg["train"].get("variants") or list(cfg["variants"])
    want = sweep_runs(cfg["train"]["tasks"], variants, cfg["train"]["seeds"], verdict_of)
    assert sorted(trained) == sorted(want)
    lengths = {}
    for task, length, variant, _ in trained:
        lengths.setdefault((task, variant), set()).add(length)
    adding = cfg["train"]["tasks"]["adding"]
    went_on = [v for v in variants if lengths[("adding", v)] == set(adding)]
    stopped = [v for v in variants if lengths[("adding", v)] == {adding[0]}]
    assert went_on and stopped, lengths  # the smoke config's threshold arranges both
    runs = pd.read_parquet(results / "tables" / "runs.parquet")
    assert len(runs) == len(trained) < len(train_grid(cfg))
    success = pd.read_parquet(results / "tables" / "success.parquet")
    # every cell of the grid has a row; those the sweep never reached are not attempted
    assert "attempted" in success.columns
    assert len(success) == len({(p.task, p.length, p.variant) for p in train_grid(cfg)})
    skipped = success[~success["attempted"].astype(bool)]
    assert len(skipped) == len(stopped) * (len(adding) - 1)
    assert (skipped["seeds"] == 0).all()


@pytest.mark.slow
def test_smoke_grid_end_to_end(smoke_run):
    results = smoke_run / "results"
    for table in TABLES:
        assert (results / "tables" / f"{table}.parquet").is_file()
        assert (results / "tables" / f"{table}.csv").is_file()
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
def test_smoke_grid_jobs_use_their_threads_and_record_their_cost(smoke_run):
    """One train job per run (task, length, variant, seed); each job's benchmark file and
    own CPU count are there, and the cost table has one row per cell of its jobs."""
    results = smoke_run / "results"
    cfg = load_config(smoke_run / "config" / "smoke.yaml")
    trained = _trained(results)
    bench = sorted((results / "benchmarks" / "train").glob("*/T*/*/seed*.tsv"))
    assert sorted(
        (p.parts[-4], int(p.parts[-3][1:]), p.parts[-2], int(p.stem[4:])) for p in bench
    ) == sorted(trained)
    for path in bench:
        assert json.loads(path.with_suffix(".usage.json").read_text())["cpu_seconds"] > 0
    cost = pd.read_parquet(results / "tables" / "cost.parquet")
    per_cell = pd.Series([(t, n, v) for t, n, v, _ in trained]).value_counts()
    assert len(cost) == len(per_cell)
    runs_of = {(r.task, r.length, r.variant): r.runs for r in cost.itertuples()}
    assert runs_of == per_cell.to_dict()
    assert (cost["jobs"] == cost["runs"]).all()
    assert (cost["cpu_seconds"] >= cost["bench_cpu_seconds"]).all()
    assert np.allclose(cost["cpu_seconds_per_run"], cost["cpu_seconds"])  # a job is a run
    runs = pd.read_parquet(results / "tables" / "runs.parquet")
    assert (runs["threads"] == 1).all()  # the profile's set-threads, not the config
    probes = sorted((results / "benchmarks" / "probe_init").glob("*.tsv"))
    assert len(probes) == len({p.variant for p in probe_grid(cfg)})


@pytest.mark.slow
def test_smoke_grid_is_up_to_date_and_reruns_only_what_changed(smoke_run):
    proc = snakemake(smoke_run, "--configfile", "config/smoke.yaml", "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr
    (smoke_run / "results" / "figures" / "cost.png").unlink()
    profile = ("--workflow-profile", "workflow/profiles/default")
    proc = snakemake(smoke_run, "--configfile", "config/smoke.yaml", *profile)
    assert _executed_rules(proc.stdout + proc.stderr) == {"figure": 1, "report": 1, "all": 1}
    assert (smoke_run / "results" / "figures" / "cost.png").is_file()

    # one run of a later length of the sweep, rebuilt alone: its train job, nothing else
    late = max(_trained(smoke_run / "results"), key=lambda k: k[1])
    summary = smoke_run / "results" / "runs" / late[0] / f"T{late[1]}" / late[2] / "seed0"
    before = json.loads((summary / "summary.json").read_text())
    (summary / "summary.json").unlink()
    target = str((summary / "summary.json").relative_to(smoke_run))
    proc = snakemake(smoke_run, "--configfile", "config/smoke.yaml", *profile, target)
    assert _executed_rules(proc.stdout + proc.stderr) == {"train": 1}
    after = json.loads((summary / "summary.json").read_text())
    assert after["test_metric" if "test_metric" in after else "final_metric"] == before.get(
        "test_metric", before["final_metric"]
    )
    # the tables depend on it: the whole grid brings them (and only what follows) up to date
    proc = snakemake(smoke_run, "--configfile", "config/smoke.yaml", *profile)
    assert set(_executed_rules(proc.stdout + proc.stderr)) == {"aggregate", "figure", "report",
                                                               "all"}  # fmt: skip
