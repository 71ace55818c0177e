"""rnngrad.render: one set of checks for the page Quarto renders and the fallback's.

Every check in the first part runs on four pages: the fixture document
(tests/render_fixture/fixture.qmd) and the real report on the smoke DAG's results,
each rendered by Quarto and by the fallback. It reads what a reader gets (numbered
links, a reference list, maths, embedded images, nothing fetched), not either
renderer's own markup. The Quarto pages need `quarto` on PATH (`make quarto` installs
the kit's Quarto 1.7.34 into .tools/quarto, which `make test` puts on PATH): without
it they are skipped, except in CI (CI=true), where a skip would hide the Quarto path
and is a failure.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from rnngrad.render import RenderError, quarto_command, render_report, renderer_versions
from tests.ci import skip_unless_ci

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "report" / "report.qmd"
FIXTURE = Path(__file__).with_name("render_fixture") / "fixture.qmd"
QUARTO_VERSION = "1.7.34"  # the kit's (../shared/tools/quarto), which CI installs
KINDS = {"fig": "Figure", "tbl": "Table", "eq": "Equation"}


def _need_quarto() -> None:
    if shutil.which("quarto"):
        return
    reason = "quarto is not on PATH (`make quarto` installs Quarto 1.7.34 into .tools/quarto)"
    skip_unless_ci(reason, "the Quarto tests must run")


class _Page(HTMLParser):
    """What a reader gets from a page: visible text, ids in order, links, resources."""

    HIDDEN = {"script", "style", "math", "svg", "title"}

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.html, self.ids, self.links, self.resources = html, {}, [], []
        self.maths, self.block_maths, self._text, self._hidden, self._link = 0, 0, [], 0, None
        self.feed(html)
        self.text = re.sub(r"\s+", " ", "".join(self._text))  # \xa0 (Quarto's) is a space too

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if a.get("id"):
            self.ids.setdefault(a["id"], len(self.ids))
        self.maths += tag == "math"
        self.block_maths += tag == "math" and a.get("display") == "block"
        self._hidden += tag in self.HIDDEN
        if tag == "a":
            self._link = {"href": a.get("href", ""), "class": a.get("class", ""), "text": ""}
            self.links.append(self._link)
        for key in ("src", "href", "srcset", "data", "poster"):
            if a.get(key) and not (tag == "a" and key == "href"):
                self.resources.append((tag, key, a[key]))

    def handle_endtag(self, tag):
        self._hidden -= tag in self.HIDDEN
        if tag == "a":
            self._link = None

    def handle_data(self, data):
        if not self._hidden:
            self._text.append(data)
            if self._link is not None:
                self._link["text"] += data


@dataclass
class Rendered:
    renderer: str
    source: Path  # the .qmd
    path: Path
    seconds: float

    @property
    def page(self) -> _Page:
        return _Page(self.path.read_text(encoding="utf-8"))

    def labels(self) -> list[str]:
        """The figure, table and equation labels the document defines."""
        text = self.source.read_text()
        found = re.findall(
            r"#\|\s*label:\s*((?:fig|tbl)-[\w-]*\w)|\{#((?:fig|tbl|eq)-[\w-]*\w)", text
        )
        return list(dict.fromkeys(a or b for a, b in found))


RENDERERS = ["quarto", "jupyter-fallback"]


@pytest.fixture(scope="module")
def fixture_params(tmp_path_factory) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = tmp_path_factory.mktemp("figures")
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([1, 3, 2])
    fig.savefig(figures / "saved.png")
    plt.close(fig)
    return {
        "figures_dir": str(figures),
        "config": {"variants": {"rnn": {"cell": "rnn_tanh"}, "gru": {"cell": "gru"}}},
        "config_hash": "00123",  # YAML would read it as a number unless quoted
        "config_files": ["config/smoke.yaml"],
        "commands": ["snakemake --cores 2"],
        "snakemake_version": "9.1.0",
    }


def smoke_params(smoke_run: Path) -> dict:
    """The parameters workflow/scripts/report.py passes, for the smoke DAG's results."""
    from rnngrad.config import config_hash, load_config

    cfg = load_config(smoke_run / "config" / "smoke.yaml")
    return {
        "tables_dir": str(smoke_run / "results" / "tables"),
        "figures_dir": str(smoke_run / "results" / "figures"),
        "config": cfg,
        "config_hash": config_hash(cfg),
        "config_files": ["config/smoke.yaml"],
        "commands": ["snakemake --cores 2 --configfile config/smoke.yaml"],
        "snakemake_version": "9.0.0",
    }


def _document(request, document: str) -> tuple[Path, dict]:
    if document == "fixture":
        return FIXTURE, request.getfixturevalue("fixture_params")
    return REPORT, smoke_params(request.getfixturevalue("smoke_run"))  # one DAG per session


@pytest.fixture(scope="module")
def _pages() -> dict:
    return {}


