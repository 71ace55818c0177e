"""rnngrad.render: the fallback renders report/report.qmd into one offline HTML file.

The Quarto path runs against a stand-in `quarto` script (Quarto is not installed in
the test environment): it checks the command line and the file handling around it.
"""

from __future__ import annotations

import json
import os
import re
import stat
import textwrap
from pathlib import Path

import pytest

from rnngrad.figures import FIGURES
from rnngrad.render import RenderError, quarto_command, render_report

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "report" / "report.qmd"
TABLE_IDS = [
    "tbl-reference",
    "tbl-tasks",
    "tbl-variants",
    "tbl-grid",
    "tbl-decay",
    "tbl-success",
    "tbl-cost",
]


def _prose(html: str) -> str:
    """The visible text: no styles, maths, images or tags."""
    text = re.sub(r"<style.*?</style>", " ", html, flags=re.S)
    text = re.sub(r"<math.*?</math>", " ", text, flags=re.S)
    text = re.sub(r"<img[^>]*>", " ", text)
    return re.sub(r"<[^>]+>", " ", text)


@pytest.fixture(scope="module")
def report_html(results_tree, tables_dir, figures_dir, tmp_path_factory) -> str:
    import yaml

    root, config = results_tree
    cfg = tmp_path_factory.mktemp("cfg") / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    out = tmp_path_factory.mktemp("report") / "report.html"
    used = render_report(
        REPORT,
        out,
        {
            "tables_dir": tables_dir,
            "figures_dir": figures_dir,
            "config": cfg,
            "commands": ["snakemake --cores 2 --configfile config/smoke.yaml"],
            "snakemake_version": "9.27.1",
        },
        renderer="jupyter-fallback",
    )
    assert used == "jupyter-fallback"
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # nothing else left
    return out.read_text()


def test_every_figure_is_embedded(report_html):
    for name in FIGURES:
        label = "fig-" + name.replace("_", "-")
        m = re.search(rf'<figure id="{label}"[^>]*>(.*?)</figure>', report_html, re.S)
        assert m, label
        assert '<img src="data:image/png;base64,' in m.group(1), label
    sources = re.findall(r'<img[^>]*src="([^"]*)"', report_html)
    assert sources and all(s.startswith("data:") for s in sources)


def test_every_table_is_present(report_html):
    for label in TABLE_IDS:
        m = re.search(rf'<div id="{label}" class="table">.*?<table', report_html, re.S)
        assert m, label


def test_cross_references_resolve_to_numbered_links(report_html):
    prose = _prose(report_html)
    assert "?@" not in prose and not re.search(r"@(fig|tbl|eq)-", prose)
    assert re.search(r'<a href="#fig-decay-init">Figure 1</a>', report_html)
    assert re.search(r'<a href="#eq-bound">Equation 1</a>', report_html)
    captions = re.findall(r"<figcaption>(Figure \d+):", report_html)
    assert captions == [f"Figure {i}" for i in range(1, len(FIGURES) + 1)]


def test_no_missing_values_in_prose(report_html):
    prose = _prose(report_html)
    for bad in (r"\bnan\b", r"\bNaN\b", r"\bNone\b", r"<NA>", r"\bNaT\b", r"\binf\b"):
        assert not re.search(bad, prose), (bad, re.search(rf".{{80}}{bad}.{{80}}", prose, re.S))
    assert "{python}" not in prose


def test_maths_is_mathml_and_the_page_needs_no_script(report_html):
    assert report_html.count("<math") > 10
    assert 'display="block"' in report_html
    assert "mathjax" not in report_html.lower()
    assert "<script" not in report_html
    assert not re.search(r'(src|href)="(https?:)?//[^"]*\.(js|css)"', report_html)


def test_citations_and_references(report_html):
    assert '<a href="#ref-pascanu2013">Pascanu et al. 2013</a>' in report_html
    refs = re.search(r'<ol class="references">(.*?)</ol>', report_html, re.S)
    assert refs
    for key in (
        "bengio1994",
        "hochreiter1997",
        "pascanu2013",
        "le2015",
        "arjovsky2016",
        "tallec2018",
        "lezcano2019",
        "cho2014",
        "saxe2014",
    ):
        assert f'id="ref-{key}"' in refs.group(1), key


def test_footer_names_the_renderer_and_versions(report_html):
    prose = _prose(report_html)
    assert "jupyter-fallback" in prose
    assert "nbconvert" in prose and "pandas" in prose and "torch 2.13.0+cpu" in prose
    assert "Snakemake 9.27.1" in prose


def test_diverged_run_is_visible(report_html):
    assert re.search(r"diverged.*rnn.*on adding at T = 20, seed 1", _prose(report_html), re.S)


def test_commands_and_config_hash_are_reported(report_html):
    prose = _prose(report_html)
    assert "snakemake --cores 2 --configfile config/smoke.yaml" in re.sub(
        r"<[^>]+>", "", report_html
    )
    assert "abcdef123456" in prose  # the config hash of the runs


# ------------------------------------------------------------ the fallback's machinery

