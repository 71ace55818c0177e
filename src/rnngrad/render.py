"""Render report/report.qmd to one self-contained HTML file: Quarto, or the fallback.

`render_report` uses `quarto render` when quarto is on PATH; otherwise the fallback
renders the same .qmd with the Jupyter stack alone:

1. jupytext reads the .qmd as R Markdown (the same ```{python} chunk syntax; its
   own "qmd" format would call quarto);
2. the parameters go in a cell after the cell tagged `parameters` (as Quarto does),
   and each markdown cell's inline expressions (`{python} expr`) are evaluated in
   the kernel just before it, with Quarto's rules for their output;
3. nbclient executes the notebook with the current interpreter's ipykernel;
4. code is never shown; figure and table cells (`#| label: fig-...`, `#| fig-cap:`)
   become numbered figures and tables, `@fig-...` references numbered links,
   `[@key]` citations author-date links with a reference list from the .bib file,
   and $...$ / $$...$$ maths MathML (latex2mathml): the page needs no script and
   no network, and images are embedded as data URIs;
5. nbconvert's HTMLExporter writes the HTML, which is renamed into place.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import os
import re
import shutil
import subprocess
import sys
import unicodedata
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from rnngrad.io import write_text

__all__ = ["render_report", "quarto_command", "RENDERERS", "RenderError", "renderer_versions"]

RENDERERS = ("auto", "quarto", "jupyter-fallback")
PATH_PARAMS = ("tables_dir", "figures_dir", "config")  # and any key ending in _dir/_path/_file


class RenderError(RuntimeError):
    """The report could not be rendered; the message names the file and the cause."""


def render_report(
    qmd: str | Path,
    out_html: str | Path,
    params: Mapping[str, Any] | None = None,
    renderer: str = "auto",
    timeout: int = 1800,
) -> str:
    """Render `qmd` to the self-contained HTML file `out_html`.

    Args:
        qmd: the Quarto document (report/report.qmd).
        out_html: the HTML file to write (atomically).
        params: report parameters (tables_dir, figures_dir, config, ...). Path
            parameters are made absolute. `renderer` and `renderer_versions` are
            added, so the report's footer can name what rendered it.
        renderer: "auto" (quarto when on PATH), "quarto" or "jupyter-fallback".
        timeout: seconds allowed per cell (fallback) or for the whole render (quarto).

    Returns:
        The renderer used: "quarto" or "jupyter-fallback".

    Raises:
        ValueError: unknown renderer. RenderError: the render failed.

    Example:
        >>> render_report("report/report.qmd", "results/report/report.html",
        ...               {"tables_dir": "results/tables"})  # doctest: +SKIP
        'jupyter-fallback'
    """
    if renderer not in RENDERERS:
        raise ValueError(f"unknown renderer {renderer!r}; options are {list(RENDERERS)}")
    qmd, out_html = Path(qmd).resolve(), Path(out_html).resolve()
    if not qmd.is_file():
        raise FileNotFoundError(f"report source not found: {qmd}")
    if renderer == "auto":
        renderer = "quarto" if shutil.which("quarto") else "jupyter-fallback"
    params = {k: _absolute(k, v) for k, v in (params or {}).items()}
    params.setdefault("renderer", renderer)
    params.setdefault("renderer_versions", renderer_versions(renderer))
    out_html.parent.mkdir(parents=True, exist_ok=True)
    if renderer == "quarto":
        _render_quarto(qmd, out_html, params, timeout)
    else:
        _render_fallback(qmd, out_html, params, timeout)
    return renderer


def _absolute(key: str, value: Any) -> Any:
    if isinstance(value, str | Path) and (
        key in PATH_PARAMS or key.endswith(("_dir", "_path", "_file"))
    ):
        return str(Path(value).resolve())
    return value


def renderer_versions(renderer: str) -> str:
    """The versions of the tools a renderer uses, as one line for the report's footer."""
    from importlib.metadata import PackageNotFoundError, version

    if renderer == "quarto":
        try:
            out = subprocess.run(
                ["quarto", "--version"], capture_output=True, text=True, check=True
            )
            return f"Quarto {out.stdout.strip()}"
        except (OSError, subprocess.CalledProcessError):
            return "Quarto (version unknown)"
    names = ["jupytext", "nbclient", "nbconvert", "ipykernel", "latex2mathml"]
    parts = []
    for name in names:
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} absent")
    return ", ".join(parts)