def _rendered(request, pages: dict, document: str, renderer: str) -> Rendered:
    """Each (document, renderer) rendered once per module; a failure is kept, not retried."""
    if renderer == "quarto":
        _need_quarto()
    if (document, renderer) not in pages:
        qmd, params = _document(request, document)
        out = request.getfixturevalue("tmp_path_factory").mktemp(f"{document}-{renderer}")
        start = time.perf_counter()
        try:
            used = render_report(qmd, out / "report.html", params, renderer=renderer)
            assert used == renderer
            pages[document, renderer] = Rendered(
                renderer, qmd, out / "report.html", time.perf_counter() - start
            )
        except Exception as err:  # kept: re-raised by every test that needs it
            pages[document, renderer] = err
    if isinstance(pages[document, renderer], Exception):
        raise pages[document, renderer]
    return pages[document, renderer]


@pytest.fixture(params=[(d, r) for d in ("fixture", "smoke") for r in RENDERERS], ids="-".join)
def rendered(request, _pages) -> Rendered:
    return _rendered(request, _pages, *request.param)


@pytest.fixture(params=RENDERERS)
def fixture_page(request, _pages) -> Rendered:
    return _rendered(request, _pages, "fixture", request.param)


# ----------------------------------------------------- the same checks for both renderers


def test_cross_references_are_numbered_links(rendered):
    page, labels = rendered.page, rendered.labels()
    present = sorted((page.ids[lab], lab) for lab in labels if lab in page.ids)
    number = {}
    for kind in KINDS:
        for n, (_, lab) in enumerate(((i, lab) for i, lab in present if lab.startswith(kind)), 1):
            number[lab] = n
    xrefs = [link for link in page.links if re.match(r"#(fig|tbl|eq)-", link["href"])]
    linked = {link["href"][1:] for link in xrefs}
    assert {lab.split("-")[0] for lab in linked} == set(KINDS), linked  # each kind referenced
    for link in xrefs:
        lab = link["href"][1:]
        assert lab in number, f"a link to {lab}, which the page lacks"
        text = re.sub(r"\s+", " ", link["text"]).strip()
        assert text in (f"{KINDS[lab.split('-')[0]]} {number[lab]}", str(number[lab])), link
    for kind in ("fig", "tbl"):  # captions numbered in order
        count = sum(lab.startswith(kind) for lab in number)
        for n in range(1, count + 1):
            assert f"{KINDS[kind]} {n}:" in page.text, (kind, n)


def test_citations_link_to_a_reference_list(rendered):
    page, text = rendered.page, rendered.source.read_text()
    bib = rendered.source.with_name("references.bib").read_text()
    keys = [k for k in re.findall(r"@\w+\{([^,\s]+),", bib) if re.search(rf"@{k}\b", text)]
    assert keys
    entries = re.findall(r'<div id="ref-([^"]+)" class="csl-entry"', page.html)
    assert set(keys) <= set(entries), set(keys) - set(entries)
    cited = {link["href"][5:] for link in page.links if link["href"].startswith("#ref-")}
    assert cited == set(entries)  # every entry is cited by a link, and only those are listed


def test_maths_is_mathml(rendered):
    page = rendered.page
    assert page.maths > 0 and page.block_maths > 0
    assert not re.search(r"\\(frac|left|prod|mathrm)|\$\$", page.text)  # no TeX left over


def test_every_image_is_embedded(rendered):
    page = rendered.page
    images = [v for tag, key, v in page.resources if tag == "img" and key == "src"]
    figures = [lab for lab in rendered.labels() if lab.startswith("fig-")]
    assert len(images) >= len(figures)
    assert all(v.startswith("data:image/") for v in images), [v[:60] for v in images]


def test_nothing_is_fetched_from_the_network(rendered):
    page = rendered.page
    for tag, key, value in page.resources:
        assert value.startswith(("data:", "#")), (tag, key, value[:100])
        if value.startswith("data:text/css"):
            head, _, body = value.partition(",")
            css = (
                base64.b64decode(body).decode()
                if head.endswith(";base64")
                else urllib.parse.unquote(body)
            )
            assert not re.search(r"url\(\s*['\"]?(https?:)?//|@import", css), tag
    styles = re.findall(r"<style[^>]*>(.*?)</style>", page.html, flags=re.S)
    assert not any(re.search(r"url\(\s*['\"]?(https?:)?//|@import", s) for s in styles)


def test_visible_text_has_no_missing_values_or_unresolved_references(rendered):
    text = rendered.page.text
    for bad in (r"\bnan\b", r"\bNaN\b", r"\bNone\b", r"<NA>", r"\?@", r"@(fig|tbl|eq)-"):
        hit = re.search(rf".{{0,60}}{bad}.{{0,60}}", text)
        assert not hit, (bad, hit and hit.group(0))
    assert "{python}" not in text


def test_footer_names_the_renderer_and_its_version(rendered):
    text = rendered.page.text
    assert rendered.renderer in text
    versions = renderer_versions(rendered.renderer)
    assert versions in text
    if rendered.renderer == "quarto" and os.environ.get("CI") == "true":
        assert f"Quarto {QUARTO_VERSION}" in text


def test_only_the_html_reaches_the_output_folder(rendered):
    assert [p.name for p in rendered.path.parent.iterdir()] == ["report.html"]
    leftovers = [p.name for p in rendered.source.parent.iterdir() if p.suffix == ".html"]
    leftovers += [p.name for p in rendered.source.parent.glob("*_files")]
    assert not leftovers and not (rendered.source.parent / ".quarto").exists()


