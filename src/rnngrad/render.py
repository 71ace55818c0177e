"""Render report/report.qmd to one self-contained HTML file: Quarto, or the fallback.

`render_report` uses `quarto render` when quarto is on PATH. The fallback takes the
path Quarto itself takes, with the same tools: jupytext reads the .qmd, papermill
injects the parameters after the cell tagged `parameters`, nbclient runs the cells and
each Markdown cell's inline expressions (Jupyter user_expressions, Quarto's rules for
their output), and pandoc (pypandoc-binary's: the pandoc of the Quarto kit) writes the
page from the outputs with --citeproc (the same .bib and default style), --mathml,
--embed-resources, --toc and crossref.lua (#fig-, #tbl-, #eq- numbering, @-links).
Both render a copy of the report's folder in a scratch directory, so the output
folder only receives the finished HTML, renamed into place, and both refuse a page
with an unresolved cross-reference.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from rnngrad.io import atomic_path

__all__ = [
    "render_report",
    "report_params",
    "quarto_command",
    "RENDERERS",
    "RenderError",
    "renderer_versions",
]

RENDERERS = ("auto", "quarto", "jupyter-fallback")
PATH_PARAMS = ("tables_dir", "figures_dir", "config")  # and any key ending in _dir/_path/_file
LUA_FILTER = Path(__file__).with_name("crossref.lua")
_INLINE = re.compile(r"(?<!`)`\{python\}[ \t]+([^`\n]+)`")  # Quarto's, line by line
_OPTION = re.compile(r"^#\|\s?(.*)$")
_UNRESOLVED = re.compile(r"\?@((?:fig|tbl|eq)-[\w-]+)")
# What Quarto shows of a display_data bundle in HTML, most preferred first.
_PRIORITY = ("text/html", "text/markdown", "image/svg+xml", "image/png", "image/jpeg")


class RenderError(RuntimeError):
    """The report could not be rendered; the message names the file and the cause."""


def report_params(
    tables_dir: str | Path,
    figures_dir: str | Path,
    config: Mapping,
    anchors_file: str | Path,
    config_hash: str,
    config_files: list[str],
    snakemake_version: str = "",
) -> dict:
    """The report's parameters, for the workflow's report rule and `rnngrad render` alike
    (the command that reproduces the report follows from the config files)."""
    from rnngrad.config import reproduce_commands

    return {
        "tables_dir": str(tables_dir),
        "figures_dir": str(figures_dir),
        "config": dict(config),
        "anchors_file": str(anchors_file),
        "config_hash": config_hash,
        "config_files": list(config_files),
        "commands": reproduce_commands(config_files),
        "snakemake_version": snakemake_version,
    }


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
        ValueError: unknown renderer. RenderError: the render failed or left an
        unresolved cross-reference.

    Example:
        >>> render_report("report/report.qmd", "results/report/report.html",
        ...               {"tables_dir": "results/tables"})  # doctest: +SKIP
        'quarto'
    """
    if renderer not in RENDERERS:
        raise ValueError(f"unknown renderer {renderer!r}; options are {list(RENDERERS)}")
    qmd, out_html = Path(qmd).resolve(), Path(out_html).resolve()
    if not qmd.is_file():
        raise FileNotFoundError(f"report source not found: {qmd}")
    if renderer == "auto":
        renderer = "quarto" if shutil.which("quarto") else "jupyter-fallback"
    params = {  # plain YAML / Python literals; path parameters absolute
        k: str(Path(v).resolve()) if isinstance(v, str) and _is_path(k) else v
        for k, v in json.loads(json.dumps(params or {}, default=str)).items()
    }
    params.setdefault("renderer", renderer)
    params.setdefault("renderer_versions", renderer_versions(renderer))
    with tempfile.TemporaryDirectory(prefix="rnngrad-render-") as scratch:
        copy = Path(scratch) / qmd.name
        for src in qmd.parent.iterdir():  # the report and its siblings (.bib, _quarto.yml)
            if src.is_file() and src.suffix not in (".html", ".ipynb"):
                shutil.copyfile(src, copy.parent / src.name)
        render = _render_quarto if renderer == "quarto" else _render_fallback
        produced = render(copy, params, timeout)
        text = re.sub(r"<[^>]+>", "", produced.read_text(encoding="utf-8"))
        if unresolved := sorted(set(_UNRESOLVED.findall(text))):
            raise RenderError(f"{qmd}: unresolved cross-references {unresolved}")
        with atomic_path(out_html) as tmp:
            shutil.copyfile(produced, tmp)
    return renderer


def _is_path(key: str) -> bool:
    return key in PATH_PARAMS or key.endswith(("_dir", "_path", "_file"))