# ----------------------------------------------------------------------------- quarto


def _as_flag(value: Any) -> str | None:
    # The text of `-P key:value` when YAML reads it back as the same value, else None.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float) and "\n" not in str(value):
        try:
            return str(value) if yaml.safe_load(str(value)) == value else None
        except yaml.YAMLError:
            return None
    return None


def quarto_command(qmd: Path, params: Mapping[str, Any], params_file: Path | None = None) -> list:
    """The `quarto render` command line for a copy of the report.

    Scalars that YAML reads back unchanged go as `-P key:value`; the others (lists,
    mappings, strings that would change type) belong in `params_file`, passed with
    --execute-params .
    """
    cmd = ["quarto", "render", str(qmd), "--to", "html"]
    cmd += ["-M", "embed-resources:true", "-M", "html-math-method:mathml"]
    for key, value in params.items():
        flag = _as_flag(value)
        if flag is not None:
            cmd += ["-P", f"{key}:{flag}"]
    if params_file is not None:
        cmd += ["--execute-params", str(params_file)]
    return cmd


def _file_params(params: Mapping[str, Any]) -> dict:
    """The parameters that cannot travel as -P key:value."""
    return {k: v for k, v in params.items() if _as_flag(v) is None}


def _render_quarto(qmd: Path, out_html: Path, params: Mapping, timeout: int) -> None:
    # Quarto's --output takes a file name, not a path: render a copy beside the output.
    folder = out_html.parent
    stem = f"{out_html.stem}-render-{os.getpid()}"
    copy = folder / f"{stem}.qmd"
    extras = [
        p for p in qmd.parent.iterdir() if p.suffix in (".bib", ".csl") or p.name == "_quarto.yml"
    ]
    copied = [copy, *(folder / p.name for p in extras)]
    complex_params = _file_params(params)
    params_file = folder / f"{stem}-params.yml" if complex_params else None
    scratch = [d for d in (folder / ".quarto", folder / f"{stem}_files") if not d.exists()]
    try:
        shutil.copyfile(qmd, copy)
        for p in extras:
            if not (folder / p.name).exists():
                shutil.copyfile(p, folder / p.name)
            else:
                copied.remove(folder / p.name)
        if params_file is not None:
            params_file.write_text(
                yaml.safe_dump(json.loads(json.dumps(complex_params, default=str)))
            )
        env = {**os.environ, "QUARTO_PYTHON": sys.executable}
        proc = subprocess.run(
            quarto_command(copy, params, params_file),
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        produced = folder / f"{stem}.html"
        if proc.returncode != 0 or not produced.is_file():
            raise RenderError(
                f"quarto render of {qmd} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
            )
        os.replace(produced, out_html)
    finally:
        for p in [*copied, *([params_file] if params_file else [])]:
            p.unlink(missing_ok=True)
        for d in scratch:  # Quarto's working folders, unless they were there before
            shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------- fallback

_OPTION = re.compile(r"^#\|\s?(.*)$")
_INLINE = re.compile(r"(?<!`)`\{python\}[ \t]+([^`]+)`")
_LABEL = re.compile(r"\{#((?:fig|tbl|eq)-[\w-]*\w)[^}]*\}")
_XREF = re.compile(r"\[?-?@((fig|tbl|eq)-[\w-]*\w)\]?")
_KINDS = {"fig": "Figure", "tbl": "Table", "eq": "Equation"}
_INLINE_HELPER = '''
def _rnngrad_inline(exprs):
    """Evaluate inline expressions as Quarto does: the display formatter's mime bundle."""
    import json
    ip = get_ipython()
    out = []
    for expr in exprs:
        data, _ = ip.display_formatter.format(eval(expr, ip.user_ns))
        out.append(data)
    print(json.dumps(out))
'''


def _front_matter(text: str) -> dict:
    m = re.match(r"\s*---[ \t]*\n(.*?)\n---[ \t]*\n", text, re.S)
    return (yaml.safe_load(m.group(1)) or {}) if m else {}


def _options(source: str) -> tuple[dict, str]:
    lines = source.splitlines()
    opts = [m.group(1) for m in map(_OPTION.match, lines) if m]
    code = "\n".join(line for line in lines if not _OPTION.match(line))
    return (yaml.safe_load("\n".join(opts)) or {}) if opts else {}, code


def _render_fallback(qmd: Path, out_html: Path, params: Mapping, timeout: int) -> None:
    import jupytext
    import nbformat
    from nbconvert import HTMLExporter

    text = qmd.read_text()
    meta = _front_matter(text)
    nb = jupytext.reads(text, fmt="Rmd")
    cells = [
        c for c in nb.cells if not (c.cell_type == "raw" and c.source.lstrip().startswith("---"))
    ]
    numbers = _numbering(cells)
    execute = meta.get("execute") or {}

    param_cell = nbformat.v4.new_code_cell(
        "\n".join(f"{k} = {v!r}" for k, v in params.items()), metadata={"rnngrad": "params"}
    )
    run = [nbformat.v4.new_code_cell(_INLINE_HELPER, metadata={"rnngrad": "helper"})]
    placed = False
    for cell in cells:
        if cell.cell_type == "code":
            opts, _ = _options(cell.source)
            cell.metadata["quarto"] = opts
            if opts.get("eval", execute.get("eval", True)) is False:
                continue
            run.append(cell)
            if "parameters" in (opts.get("tags") or []) and not placed:
                run.append(param_cell)
                placed = True
        elif cell.cell_type == "markdown":
            exprs = [e.strip() for e in _INLINE.findall(cell.source)]
            if exprs:
                run.append(
                    nbformat.v4.new_code_cell(
                        f"_rnngrad_inline({exprs!r})", metadata={"rnngrad": "inline"}
                    )
                )
            run.append(cell)
    if not placed:
        run.insert(1, param_cell)
    nb.cells = run
    _execute(nb, qmd, timeout)

    out_cells, maths, cites, chunks = [], [], [], []
    bib = _read_bib(qmd.parent / meta["bibliography"]) if meta.get("bibliography") else {}
    ctx = {
        "numbers": numbers,
        "maths": maths,
        "cites": cites,
        "bib": bib,
        "root": qmd.parent,
        "html": chunks,
    }
    inline_values: list[str] = []
    for cell in nb.cells:
        role = cell.metadata.get("rnngrad")
        if role in ("helper", "params"):
            continue
        if role == "inline":
            text_out = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
            inline_values = [_inline_markdown(d, ctx) for d in json.loads(text_out)]
            continue
        if cell.cell_type == "markdown":
            source = _substitute(cell.source, inline_values)
            out_cells.append(nbformat.v4.new_markdown_cell(_markdown(source, ctx)))
        elif cell.cell_type == "code":
            source = _code_outputs(cell, execute, ctx)
            if source.strip():
                out_cells.append(nbformat.v4.new_markdown_cell(source))
    if cites and not any("RNNGRADREFS" in c.source for c in out_cells):
        out_cells.append(nbformat.v4.new_markdown_cell("## References\n\nRNNGRADREFS"))
    nb.cells = out_cells

    # Every HTML piece went through mistune as a placeholder word: nbconvert's
    # sanitiser and the markdown parser never see it. Put the pieces back.
    exporter = HTMLExporter(template_name="basic", exclude_anchor_links=True)
    body, _ = exporter.from_notebook_node(nb)
    body = re.sub(
        r"<p>\s*RNNGRADREFS\s*</p>|RNNGRADREFS", lambda m: _bibliography(cites, bib), body
    )
    for _ in range(3):  # pieces may hold placeholders of their own (captions)
        body = re.sub(
            r"<p>\s*RNNGRADHTML(\d+)X\s*</p>|RNNGRADHTML(\d+)X",
            lambda m: chunks[int(m.group(1) or m.group(2))],
            body,
        )
    body = re.sub(r"RNNGRADMATH(\d+)X", lambda m: maths[int(m.group(1))], body)
    fmt_html = (
        (meta.get("format") or {}).get("html") if isinstance(meta.get("format"), dict) else None
    )
    if meta.get("toc") or (isinstance(fmt_html, dict) and fmt_html.get("toc")):
        body = _with_toc(body)
    write_text(out_html, _page(meta, body))


def _with_toc(body: str) -> str:
    """Ids on the h2/h3 headings and a table of contents before the first one."""
    entries, used = [], set()

    def anchor(m: re.Match) -> str:
        level, attrs, inner = m.group(1), m.group(2), m.group(3)
        ident = re.search(r'id="([^"]+)"', attrs)
        if ident:
            name = ident.group(1)
        else:
            name = (
                re.sub(r"[^\w]+", "-", re.sub(r"<[^>]+>", "", inner).lower()).strip("-")
                or "section"
            )
            while name in used:
                name += "-1"
            attrs += f' id="{name}"'
        used.add(name)
        entries.append((int(level), name, re.sub(r"<[^>]+>", "", inner)))
        return f"<h{level}{attrs}>{inner}</h{level}>"

    body = re.sub(r"<h([23])([^>]*)>(.*?)</h\1>", anchor, body, flags=re.S)
    if not entries:
        return body
    items = "".join(
        f'<li class="toc-h{lvl}"><a href="#{name}">{text}</a></li>' for lvl, name, text in entries
    )
    toc = f'<nav id="TOC" class="toc"><h2 class="toc-title">Contents</h2><ul>{items}</ul></nav>'
    first = re.search(r"<div[^>]*>\s*<div[^>]*>\s*<div[^>]*>\s*<h[23]", body)
    at = first.start() if first else 0
    return body[:at] + toc + body[at:]


def _substitute(source: str, values: list[str]) -> str:
    """Replace the inline expressions of a markdown cell by their values, in order."""
    found = iter(values)
    return _INLINE.sub(lambda m: next(found), source)


def _stash(html_piece: str, ctx: dict, block: bool = True) -> str:
    """A placeholder for a piece of HTML, restored after nbconvert has run."""
    ctx["html"].append(html_piece)
    word = f"RNNGRADHTML{len(ctx['html']) - 1}X"
    return f"\n\n{word}\n\n" if block else word


def _execute(nb, qmd: Path, timeout: int) -> None:
    import tempfile

    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    sockets = tempfile.mkdtemp(prefix="rnngrad-kernel-")

    class _ThisPython(KernelManager):
        # The kernel runs on the interpreter that renders, whatever kernelspecs are
        # installed, and talks over local sockets in a private folder.
        @property
        def kernel_spec(self) -> KernelSpec:
            argv = [
                sys.executable,
                "-Xfrozen_modules=off",
                "-m",
                "ipykernel_launcher",
                "-f",
                "{connection_file}",
            ]
            return KernelSpec(argv=argv, display_name="Python 3", language="python")

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.transport, self.ip = "ipc", os.path.join(sockets, "kernel")

    client = NotebookClient(
        nb,
        kernel_manager_class=_ThisPython,
        timeout=timeout,
        allow_errors=False,
        kernel_name="python3",
        resources={"metadata": {"path": str(qmd.parent)}},
    )
    env = {**os.environ, "MPLBACKEND": "Agg", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    try:
        client.execute(env=env)
    except CellExecutionError as err:
        raise RenderError(f"executing {qmd} failed:\n{err}") from None
    finally:
        shutil.rmtree(sockets, ignore_errors=True)


def _inline_markdown(data: Mapping[str, str], ctx: dict) -> str:
    # Quarto's rules: markdown as is; a quoted text/plain (a str) unquoted and escaped.
    if "text/markdown" in data:
        return data["text/markdown"]
    if "text/html" in data:
        return _stash(data["text/html"], ctx, block=False)
    s = data.get("text/plain", "")
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return re.sub(r"([\\`*_{}\[\]()>#+\-.!])", r"\\\1", s[1:-1].replace("\\\\", "\\"))
    return s


# ---------------------------------------------------------------- outputs and markdown


def _numbering(cells) -> dict[str, str]:
    # Figure, table and equation numbers in document order, as Quarto counts them.
    numbers, counts = {}, dict.fromkeys(_KINDS, 0)
    for cell in cells:
        if cell.cell_type == "code":
            labels = [_options(cell.source)[0].get("label") or ""]
        else:
            labels = _LABEL.findall(cell.source)
        for label in labels:
            kind = label.split("-")[0]
            if kind in _KINDS and label not in numbers:
                counts[kind] += 1
                numbers[label] = f"{_KINDS[kind]} {counts[kind]}"
    return numbers


def _code_outputs(cell, execute: Mapping, ctx: dict) -> str:
    """A code cell's outputs as markdown (HTML pieces stashed): figures and tables with
    a label become numbered, captioned figures and tables."""
    opts = cell.metadata.get("quarto", {})
    if opts.get("include", execute.get("include", True)) is False:
        return ""
    if opts.get("output", execute.get("output", True)) is False:
        return ""
    show_warnings = opts.get("warning", execute.get("warning", True))
    parts: list[str] = []  # markdown, HTML pieces stashed
    images: list[str] = []
    for out in cell.outputs:
        if out.output_type == "stream":
            if out.name == "stderr" and not show_warnings:
                continue
            parts.append(
                _stash(f'<pre class="output {out.name}">{html.escape(out.text)}</pre>', ctx)
            )
        elif out.output_type in ("display_data", "execute_result"):
            data = out.get("data", {})
            if "image/png" in data:
                images.append(
                    f'<img src="data:image/png;base64,{data["image/png"].strip()}" alt="">'
                )
            elif "image/svg+xml" in data:
                svg = data["image/svg+xml"]
                svg = base64.b64encode((svg if isinstance(svg, str) else "".join(svg)).encode())
                images.append(f'<img src="data:image/svg+xml;base64,{svg.decode()}" alt="">')
            elif "text/markdown" in data:
                parts.append("\n\n" + _markdown(data["text/markdown"], ctx) + "\n\n")
            elif "text/html" in data:
                parts.append(_stash(data["text/html"], ctx))
            elif "text/plain" in data:
                parts.append(
                    _stash(f'<pre class="output">{html.escape(data["text/plain"])}</pre>', ctx)
                )
    label = str(opts.get("label") or "")
    kind = label.split("-")[0] if "-" in label else ""
    if kind == "fig":
        content = "".join(images) or '<p class="missing">(figure not available)</p>'
        caption = _caption(opts.get("fig-cap", ""), label, ctx)
        figure = f'<figure id="{label}" class="figure">{content}<figcaption>{caption}</figcaption></figure>'
        return _stash(figure, ctx) + "".join(parts)
    body = "".join(_stash(f'<div class="figure">{img}</div>', ctx) for img in images) + "".join(
        parts
    )
    if kind == "tbl":
        caption = _caption(opts.get("tbl-cap", ""), label, ctx)
        return (
            _stash(f'<div id="{label}" class="table"><p class="caption">{caption}</p>', ctx)
            + body
            + _stash("</div>", ctx)
        )
    return body


def _md_html(markdown: str) -> str:
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return markdown2html_mistune(markdown)


def _caption(text: str, label: str, ctx: dict) -> str:
    number = ctx["numbers"].get(label, "")
    inner = _md_html(_markdown(str(text), ctx)).strip()
    inner = re.sub(r"^<p>(.*)</p>$", r"\1", inner, flags=re.S)
    return f"{number}: {inner}" if number else inner


def _markdown(text: str, ctx: dict) -> str:
    """Quarto markdown -> plain markdown for nbconvert: maths to placeholders, cross
    references and citations to links, heading attributes and fenced divs handled."""
    protected: list[str] = []

    def protect(m: re.Match) -> str:
        protected.append(m.group(0))
        return f"RNNGRADCODE{len(protected) - 1}X"

    text = re.sub(r"(?ms)^```.*?^```[ \t]*$", protect, text)
    text = re.sub(r"`[^`\n]+`", protect, text)

    def display(m: re.Match) -> str:
        label = m.group(2)
        maths = _mathml(m.group(1), block=True)
        if label:
            number = ctx["numbers"].get(label, "").split(" ")[-1]
            maths = (
                f'<div class="display-math" id="{label}">{maths}'
                f'<span class="eqno">({number})</span></div>'
            )
            return _stash(maths, ctx)
        ctx["maths"].append(maths)
        return f"RNNGRADMATH{len(ctx['maths']) - 1}X"

    def inline(m: re.Match) -> str:
        ctx["maths"].append(_mathml(m.group(1), block=False))
        return f"RNNGRADMATH{len(ctx['maths']) - 1}X"

    text = re.sub(r"\$\$(.+?)\$\$(?:[ \t]*\{#(eq-[\w-]*\w)\})?", display, text, flags=re.S)
    text = re.sub(r"(?<![\\$\w])\$(?![\s$])([^$\n]+?)(?<![\s\\])\$(?![\w$])", inline, text)

    def figure(m: re.Match) -> str:
        caption, src, label = m.group(1), m.group(2), m.group(3)
        path = (ctx["root"] / src) if not Path(src).is_absolute() else Path(src)
        mime = "image/svg+xml" if path.suffix == ".svg" else f"image/{path.suffix.lstrip('.')}"
        data = base64.b64encode(path.read_bytes()).decode() if path.is_file() else ""
        img = f'<img src="data:{mime};base64,{data}" alt="">' if data else "(figure not available)"
        return _stash(
            f'<figure id="{label}" class="figure">{img}<figcaption>'
            f"{_caption(caption, label, ctx)}</figcaption></figure>",
            ctx,
        )

    text = re.sub(r"!\[([^\]]*)\]\(([^)\s]+)\)\{#(fig-[\w-]*\w)[^}]*\}", figure, text)

    def xref(m: re.Match) -> str:
        label = m.group(1)
        if label not in ctx["numbers"]:
            raise RenderError(f"unresolved cross-reference @{label}")
        return f"[{ctx['numbers'][label]}](#{label})"

    text = _XREF.sub(xref, text)
    text = _citations(text, ctx)

    def heading(m: re.Match) -> str:
        level, title, attrs = len(m.group(1)), m.group(2).strip(), m.group(3)
        ident = re.search(r"#([\w-]+)", attrs)
        anchor = f' id="{ident.group(1)}"' if ident else ""
        inner = re.sub(r"^<p>(.*)</p>$", r"\1", _md_html(title).strip(), flags=re.S)
        return _stash(f"<h{level}{anchor}>{inner}</h{level}>", ctx).strip("\n")

    text = re.sub(r"(?m)^(#{1,6})\s+(.*?)\s*(\{[^}]*\})\s*$", heading, text)
    text = re.sub(r"(?m)^:::+\s*\{#refs\}\s*$\n?(^:::+\s*$)?", "RNNGRADREFS", text)
    text = re.sub(r"(?m)^:::+.*$", "", text)
    return re.sub(r"RNNGRADCODE(\d+)X", lambda m: protected[int(m.group(1))], text)


def _mathml(tex: str, block: bool) -> str:
    try:
        from latex2mathml.converter import convert
    except ImportError:  # degrade to the TeX source inside MathML, still no script
        warnings.warn("latex2mathml is not installed: maths is shown as TeX", stacklevel=2)
        return (
            f'<math display="{"block" if block else "inline"}"><mtext>'
            f"{html.escape(tex)}</mtext></math>"
        )
    return convert(tex.strip(), display="block" if block else "inline")


# -------------------------------------------------------------------------- citations

_CITE_GROUP = re.compile(r"\[([^\[\]]*?@[\w:.-]*\w[^\[\]]*)\](?!\()")
_CITE_KEY = re.compile(r"(?<![\w@\[])@([\w][\w:.-]*\w)")


def _citations(text: str, ctx: dict) -> str:
    bib = ctx["bib"]

    def cite(key: str) -> dict:
        if key not in bib:
            raise RenderError(f"citation @{key} is not in the bibliography")
        if key not in ctx["cites"]:
            ctx["cites"].append(key)
        return bib[key]

    def group(m: re.Match) -> str:
        items = []
        for part in m.group(1).split(";"):
            k = re.search(r"@([\w][\w:.-]*\w)", part)
            if not k:
                return m.group(0)
            e = cite(k.group(1))
            prefix = part[: k.start()].strip()
            suffix = part[k.end() :].strip().lstrip(",").strip()
            label = f"{_short_authors(e)} {e.get('year', 'n.d.')}"
            item = " ".join(x for x in (prefix, f"[{label}](#ref-{k.group(1)})") if x)
            items.append(f"{item}, {suffix}" if suffix else item)
        return "(" + "; ".join(items) + ")"

    text = _CITE_GROUP.sub(group, text)

    def narrative(m: re.Match) -> str:
        if m.group(1) not in bib:
            return m.group(0)  # an e-mail address or a handle, not a citation
        e = cite(m.group(1))
        return f"[{_short_authors(e)} ({e.get('year', 'n.d.')})](#ref-{m.group(1)})"

    return _CITE_KEY.sub(narrative, text)


def _read_bib(path: Path) -> dict[str, dict]:
    """A small BibTeX reader: {..}, ".." and bare values; LaTeX accents folded."""
    try:
        text = path.read_text()
    except OSError as err:
        raise RenderError(f"cannot read the bibliography {path}: {err}") from None
    entries = {}
    for m in re.finditer(r"@(\w+)\s*\{\s*([^,\s]+)\s*,", text):
        body, _ = _balanced(text, m.start() + m.group(0).index("{"))
        body = body[body.index(",") + 1 :]  # the fields, after the key
        fields, pos = {"type": m.group(1).lower()}, 0
        for f in re.finditer(r"(\w+)\s*=\s*", body):
            if f.start() < pos:
                continue
            start = f.end()
            if body[start] == "{":
                value, pos = _balanced(body, start)
            elif body[start] == '"':
                end = body.index('"', start + 1)
                value, pos = body[start + 1 : end], end + 1
            else:
                v = re.match(r"[^,\s}]+", body[start:])
                value, pos = v.group(0), start + v.end()
            fields[f.group(1).lower()] = _latex_text(value)
        entries[m.group(2)] = fields
    return entries


def _balanced(text: str, start: int) -> tuple[str, int]:
    # The text inside the braces opening at `start`, and the index after the closing one.
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + 1 : i], i + 1
    raise RenderError(f"unbalanced braces in the bibliography near: {text[start : start + 60]!r}")


_ACCENTS = {
    '"': "\u0308",
    "'": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    "~": "\u0303",
    "c": "\u0327",
}


def _latex_text(s: str) -> str:
    s = re.sub(r"\\([\"'`^~c])\s*\{?(\w)\}?", lambda m: m.group(2) + _ACCENTS[m.group(1)], s)
    s = (
        s.replace("\\&", "&")
        .replace("---", "\u2014")
        .replace("--", "\u2013")
        .replace("~", "\u00a0")
    )
    s = re.sub(r"[{}]", "", s)
    return unicodedata.normalize("NFC", re.sub(r"\s+", " ", s).strip())


def _names(entry: dict) -> list[tuple[str, str]]:
    out = []
    for name in re.split(r"\s+and\s+", entry.get("author", "")):
        if "," in name:
            last, first = (x.strip() for x in name.split(",", 1))
        else:
            parts = name.split()
            last, first = (parts[-1], " ".join(parts[:-1])) if parts else ("", "")
        if last:
            out.append((last, first))
    return out


def _short_authors(entry: dict) -> str:
    names = [last for last, _ in _names(entry)] or [entry.get("title", "Anon.")]
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return f"{names[0]} and {names[1]}"
    return f"{names[0]} et al."


def _bibliography(keys: list[str], bib: dict) -> str:
    def entry_html(key: str) -> str:
        e = bib[key]
        names = _names(e)
        people = [
            f"{last}, {first}" if i == 0 else f"{first} {last}"
            for i, (last, first) in enumerate(names)
        ]
        authors = (
            (", ".join(people[:-1]) + ", and " + people[-1])
            if len(people) > 2
            else " and ".join(people)
        )
        venue = e.get("journal") or e.get("booktitle") or e.get("publisher") or ""
        details = "".join(
            [
                f" {e['volume']}" if e.get("volume") else "",
                f" ({e['number']})" if e.get("number") else "",
                f": {e['pages']}" if e.get("pages") else "",
            ]
        )
        link = (
            e.get("doi")
            and f' <a href="https://doi.org/{html.escape(e["doi"])}">doi:{html.escape(e["doi"])}</a>'
        )
        link = (
            link
            or (e.get("url") and f' <a href="{html.escape(e["url"])}">{html.escape(e["url"])}</a>')
            or ""
        )
        return (
            f'<li id="ref-{key}">{html.escape(authors)}. {html.escape(e.get("year", "n.d."))}. '
            f"\u201c{html.escape(e.get('title', ''))}.\u201d <em>{html.escape(venue)}</em>"
            f"{html.escape(details)}.{link}</li>"
        )

    def order(key: str):
        names = _names(bib[key])
        return (names[0][0] if names else "", bib[key].get("year", ""))

    items = "\n".join(entry_html(k) for k in sorted(keys, key=order))
    return f'<ol class="references">\n{items}\n</ol>'


# ------------------------------------------------------------------------------- page

_CSS = """
body { margin: 0; background: #fff; color: #222; font: 16px/1.55 Georgia, 'Times New Roman', serif; }
main.report { max-width: 58rem; margin: 0 auto; padding: 2rem 1.5rem 4rem; }
header.title-block { border-bottom: 1px solid #ddd; margin-bottom: 1.5rem; }
h1.title { font-size: 2rem; margin: 0 0 .3rem; line-height: 1.2; }
.subtitle, .author, .date { color: #555; margin: .2rem 0; }
h2 { margin-top: 2.2rem; border-bottom: 1px solid #eee; padding-bottom: .2rem; }
h2, h3, h4 { font-family: 'Helvetica Neue', Arial, sans-serif; line-height: 1.25; }
a { color: #0b5cad; text-decoration: none; } a:hover { text-decoration: underline; }
figure.figure { margin: 1.5rem 0; text-align: center; }
figure.figure img, div.figure img { max-width: 100%; height: auto; }
figcaption, .table .caption { font-size: .92rem; color: #333; text-align: left; margin-top: .4rem; }
.table { margin: 1.5rem 0; overflow-x: auto; }
table { border-collapse: collapse; font: .86rem/1.35 'Helvetica Neue', Arial, sans-serif; margin: .5rem 0; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid #e3e3e3; text-align: left; vertical-align: top; }
th { border-bottom: 2px solid #999; background: #fafafa; }
pre, code { font: .86rem/1.4 Menlo, Consolas, monospace; }
pre { background: #f6f8fa; padding: .7rem .9rem; overflow-x: auto; border-radius: 4px; }
.display-math { display: flex; align-items: center; justify-content: center; gap: 1.5rem; }
math[display="block"] { margin: .8rem 0; }
ol.references li { margin-bottom: .4rem; }
nav.toc { font: .9rem/1.4 'Helvetica Neue', Arial, sans-serif; border: 1px solid #e3e3e3;
  border-radius: 4px; padding: .4rem 1rem; margin: 1rem 0 2rem; background: #fcfcfc; }
nav.toc h2 { font-size: 1rem; margin: .3rem 0; border: 0; }
nav.toc ul { list-style: none; padding-left: 0; margin: .2rem 0; columns: 2; }
nav.toc li.toc-h3 { padding-left: 1.2rem; font-size: .85rem; }
footer, .report-footer { color: #666; font-size: .85rem; border-top: 1px solid #ddd; margin-top: 2rem; }
.jp-Cell, .cell { margin: 0; }
"""


def _page(meta: Mapping, body: str) -> str:
    title = str(meta.get("title", "Report"))
    header = [f'<h1 class="title">{html.escape(title)}</h1>']
    if meta.get("subtitle"):
        header.append(f'<p class="subtitle">{html.escape(str(meta["subtitle"]))}</p>')
    authors = meta.get("author")
    if authors:
        authors = authors if isinstance(authors, list) else [authors]
        names = [a.get("name", "") if isinstance(a, dict) else str(a) for a in authors]
        header.append(f'<p class="author">{html.escape(", ".join(names))}</p>')
    date = meta.get("date")
    if date:
        if str(date) in ("today", "now", "last-modified"):
            date = _dt.date.today().isoformat()
        header.append(f'<p class="date">{html.escape(str(date))}</p>')
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="rnngrad jupyter-fallback renderer">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f'<main class="report">\n<header class="title-block">\n{"".join(header)}\n</header>\n'
        f"{body}\n</main>\n</body>\n</html>\n"
    )