def test_fixture_parameters_and_inline_expressions(fixture_page):
    page = fixture_page.page
    assert f"Rendered by the {fixture_page.renderer} renderer" in page.text
    assert "config hash 00123; Snakemake 9.1.0." in page.text  # a str stays a str
    assert "The config names 2 variants: gru, rnn." in page.text  # a mapping arrives whole
    assert "the best loss ratio is 0.02, reached by gru (a string is text" in page.text
    assert "Markdown: a*b)" in page.text and "<strong>bold</strong> is Markdown" in page.html
    assert "Pascanu, Mikolov, and Bengio (2013)" in page.text  # citeproc: Chicago author-date
    assert "(Hochreiter and Schmidhuber 1997; Cho et al. 2014, 1726)" in page.text


# ------------------------------------------------------------------------ Quarto's own marks


def test_quarto_marks_its_cross_references(request, _pages):
    page = _rendered(request, _pages, "fixture", "quarto").page
    xrefs = [link for link in page.links if re.match(r"#(fig|tbl|eq)-", link["href"])]
    assert xrefs and all("quarto-xref" in link["class"] for link in xrefs)


def _executed_notebook(qmd: Path, params: dict, tmp: Path) -> dict:
    """The notebook Quarto executed (keep-ipynb) for a copy of `qmd` and its siblings."""
    for src in qmd.parent.iterdir():
        if src.is_file():
            shutil.copyfile(src, tmp / src.name)
    params_file = tmp / "params.yml"
    params_file.write_text(json.dumps(params))  # JSON is YAML
    env = {**os.environ, "QUARTO_PYTHON": sys.executable}
    cmd = [*quarto_command(tmp / qmd.name, params_file), "-M", "keep-ipynb:true"]
    proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp / f"{qmd.stem}.quarto_ipynb").read_text())


@pytest.mark.parametrize("document", ["fixture", "smoke"])
def test_quarto_notebook_emits_no_html_or_javascript(document, request, tmp_path):
    """A text/html output makes Quarto load jQuery and require.js from a CDN."""
    _need_quarto()
    nb = _executed_notebook(*_document(request, document), tmp_path)
    bad = [
        (i, mime)
        for i, cell in enumerate(nb["cells"])
        for out in cell.get("outputs", [])
        for mime in out.get("data", {})
        if mime in ("text/html", "application/javascript")
    ]
    assert not bad, f"cells with HTML or JavaScript outputs: {bad}"


# ------------------------------------------------------------------- errors and file handling

BROKEN = {
    "unresolved": ("See @fig-missing.\n", "fig-missing"),
    "failing-cell": ("```{python}\n1 / 0\n```\n", "ZeroDivisionError"),
    "failing-inline": ("Value: `{python} 1 / 0`.\n", "ZeroDivision"),
}
CASES = [
    (c, r) for c in sorted(BROKEN) for r in RENDERERS if (c, r) != ("failing-inline", "quarto")
]


@pytest.mark.parametrize(("case", "renderer"), CASES)
def test_a_broken_report_is_an_error_and_writes_nothing(case, renderer, tmp_path):
    if renderer == "quarto":
        _need_quarto()
    body, message = BROKEN[case]
    qmd = tmp_path / "src" / f"{case}.qmd"
    qmd.parent.mkdir()
    qmd.write_text(
        f"---\ntitle: {case}\njupyter: python3\n---\n\n```{{python}}\nx = 1\n```\n\n{body}"
    )
    out = tmp_path / "out" / "report.html"
    with pytest.raises(RenderError, match=f"(?s){case}.qmd.*{message}|{message}.*{case}.qmd"):
        render_report(qmd, out, {}, renderer)
    assert not out.exists() and (not out.parent.exists() or not any(out.parent.iterdir()))


@pytest.mark.parametrize("renderer", RENDERERS)
def test_an_empty_inline_value_is_left_as_quarto_leaves_it(renderer, tmp_path):
    """Quarto keeps the source of an inline expression whose value is empty: so does the
    fallback, and the no-`{python}`-in-the-text check catches it in a report."""
    if renderer == "quarto":
        _need_quarto()
    qmd = tmp_path / "empty.qmd"
    qmd.write_text("---\ntitle: empty\njupyter: python3\n---\n\nA `{python} ''` B `{python} 1`.\n")
    render_report(qmd, tmp_path / "out" / "empty.html", {}, renderer)
    assert "A {python} '' B 1." in _Page((tmp_path / "out" / "empty.html").read_text()).text


def test_unknown_renderer_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="jupyter-fallback"):
        render_report(REPORT, tmp_path / "x.html", {}, renderer="pandoc")


def test_auto_picks_quarto_only_when_it_is_on_path(fixture_params, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # the venv: no quarto
    out = tmp_path / "auto.html"
    assert render_report(FIXTURE, out, fixture_params) == "jupyter-fallback"
    assert "jupyter-fallback renderer" in _Page(out.read_text()).text