def renderer_versions(renderer: str) -> str:
    """The versions of the tools a renderer uses, as one line for the report's footer."""
    from importlib.metadata import version

    if renderer == "quarto":
        try:
            out = subprocess.run(["quarto", "--version"], capture_output=True, text=True)
            return f"Quarto {out.stdout.strip() or '(version unknown)'}"
        except OSError:
            return "Quarto (version unknown)"
    import pypandoc

    tools = [f"{name} {version(name)}" for name in ("jupytext", "papermill", "nbclient")]
    return ", ".join([f"pandoc {pypandoc.get_pandoc_version()}", *tools])


def quarto_command(qmd: Path, params_file: Path) -> list[str]:
    """The `quarto render` command for a copy of the report, its parameters in a YAML
    file (Quarto hands them to papermill, which writes them as Python literals)."""
    return [
        *("quarto", "render", str(qmd), "--to", "html", "--execute-params", str(params_file)),
        *("-M", "embed-resources:true", "-M", "html-math-method:mathml"),
    ]


def _render_quarto(qmd: Path, params: Mapping, timeout: int) -> Path:
    params_file = qmd.with_name(f".{qmd.stem}-params.yml")
    params_file.write_text(yaml.safe_dump(dict(params), sort_keys=False))
    # Quarto's Python (QUARTO_PYTHON) is the one that renders: it has rnngrad and papermill.
    env = {**os.environ, "QUARTO_PYTHON": sys.executable}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    _run(quarto_command(qmd, params_file), qmd, timeout, env=env)
    return qmd.with_suffix(".html")


