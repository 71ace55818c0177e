"""rnngrad.prose: numbers, counts, lists and tables for the report; and the report's
own shape (prose over findings: little Python, Markdown tables, no HTML output)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnngrad import prose as P

REPORT = Path(__file__).resolve().parents[1] / "report" / "report.qmd"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.012345, "0.0123"),
        (1.5, "1.5"),
        (2500.0, "2,500"),
        (12345.6, "12,300"),
        (3.2e-7, "3.20 × 10⁻⁷"),
        (-0.3, "-0.3"),
        (7, "7"),
        (np.int64(12000), "12,000"),
        (0.0, "0"),
        (True, "yes"),
        (float("nan"), "n/a"),
        (None, "n/a"),
        (pd.NA, "n/a"),
        (math.inf, "n/a"),
        ("text", "text"),
    ],
)
def test_fmt(value, text):
    assert P.fmt(value) == text


def test_pct_and_counts():
    assert P.pct(0.456) == "46%"
    assert P.pct(1.0) == "100%" and P.pct(0.9996) == ">99.9%" and P.pct(0.0004) == "<0.1%"
    assert P.pct(None) == "n/a"
    assert P.counted(1, "seed") == "1 seed"
    assert P.counted(3, "seed") == "3 seeds"
    assert P.counted(0, "run") == "no runs"
    assert P.counted(2000, "run") == "2,000 runs"
    assert P.counted("2 to 3", "seed") == "2 to 3 seeds"


def test_listing_and_codes():
    assert P.listing([]) == "none"
    assert P.listing(["a"]) == "a"
    assert P.listing(["a", "b"]) == "a and b"
    assert P.listing(["a", "b", "c"]) == "a, b and c"
    assert P.codes(["rnn", "lstm"]) == "`rnn` and `lstm`"
    assert P.code(None) == "n/a"


def test_intervals_bounds_and_rates():
    assert P.interval(0.5, 0.25, 0.75) == "0.5 [0.25, 0.75]"
    assert P.interval(0.5, math.nan, math.nan) == "0.5 [n/a]"
    assert P.length_bound(99.0, True) == "≥ 99"
    assert P.length_bound(math.nan) == "none"
    assert P.per_decade(-0.25) == "shrinks tenfold every 4 steps"
    assert P.per_decade(0.01) == "does not shrink with distance"
    assert P.reach(math.inf) == "whole grid" and P.reach(0.0) == "none" and P.reach(20.0) == "20"
    assert P.reach(math.nan) == "n/a"


def test_steps_budget_per_task():
    assert P.steps_budget({"adding": {10: 2500, 20: 2500}, "copy": {5: 2500}}) == "2,500 steps"
    assert (
        P.steps_budget({"copy": {5: 6000}, "adding": {10: 2500}})
        == "2,500 steps on adding and 6,000 on copy"
    )
    assert (
        P.steps_budget({"copy": {5: 6000}, "adding": {10: 2000, 20: 4000}})
        == "2,000 to 4,000 steps (by length) on adding and 6,000 on copy"
    )
    assert P.steps_budget({}) == "n/a"


def test_prediction_in_words():
    row = {"rho": 0.8, "rho_low": 0.2, "rho_high": 0.95, "variants": 11, "verdict": "predicts",
           "agreement": 0.75, "pairs": 4}  # fmt: skip
    text = P.prediction(row)
    assert "ρ = 0.8 [0.2, 0.95] over 11 variants" in text and "above zero" in text
    assert "75% of 4 (variant, length) pairs" in text
    assert "includes zero" in P.prediction({**row, "verdict": "no evidence"})
    assert "too few variants" in P.prediction({"rho": math.nan})
    assert "too few variants" in P.prediction({})


def test_grouped():
    text = P.grouped([("a", "≥ 50"), ("b", "20"), ("c", "≥ 50")])
    assert text == "≥ 50 for `a` and `c`; 20 for `b`"
    assert P.grouped([]) == "none"


def test_table_is_a_markdown_pipe_table_without_missing_values():
    df = pd.DataFrame({"variant": ["rnn", "lstm"], "rate": [-0.3, math.nan], "n": [3, None]})
    md = P.table(df)
    lines = md.splitlines()
    assert lines[0].startswith("| variant") and set(lines[1]) <= set("|:-")
    assert "n/a" in md and "nan" not in md and "None" not in md
    assert "<" not in md  # no HTML
    assert "nothing to show" in P.table(pd.DataFrame())
    assert "no rows" in P.table(None, empty="no rows")


def test_row_builders_keep_not_attempted_and_censoring_visible():
    from rnngrad import findings as F
    from tests.test_findings import example_tables

    t = example_tables()
    rows = P.success_rows(F.success_by_length(t["success"]))
    assert (rows["solved"] == "not attempted").sum() == int((~t["success"]["attempted"]).sum())
    crit = P.critical_rows(F.critical_length(t["critical"]))
    assert (
        crit["critical length"].str.startswith("≥").any()
        and (crit["critical length"] == "none").any()
    )
    gains = P.mitigation_rows(
        F.mitigation_gains(t["runs"], t["decay"], t["critical"], t["variants"])
    )
    assert "whole grid vs 20" in set(gains["critical length"])
    assert "`rnn_clip` clipped" in P.clipping_text(F.clipping_effect(t["runs"], t["curves"]))
    assert "no unclipped twin" in P.clipping_text(F.clipping_effect(t["runs"], t["curves"]))
    for builder in (P.success_rows, P.critical_rows, P.mitigation_rows, P.decay_rows):
        assert builder(pd.DataFrame()).empty
    assert "trained no runs" in P.cost_text(pd.DataFrame(columns=["task"]))


# ------------------------------------------------------- the report is prose over findings


def _python_cells(text: str) -> list[str]:
    return re.findall(r"(?ms)^```\{python\}[^\n]*\n(.*?)^```", text)


def test_report_has_at_most_150_lines_of_python():
    lines = [ln for cell in _python_cells(REPORT.read_text()) for ln in cell.splitlines()]
    assert 0 < len(lines) <= 150, len(lines)


def test_report_shows_no_html_and_no_markdown_walls():
    text = REPORT.read_text()
    code = "\n".join(_python_cells(text))
    assert "HTML(" not in code and "display(" not in code
    assert "to_html" not in text


def test_report_keeps_the_parameters_and_front_matter():
    text = REPORT.read_text()
    params = _python_cells(text)[0]
    assert "tags: [parameters]" in params
    for name in ("tables_dir", "figures_dir", "config", "config_hash", "config_files", "commands",
                 "snakemake_version", "renderer", "renderer_versions"):  # fmt: skip
        assert re.search(rf"(?m)^{name} = ", params), name
    for key in ("embed-resources: true", "html-math-method: mathml", "toc: true", "bibliography:"):
        assert key in text


def test_every_figure_and_table_of_the_report_is_referenced_and_every_citation_exists():
    from rnngrad.figures import FIGURES

    text = REPORT.read_text()
    labels = re.findall(r"#\| label: ((?:fig|tbl)-[\w-]+)", text)
    assert {f"fig-{n.replace('_', '-')}" for n in FIGURES} <= set(labels)
    prose = re.sub(r"(?ms)^```\{python\}.*?^```", "", text)
    for label in labels:
        assert f"@{label}" in prose, label
    bib = (REPORT.parent / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([\w-]+),", bib))
    cited = set(re.findall(r"@((?!fig-|tbl-|eq-)[a-z]+\d{4})", prose))
    assert cited and cited <= keys, cited - keys
    assert {"orvieto2023", "feng2024", "li2018", "gers2000", "jozefowicz2015"} <= cited


def test_inline_sentences_are_never_empty():
    # Quarto leaves an inline expression whose output is empty unevaluated in the page
    empty = pd.DataFrame()
    for text in (P.constraint_text(empty), P.width_text(empty), P.clipping_text(empty),
                 P.cost_text(pd.DataFrame(columns=["task"])), P.grouped([]), P.codes([]),
                 P.listing([]), P.prediction(None)):  # fmt: skip
        assert text.strip()
    check = pd.DataFrame({"variant": ["rnn_orthcon"], "probes": [6], "deviation": [2e-7]})
    assert P.constraint_text(check) == (
        "The orthogonal constraint of `rnn_orthcon` kept its spectral norm within "
        "2.00 × 10⁻⁷ of one at all 6 probes of its runs."
    )


def test_report_inline_expressions_cannot_print_nothing():
    text = re.sub(r"(?ms)^```\{python\}.*?^```", "", REPORT.read_text())
    exprs = re.findall(r"`\{python\} ([^`]*)`", text)
    assert len(exprs) > 30
    for expr in exprs:  # no literal empty string as a possible output
        assert '""' not in expr and "''" not in expr, expr


def test_width_text_lists_each_family_by_width_per_task():
    width = pd.DataFrame(
        {"task": "adding", "length": 1000, "family": ["lstm", "lstm", "rnn_tanh", "rnn_tanh"],
         "hidden_size": [32, 64, 64, 256], "rate": [-0.19, -0.2, -0.236, -0.223]}
    )  # fmt: skip
    assert P.width_text(width) == (
        "Decay rate by width: on adding at T = 1000, the lstm's -0.19 and -0.2 per step at "
        "H = 32 and 64 and the rnn_tanh's -0.236 and -0.223 per step at H = 64 and 256."
    )


def test_gain_text_reads_the_largest_gain():
    gain = {"remedy": "LRU", "variant": "lru", "baseline": "lstm", "task": "copy",
            "pairs": 3, "solved": 2, "solved_base": 0}  # fmt: skip
    assert P.gain_text(gain) == (
        "LRU (`lru` against `lstm`) on copy, 67% of 3 paired runs solved against 0%"
    )
    assert P.gain_text(None).startswith("none")


def test_kernel_text_counts_the_fallbacks_and_is_never_empty():
    from rnngrad.findings import KernelUse
    from rnngrad.prose import kernel_text

    assert kernel_text(KernelUse(3, 2, ["RNNGRAD_NATIVE=0", "no numba"])) == (
        "2 of 3 minGRU runs on the CPU trained with the torch fallback instead of the "
        "compiled kernel (RNNGRAD_NATIVE=0 and no numba)."
    )
    assert kernel_text(KernelUse(4, 0, [])) == (
        "All 4 minGRU runs on the CPU trained with the compiled kernel (numba)."
    )
    assert kernel_text(KernelUse()).startswith("No minGRU run")
