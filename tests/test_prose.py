"""rnngrad.prose: numbers, counts, lists and tables for the report; the report's sentences
(report/prose.md.j2 through rnngrad.sentences); and the report's own shape (prose over
findings: little Python, Markdown tables, no HTML output, no number typed by hand)."""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
import pytest

from rnngrad import prose as P
from rnngrad.sentences import TEMPLATES, Sentences

REPORT = Path(__file__).resolve().parents[1] / "report" / "report.qmd"
say = Sentences(TEMPLATES)


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
    assert say("per_decade", rate=-0.25) == "shrinks tenfold every 4 steps"
    assert say("per_decade", rate=0.01) == "does not shrink with distance"
    assert say("per_decade", rate=math.nan) == "n/a"
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
    text = say("prediction", row=row)
    assert "ρ = 0.8 [0.2, 0.95] over 11 variants" in text and "above zero" in text
    assert "75% of 4 (variant, length) pairs" in text
    assert "includes zero" in say("prediction", row={**row, "verdict": "no evidence"})
    assert "agreed" not in say("prediction", row={**row, "agreement": math.nan})
    assert "too few variants" in say("prediction", row={"rho": math.nan})
    assert "too few variants" in say("prediction", row={})
    assert "too few variants" in say("prediction", row=None)


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
    clipping = say("clipping", clip=F.clipping_effect(t["runs"], t["curves"]))
    assert "`rnn_clip` clipped" in clipping and "no unclipped twin" in clipping
    for builder in (P.success_rows, P.critical_rows, P.mitigation_rows, P.decay_rows):
        assert builder(pd.DataFrame()).empty
    assert "trained no runs" in say("cost", by_cell=pd.DataFrame(columns=["task"]))


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
    # a float is a labelled cell or, where its caption quotes values, a Quarto div
    labels = re.findall(
        r"#\| label: ((?:fig|tbl)-[\w-]+)|^::: \{#((?:fig|tbl)-[\w-]+)\}", text, re.M
    )
    labels = [a or b for a, b in labels]
    assert {f"fig-{n.replace('_', '-')}" for n in FIGURES} <= set(labels)
    prose = re.sub(r"(?ms)^```\{python\}.*?^```", "", text)
    for label in labels:
        assert f"@{label}" in prose, label
    bib = (REPORT.parent / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([\w-]+),", bib))
    cited = set(re.findall(r"@((?!fig-|tbl-|eq-)[a-z]+\d{4})", prose))
    assert cited and cited <= keys, cited - keys
    assert {"orvieto2023", "feng2024", "li2018", "gers2000", "jozefowicz2015"} <= cited


# "Nothing to say" for every sentence: empty findings, as a grid without runs gives them.
EMPTY = {
    "per_decade": {"rate": None},
    "width": {"width": pd.DataFrame()},
    "underflow": {"distance": math.nan, "decades": 37.9, "tiny": 1.18e-38},
    "ladder": {"budget": None},  # replaced below: a Budget
    "climb": {"climb": {}},
    "sequential": {"budget": None, "design": None},
    "seeds_per_cell": {"overview": None},
    "critical_lengths": {"critical": pd.DataFrame()},
    "prediction": {"row": None},
    "power": {"row": {}},
    "clipping": {"clip": pd.DataFrame()},
    "constraint": {"check": pd.DataFrame()},
    "gain": {"gain": None},
    "cost": {"by_cell": pd.DataFrame(columns=["task"])},
    "kernel": {"use": None},
    "agreement": {"summary": None},
    "budget_multiples": {"multiples": None},
    "loss_thresholds": {"thresholds": pd.DataFrame()},
    "footer": {"day": "2026-01-01", "renderer": "quarto", "versions": "", "python": "3.11",
               "pandas": "2.2", "torch": [], "snakemake": ""},
}  # fmt: skip


def _empty_values() -> dict:
    from rnngrad import findings as F
    from rnngrad.findings.quoted import budget_multiples

    values = dict(EMPTY)
    values["ladder"] = {"budget": F.Budget()}
    values["sequential"] = {"budget": F.Budget(), "design": F.SeedDesign(0, 0, 0, 0, 0)}
    values["seeds_per_cell"] = {"overview": F.Overview()}
    values["kernel"] = {"use": F.KernelUse()}
    values["agreement"] = {"summary": F.ScorecardSummary(0, 0, 0, 0, 0, 0, 0, 0, ())}
    values["budget_multiples"] = {"multiples": budget_multiples(pd.DataFrame())}
    return values


def test_every_sentence_has_words_for_nothing_to_say():
    # Quarto leaves an inline expression whose output is empty unevaluated in the page
    values = _empty_values()
    assert set(values) == set(say.names)  # a new sentence gets its empty case here
    for name, kwargs in values.items():
        assert say(name, **kwargs).strip(), name
    for text in (P.grouped([]), P.codes([]), P.listing([])):
        assert text.strip()


def test_sentences_render_by_name_as_one_line(tmp_path):
    wording = tmp_path / "wording.md.j2"
    wording.write_text(
        "{% macro two(n) -%}\n  {{ n | counted('run') }}\n    went   {{ 0.456 | pct }}.\n"
        "{%- endmacro %}\n{% macro blank(x) %}{% if x %}x{% endif %}{% endmacro %}\n"
    )
    words = Sentences(wording)
    assert words("two", n=3) == "3 runs went 46%."
    assert words.names == ["blank", "two"]
    with pytest.raises(KeyError, match=r"no sentence 'three'.*\['blank', 'two'\]"):
        words("three", n=1)
    with pytest.raises(ValueError, match="rendered empty"):
        words("blank", x=False)
    with pytest.raises(jinja2.UndefinedError):
        words("two")  # a value the macro reads but was not given is an error, not a blank
    with pytest.raises(FileNotFoundError):
        Sentences(tmp_path / "absent.md.j2")


def test_sentences_read_frames_as_rows_and_a_missing_value_as_missing():
    clip = pd.DataFrame({"variant": ["rnn_clip"], "clipped_share": [0.25], "clip_norm": [1.0],
                         "twin": [math.nan], "pairs": [0]})  # fmt: skip
    assert say("clipping", clip=clip) == (
        "`rnn_clip` clipped 25% of its steps at threshold 1 (the grid has no unclipped twin "
        "to compare it with)."
    )
    twin = clip.assign(twin="rnn", pairs=3, solved=2, solved_twin=1, diverged=0, diverged_twin=1)
    assert say("clipping", clip=twin) == (
        "`rnn_clip` clipped 25% of its steps at threshold 1; against `rnn` on the same 3 runs "
        "it solved 2 against 1, and diverged 0 times against 1."
    )
    check = pd.DataFrame({"variant": ["rnn_orthcon"], "probes": [6], "deviation": [2e-7]})
    assert say("constraint", check=check) == (
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
    assert say("width", width=width) == (
        "Decay rate by width: on adding at T = 1000, the lstm's -0.19 and -0.2 per step at "
        "H = 32 and 64 and the rnn_tanh's -0.236 and -0.223 per step at H = 64 and 256."
    )


def test_gain_text_reads_the_largest_gain():
    gain = {"remedy": "LRU", "variant": "lru", "baseline": "lstm", "task": "copy",
            "pairs": 3, "solved": 2, "solved_base": 0}  # fmt: skip
    assert say("gain", gain=gain) == (
        "LRU (`lru` against `lstm`) on copy, 67% of 3 paired runs solved against 0%"
    )
    assert say("gain", gain=None).startswith("none")


def test_kernel_text_counts_the_fallbacks_and_is_never_empty():
    from rnngrad.findings import KernelUse

    assert say("kernel", use=KernelUse(3, 2, ["RNNGRAD_NATIVE=0", "no numba"])) == (
        "2 of 3 minGRU runs on the CPU trained with the torch fallback instead of the "
        "compiled kernel (RNNGRAD_NATIVE=0 and no numba)."
    )
    assert say("kernel", use=KernelUse(4, 0, [])) == (
        "All 4 minGRU runs on the CPU trained with the compiled kernel (numba)."
    )
    assert say("kernel", use=KernelUse()).startswith("No minGRU run")


# ------------------------------------------------- the report's code: names and numbers


def _setup_tree() -> ast.Module:
    return ast.parse("\n".join(_python_cells(REPORT.read_text())[1:]))


def test_report_imports_by_name_and_shadows_nothing_it_imports():
    tree = _setup_tree()
    imported, assigned = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom | ast.Import):
            assert all(alias.name != "*" for alias in node.names), ast.unparse(node)
            imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            assigned.add(node.id)
        elif isinstance(node, ast.FunctionDef):
            assigned.add(node.name)
    assert not imported & assigned, imported & assigned
    # names that explain themselves, not the abbreviations issue 21 found
    cryptic = {"cfg", "ext", "dec", "top", "crit", "succ", "pred", "card", "ref", "r_rnn"}
    unclear = {n for n in assigned if len(n) < 3 or n in cryptic}
    assert not unclear, unclear


def test_every_sentence_the_report_asks_for_exists():
    asked = set(re.findall(r"say\(\"(\w+)\"", REPORT.read_text()))
    assert asked and asked <= set(say.names), asked - set(say.names)


def test_report_types_no_number_in_its_prose(report=REPORT):
    # what a reader sees of the .qmd's own words: no code, maths, citations or labels
    text = re.sub(r"(?ms)^---\n.*?^---\n", "", report.read_text(), count=1)
    captions = "\n".join(re.findall(r"(?m)^#\| (?:fig|tbl)-cap: (.*)$", text))
    text = re.sub(r"(?ms)^```.*?^```", "", text) + captions
    text = re.sub(
        r"\$\$[\s\S]*?\$\$|\$[^$]*\$|`[^`]*`|\{#[^}]*\}|@[\w-]+|^#+ .*$", "", text, flags=re.M
    )
    numbers = re.findall(r"[^\s(]*\d[^\s,;:.)]*", text)
    # names with digits, the method's fixed settings, a forget-gate bias of one and "a
    # rate of 0 means no decay"
    allowed = {"float64", "float32", "TF32", "L2", "log10", "95%", "90th", "1", "0"}
    assert set(numbers) <= allowed, set(numbers) - allowed


# ------------------------------------------- numbers the report quotes beside its tables


def test_reference_example_states_the_setup_of_its_table(monkeypatch):
    import rnngrad.reference
    from rnngrad.findings.quoted import reference_example

    shapes = []
    real = rnngrad.reference.elman_bptt

    def spy(x, params, **kwargs):
        shapes.append((x.shape, params.w_hh.shape))
        return real(x, params, **kwargs)

    monkeypatch.setattr(rnngrad.reference, "elman_bptt", spy)
    ref = reference_example(length=40, hidden=5, examples=7)
    # the caption's numbers are those of the batch reference_decay really ran
    assert ref.examples == 7 and set(shapes) == {((7, 40, 2), (5, 5))}
    assert (ref.length, ref.hidden, ref.farthest) == (40, 5, 39)
    assert ref.at_farthest in ref.table.columns and ref.table[ref.at_farthest].lt(1).all()


def test_loss_thresholds_are_the_mse_tasks_threshold_over_baseline():
    from rnngrad.findings.quoted import loss_thresholds

    runs = pd.DataFrame({"task": ["adding", "adding", "copy"], "metric_name": ["mse", "mse", "recall"],
                         "solve_threshold": [0.05, 0.05, 0.9], "baseline_loss": [1 / 6, 1 / 6, 0.3]})  # fmt: skip
    rows = loss_thresholds(runs)
    assert rows["task"].tolist() == ["adding"]
    assert rows["ratio"].iloc[0] == pytest.approx(0.3)
    assert say("loss_thresholds", thresholds=rows) == "adding: MSE 0.05 over 0.167"
    assert loss_thresholds(pd.DataFrame()).empty
    assert "no task" in say("loss_thresholds", thresholds=loss_thresholds(runs.iloc[2:]))


def test_budget_multiples_invert_the_scorecards_ratios():
    from rnngrad.findings.quoted import budget_multiples

    card = pd.DataFrame({"budget_ratio": [0.5, 0.25, math.nan, 0.0]})
    multiples = budget_multiples(card)
    assert (multiples.low, multiples.high, multiples.n) == (2.0, 4.0, 2)
    assert say("budget_multiples", multiples=multiples) == (
        "On the comparable rows the papers trained for 2 to 4 times this grid's examples."
    )
    assert say("budget_multiples", multiples=budget_multiples(card.iloc[:1])) == (
        "On the comparable rows the papers trained for 2 times this grid's examples."
    )
    assert budget_multiples(card.iloc[2:]).n == 0


def test_underflow_distance_in_float32():
    from rnngrad.findings.quoted import FLOAT32_TINY, underflow_distance

    assert FLOAT32_TINY == pytest.approx(1.1754944e-38)
    assert underflow_distance(-0.5) == pytest.approx(2 * 37.93, abs=0.01)
    assert math.isnan(underflow_distance(0.1)) and math.isnan(underflow_distance(None))
    text = say("underflow", distance=underflow_distance(-0.5), decades=37.9, tiny=FLOAT32_TINY)
    assert "1.18 × 10⁻³⁸" in text and "after about 76 steps" in text


def test_sweep_sentences():
    from rnngrad import findings as F

    assert say("climb", climb={"copy": "off_baseline", "adding": "solved"}) == (
        "solved by a majority of seeds on adding and a majority of seeds off the baseline on copy"
    )
    design = F.SeedDesign(lead_only=4, more_seeds=2, runs=10, runs_all_seeds=18, seeds=3)
    text = say("sequential", budget=F.Budget(), design=design)
    assert text.endswith(
        "always rest on all 3 seeds. Here 4 cells rest on the lead seed alone and 2 on more: "
        "10 runs, where every seed at every length reached would have taken 18."
    )
    assert say("sequential", budget=F.Budget(adaptive=False), design=design) == (
        "Every length a variant reached was trained with all 3 seeds."
    )
    assert say("ladder", budget=F.Budget()) == "climbed adaptively"
    assert say("seeds_per_cell", overview=F.Overview(seeds_min=2, seeds_max=3)) == "2 to 3 seeds"
    assert say("seeds_per_cell", overview=F.Overview(seeds_min=3, seeds_max=3)) == "3 seeds"
    row = {"variants": 5, "rho_needed": 0.9, "censored_above": 2, "censored_below": 0,
           "horizons_censored": 1, "distinct": 3}  # fmt: skip
    assert say("power", row=row) == (
        "With 5 variants a rank correlation must reach |ρ| ≥ 0.9 to be told from zero at the "
        "5% level; censoring ties ranks (2 solved the whole ladder and 1 horizons never fell "
        "to the ratio), leaving 3 distinct critical lengths, so the test has less power than "
        "its variant count suggests."
    )
    critical = pd.DataFrame({"variant": ["a", "b", "c"], "critical_length": [50.0, math.nan, 50.0],
                             "censored": [True, False, True]})  # fmt: skip
    assert say("critical_lengths", critical=critical) == (
        "≥ 50 for `a` and `c`; none (the first length failed) for `b`"
    )


def test_cost_names_the_fastest_and_slowest_cell_per_task():
    by_cell = pd.DataFrame({"task": ["adding"] * 2 + ["copy"], "length": [100, 100, 20],
                            "cell": ["lstm", "gru", "lru"], "ms_per_step": [3.0, 1.5, 2.0],
                            "ratio": [2.0, 1.0, 1.0]})  # fmt: skip
    assert say("cost", by_cell=by_cell) == (
        "On adding at T = 100, a training step took from 1.5 ms (gru) to 3 ms (lstm), 2 times "
        "as long. On copy at T = 20, a training step took 2 ms (lru)."
    )


def test_footer_names_the_renderer():
    text = say("footer", day="2026-01-02", renderer="quarto", versions="Quarto 1.7.34",
               python="3.11.9", pandas="2.2.3", torch=["2.6.0"], snakemake="9.1.0")  # fmt: skip
    assert text == (
        "*Rendered on 2026-01-02 by the **quarto** renderer (Quarto 1.7.34); Python 3.11.9, "
        "pandas 2.2.3, torch 2.6.0 (training), Snakemake 9.1.0.*"
    )