def _run(cmd: list[str], qmd: Path, timeout: int, **kwargs) -> None:
    tool, kwargs = Path(cmd[0]).name, {"capture_output": True, "text": True, **kwargs}
    try:
        proc = subprocess.run(cmd, cwd=qmd.parent, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired:
        raise RenderError(f"{tool} on {qmd.name} ran past {timeout} s") from None
    if proc.returncode != 0:
        raise RenderError(f"{tool} on {qmd.name} failed ({proc.returncode}):\n{proc.stderr}")


def _settings(qmd: Path) -> tuple[dict, dict, dict]:
    """(front matter, format.html options, execute options); the document's override
    those of a _quarto.yml beside it, as in a Quarto project."""
    m = re.match(r"\s*---[ \t]*\n(.*?)\n---[ \t]*\n", qmd.read_text(), re.S)
    front = (yaml.safe_load(m.group(1)) or {}) if m else {}
    project = qmd.with_name("_quarto.yml")
    html, execute = {}, {}
    for layer in [yaml.safe_load(project.read_text()) if project.is_file() else {}, front]:
        fmt = (layer or {}).get("format")
        html.update((fmt.get("html") if isinstance(fmt, dict) else None) or {})
        execute.update((layer or {}).get("execute") or {})
    return front, html, execute


def _render_fallback(qmd: Path, params: Mapping, timeout: int) -> Path:
    import jupytext
    import pypandoc
    from papermill.parameterize import parameterize_notebook

    front, html, execute = _settings(qmd)
    nb = jupytext.reads(qmd.read_text(), fmt="Rmd")
    nb.cells = [c for c in nb.cells if c.cell_type != "raw"]  # the front matter
    for cell in nb.cells:  # the `#|` options over the document's; papermill reads the tags
        lines = [m.group(1) for m in map(_OPTION.match, cell.source.splitlines()) if m]
        opts = (yaml.safe_load("\n".join(lines)) or {}) if cell.cell_type == "code" else {}
        cell.metadata.update(quarto={**execute, **opts}, tags=list(opts.get("tags") or []))
    if params:
        nb.metadata["papermill"] = {}
        nb = parameterize_notebook(nb, dict(params), kernel_name="python3", language="python")
    _execute(nb, qmd, timeout)

    meta = {k: v for k, v in front.items() if k not in ("format", "execute", "jupyter")}
    if str(meta.get("date", "")) == "today":
        meta["date"] = _dt.date.today().strftime("%B %-d, %Y")  # Quarto's date-format: long
    meta.setdefault("pagetitle", meta.get("title", qmd.stem))
    parts = [f"---\n{yaml.safe_dump(meta, sort_keys=False)}---", *map(_cell_markdown, nb.cells)]
    markdown = "\n\n".join(p for p in parts if p)
    out = qmd.with_suffix(".html")
    cmd = [pypandoc.get_pandoc_path(), "--from", "markdown", "--to", "html5", "-o", out.name]
    cmd += ["--standalone", "--embed-resources", "--mathml", "--lua-filter", str(LUA_FILTER)]
    cmd += ["--citeproc", "-M", "link-citations=true", "-V", "maxwidth=52em"]
    cmd += ["-V", "mainfont=system-ui, sans-serif"]
    cmd += ["--toc", "-M", "toc-title=Table of contents"] if html.get("toc") else []
    cmd += ["--number-sections"] if html.get("number-sections") else []
    _run(cmd, qmd, timeout, input=markdown + "\n")
    return out


def _execute(nb, qmd: Path, timeout: int) -> None:
    """Run the code cells in order, and each Markdown cell's inline expressions when it
    is reached (Jupyter user_expressions, as Quarto evaluates them)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from traitlets.config import Config

    with tempfile.TemporaryDirectory(prefix="rnngrad-kernel-") as sockets:
        # local sockets in a private folder: the kernel needs no network, not even loopback
        ipc = Config({"KernelManager": {"transport": "ipc", "ip": f"{sockets}/kernel"}})
        cwd = {"metadata": {"path": str(qmd.parent)}}
        client = NotebookClient(nb, kernel_name="python3", config=ipc, resources=cwd)
        client.timeout = timeout
        env = {**os.environ, "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
        try:
            with client.setup_kernel(env=env):
                for index, cell in enumerate(nb.cells):
                    if cell.cell_type == "markdown":
                        _inline(client, cell, qmd)
                    elif cell.metadata.get("quarto", {}).get("eval", True) is not False:
                        client.execute_cell(cell, index)
        except CellExecutionError as err:
            raise RenderError(f"executing {qmd.name} failed:\n{err}") from None


def _inline(client, cell, qmd: Path) -> None:
    exprs = [e.strip() for e in _INLINE.findall(cell.source)]
    if not exprs:
        return
    msg_id = client.kc.execute("", user_expressions={str(i): e for i, e in enumerate(exprs)})
    results = client.wait_for_reply(msg_id)["content"].get("user_expressions", {})
    values = []
    for i, expr in enumerate(exprs):
        res = results.get(str(i), {})
        if res.get("status") != "ok":
            err = f"{res.get('ename', 'error')}: {res.get('evalue', '')}"
            raise RenderError(f"{qmd.name}: inline expression `{expr}` failed: {err}")
        values.append(_inline_value(res["data"]))
    found = iter(values)  # Quarto leaves an expression whose value is empty as it stands
    cell.source = _INLINE.sub(lambda m: next(found) or m.group(0), cell.source)


def _inline_value(data: Mapping[str, str]) -> str:
    # Quarto's rules: HTML raw, Markdown as is, a quoted text/plain (a str) unquoted and
    # escaped, other text/plain as is.
    if "text/html" in data:
        return f"`{data['text/html']}`{{=html}}"
    if "text/markdown" in data:
        return data["text/markdown"]
    s = data.get("text/plain", "")
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return re.sub(r"([\\`*_{}\[\]()>#+\-.!])", r"\\\1", s[1:-1].replace("\\\\", "\\"))
    return s


def _cell_markdown(cell) -> str:
    """A cell as Markdown: a labelled figure or table a Quarto div float, its caption the
    last paragraph; code only when `echo` is on; stderr only when `warning` is on."""
    if cell.cell_type == "markdown":
        return cell.source
    opts = cell.metadata.get("quarto", {})
    option = opts.get
    if not option("include", True) or "injected-parameters" in cell.metadata.get("tags", []):
        return ""
    parts = []
    if option("echo", True):
        code = "\n".join(line for line in cell.source.splitlines() if not _OPTION.match(line))
        parts.append(f"```python\n{code.strip()}\n```")
    for out in cell.get("outputs", []) if option("output", True) else []:
        if out.output_type == "stream" and (out.name == "stdout" or option("warning", True)):
            parts.append(f"``` {{.cell-output-{out.name}}}\n{out.text.rstrip()}\n```")
        elif out.output_type in ("display_data", "execute_result"):
            parts.append(_display(out.data))
    body = "\n\n".join(p for p in parts if p)
    label = str(opts.get("label", ""))
    caption = str(opts.get(f"{label.split('-')[0]}-cap", "")).strip()  # fig-cap, tbl-cap
    if not (label.startswith(("fig-", "tbl-")) and body and caption):
        return body  # as in Quarto, a float needs a label and a caption
    return f"::: {{#{label}}}\n{body}\n\n{caption}\n:::"


def _display(data: Mapping[str, Any]) -> str:
    mime = next((m for m in _PRIORITY if m in data), "text/plain")
    value = data.get(mime, "")
    value = "".join(value) if isinstance(value, list) else str(value)
    if mime == "text/html":
        return f"```{{=html}}\n{value}\n```"
    if mime == "text/markdown":
        return value
    if mime == "image/svg+xml":
        value = base64.b64encode(value.encode()).decode()
    if mime.startswith("image/"):
        return f"![](data:{mime};base64,{''.join(value.split())})"
    return f"``` {{.cell-output-display}}\n{value}\n```" if value else ""