SMALL = textwrap.dedent(
    r"""
    ---
    title: "Small"
    bibliography: refs.bib
    execute:
      echo: false
    ---

    ```{python}
    #| tags: [parameters]
    n = 1
    ```

    ```{python}
    from IPython.display import Markdown
    word = "a*b"
    ```

    Inline: `{python} n + 1`, `{python} word`, `{python} Markdown("**bold**")` and
    $e^{i\pi} + 1 = 0$, see @fig-pic and @eq-one [@doe2020, p. 3].

    $$ x = 1 $$ {#eq-one}

    ![A picture](pic.png){#fig-pic}

    ```{python}
    #| eval: false
    raise RuntimeError("not run")
    ```

    ```{python}
    print("printed")
    ```
    """
)
BIB = "@article{doe2020,\n  author = {Doe, Jane and Roe, Rick},\n  title = {A {Title}},\n  journal = {J},\n  year = {2020}\n}\n"


def test_fallback_injects_params_and_evaluates_inline_code(tmp_path):
    (tmp_path / "small.qmd").write_text(SMALL)
    (tmp_path / "refs.bib").write_text(BIB)
    (tmp_path / "pic.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    out = tmp_path / "out" / "small.html"
    assert (
        render_report(tmp_path / "small.qmd", out, {"n": 41}, "jupyter-fallback")
        == "jupyter-fallback"
    )
    html = out.read_text()
    assert "Inline: 42, a*b, <strong>bold</strong>" in html  # a str is text, not markdown
    assert '<a href="#fig-pic">Figure 1</a>' in html and '<a href="#eq-one">Equation 1</a>' in html
    assert '(<a href="#ref-doe2020">Doe and Roe 2020</a>, p. 3)' in html
    assert '<img src="data:image/png;base64,' in html
    assert "printed" in html and "not run" not in html
    assert html.count("<math") == 2


def test_unresolved_reference_is_an_error(tmp_path):
    (tmp_path / "bad.qmd").write_text("---\ntitle: x\n---\n\nSee @fig-missing.\n")
    with pytest.raises(RenderError, match="fig-missing"):
        render_report(tmp_path / "bad.qmd", tmp_path / "bad.html", {}, "jupyter-fallback")
    assert not (tmp_path / "bad.html").exists()


def test_failing_cell_is_an_error_naming_the_report(tmp_path):
    (tmp_path / "fail.qmd").write_text("---\ntitle: x\n---\n\n```{python}\n1 / 0\n```\n")
    with pytest.raises(RenderError, match="fail.qmd"):
        render_report(tmp_path / "fail.qmd", tmp_path / "fail.html", {}, "jupyter-fallback")


def test_unknown_renderer_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="jupyter-fallback"):
        render_report(REPORT, tmp_path / "x.html", {}, renderer="pandoc")


# ------------------------------------------------------------------------ quarto path


def test_quarto_command_passes_params_and_offline_options(tmp_path):
    params = {"tables_dir": "/t", "n": 3, "flag": True, "cmds": ["a"], "hash": "0123"}
    cmd = quarto_command(tmp_path / "r.qmd", params, tmp_path / "p.yml")
    assert cmd[:3] == ["quarto", "render", str(tmp_path / "r.qmd")]
    joined = " ".join(cmd)
    for part in (
        "-P tables_dir:/t",
        "-P n:3",
        "-P flag:true",
        "-M embed-resources:true",
        "-M html-math-method:mathml",
        f"--execute-params {tmp_path / 'p.yml'}",
    ):
        assert part in joined
    # a list, and a string YAML would read as a number, go through the params file
    assert "cmds" not in joined and "hash" not in joined


def test_quarto_render_of_a_copy_beside_the_output(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "quarto-args.json"
    fake = bin_dir / "quarto"
    fake.write_text(
        "#!/usr/bin/env python3\n"
        "import json, pathlib, sys\n"
        "args = sys.argv[1:]\n"
        "if args == ['--version']:\n"
        "    print('1.6.0'); sys.exit(0)\n"
        f"pathlib.Path({str(log)!r}).write_text(json.dumps({{'args': args, 'cwd': str(pathlib.Path.cwd()),"
        " 'files': sorted(p.name for p in pathlib.Path.cwd().iterdir())}))\n"
        "src = pathlib.Path(args[1])\n"
        "src.with_suffix('.html').write_text('<html>rendered by quarto</html>')\n"
        "(src.parent / '.quarto').mkdir(exist_ok=True)\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "results" / "report" / "report.html"
    used = render_report(REPORT, out, {"tables_dir": "results/tables", "commands": ["x"]})
    assert used == "quarto"
    assert out.read_text() == "<html>rendered by quarto</html>"
    seen = json.loads(log.read_text())
    assert Path(seen["cwd"]) == out.parent
    assert any(f.endswith(".qmd") for f in seen["files"]) and "references.bib" in seen["files"]
    assert f"tables_dir:{Path('results/tables').resolve()}" in seen["args"]
    assert "renderer:quarto" in seen["args"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]
