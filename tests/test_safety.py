"""Safe by construction: no config value reaches a shell, checkpoints and YAML are read as
data, every output is written under a temporary name and renamed, nothing goes online.

Most checks read the source (ast, not regular expressions, where Python is parsed);
the rest run the pieces: a tampered checkpoint, training, probing, aggregation and
figures with sockets refused, a real diverged run through the analysis layer, and
(where the machine allows a private network namespace) the console scripts and the
fallback report renderer with no network at all.
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
PY_DIRS = ("src", "workflow/scripts", "scripts", "benchmarks", "tests")


def _python_files(*dirs: str) -> list[Path]:
    files = []
    for d in dirs:
        files += sorted(p for p in (ROOT / d).rglob("*.py") if ".venv" not in p.parts)
    return files


def _calls(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield tree, node


def _name(node: ast.AST) -> str:
    return ast.unparse(node)


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def _where(path: Path, node: ast.AST) -> str:
    return f"{_rel(path)}:{node.lineno}: {ast.unparse(node)[:100]}"


# --- checkpoints and YAML are data, never code ------------------------------------------


def test_every_torch_load_is_weights_only():
    found, bad = 0, []
    for path in _python_files(*PY_DIRS):
        for _, call in _calls(path):
            if _name(call.func) == "torch.load":
                found += 1
                ok = any(
                    k.arg == "weights_only"
                    and isinstance(k.value, ast.Constant)
                    and k.value.value is True
                    for k in call.keywords
                )
                if not ok:
                    bad.append(_where(path, call))
    assert found, "no torch.load found: the check looks in the wrong place"
    assert not bad, bad


SAFE_LOADERS = {"SafeLoader", "CSafeLoader", "yaml.SafeLoader", "yaml.CSafeLoader"}


def _safe_loader_classes(tree: ast.Module) -> set[str]:
    """Classes of a module that subclass a SafeLoader (rnngrad.config._StrictLoader)."""
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and any(_name(b) in SAFE_LOADERS for b in node.bases)
    }


def test_yaml_is_read_with_a_safe_loader():
    bad = []
    for path in _python_files(*PY_DIRS):
        for tree, call in _calls(path):
            func = _name(call.func)
            if func in (
                "yaml.unsafe_load",
                "yaml.full_load",
                "yaml.unsafe_load_all",
                "yaml.full_load_all",
            ):
                bad.append(_where(path, call))
            elif func in ("yaml.load", "yaml.load_all"):
                loader = [k.value for k in call.keywords if k.arg == "Loader"] + call.args[1:2]
                safe = SAFE_LOADERS | _safe_loader_classes(tree)
                if not loader or _name(loader[0]) not in safe:
                    bad.append(_where(path, call))
    assert not bad, bad


def test_no_pickle_or_marshal_loads_in_the_library():
    bad = [
        _where(path, call)
        for path in _python_files("src", "workflow/scripts")
        for _, call in _calls(path)
        if re.fullmatch(
            r"(pickle|marshal|shelve|dill|cloudpickle)\.(loads?|open)", _name(call.func)
        )
    ]
    assert not bad, bad


def test_a_tampered_checkpoint_runs_no_code_and_training_starts_over(tmp_path, caplog):
    """A checkpoint whose pickle would call a function is refused by weights_only=True."""
    from rnngrad.models import VariantSpec
    from rnngrad.train import RunSpec, train_run

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    ckpt = tmp_path / "run" / ".checkpoint.pt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(pickle.dumps({"version": 1, "state": Payload()}, protocol=2))
    spec = RunSpec("adding", 8, model=VariantSpec(cell="gru", hidden_size=8), steps=20,
                   batch_size=8, eval_every=10, eval_size=16, checkpoint_every=10)  # fmt: skip
    summary = train_run(spec, tmp_path / "run", probe=False, progress=False)
    assert not marker.exists()
    assert summary["resumed_from"] is None and summary["steps_done"] == 20
    assert str(ckpt) in caplog.text and "unreadable" in caplog.text


# --- no shell, names that cannot escape a path -------------------------------------------


def _rules() -> dict[str, str]:
    """rule name -> its text, from the Snakefile and workflow/rules/*.smk."""
    rules = {}
    for path in [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]:
        parts = re.split(r"^(?:rule|checkpoint)\s+(\w+):", path.read_text(), flags=re.M)
        rules.update(
            {f"{path.name}:{n}": body for n, body in zip(parts[1::2], parts[2::2], strict=True)}
        )
    return rules


def test_rules_run_scripts_never_shell_or_run_blocks():
    rules = _rules()
    assert len(rules) >= 5
    for where, body in rules.items():
        assert not re.search(r"^\s+(shell|run|wrapper|notebook|cwl)\s*:", body, re.M), where
        has_output = re.search(r"^\s+output\s*:", body, re.M)
        assert not has_output or re.search(r"^\s+script\s*:", body, re.M), f"{where} has no script:"
    for path in [ROOT / "Snakefile", *(ROOT / "workflow" / "rules").glob("*.smk")]:
        text = path.read_text()
        assert "shell(" not in text and "os.system" not in text and "subprocess" not in text, path


def test_no_shell_in_python():
    bad = []
    for path in _python_files("src", "workflow/scripts", "benchmarks"):
        for _, call in _calls(path):
            func = _name(call.func)
            if func in (
                "os.system",
                "os.popen",
                "subprocess.getoutput",
                "subprocess.getstatusoutput",
            ):
                bad.append(_where(path, call))
            if any(k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                   for k in call.keywords):  # fmt: skip
                bad.append(_where(path, call))
            if (
                func.startswith("subprocess.")
                and call.args
                and isinstance(call.args[0], (ast.Constant, ast.JoinedStr))
            ):
                bad.append(_where(path, call))  # a command line as one string
    assert not bad, bad


def test_variant_names_are_safe_path_parts():
    from rnngrad.config import SCHEMA_PATH, ConfigError, check_config

    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    assert schema["properties"]["variants"]["propertyNames"] == {"pattern": NAME_PATTERN}
    for section in ("Train", "Probes"):
        variants = schema["$defs"][section]["properties"]["variants"]
        assert variants["items"] == {"type": "string", "pattern": NAME_PATTERN}
    assert (ROOT / "workflow" / "schemas" / "config.schema.yaml").resolve() == SCHEMA_PATH.resolve()
    base = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    for bad in [
        "../x",
        "a b",
        "$(rm -rf ~)",
        "x;y",
        "a/b",
        "",
        "A",
        "_x",
        "x\n",
        "é",
        "x-y",
        "-x",
        "x\x00",
    ]:
        for section in ("variants", "train"):
            cfg = json.loads(json.dumps(base))
            cfg["variants"][bad] = {"cell": "gru"}
            if section == "train":
                cfg["variants"]["ok"] = cfg["variants"].pop(bad)
                cfg["train"]["variants"] = ["ok", bad]
            with pytest.raises(ConfigError, match="is not allowed; names must match"):
                check_config(cfg)
    # the workflow's wildcard for a variant is no wider than the schema's names
    common = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    assert re.search(r'variant\s*=\s*r"\[a-z\]\[a-z0-9_\]\*"', common)
    # tasks are a closed list in both places
    from rnngrad.tasks import TASKS

    for section in ("Train", "Probes"):
        tasks = schema["$defs"][section]["properties"]["tasks"]
        assert set(tasks["propertyNames"]["enum"]) == set(TASKS)


# --- every output goes through a temporary name -------------------------------------------

WRITERS = {"to_parquet", "to_csv", "to_json", "to_pickle", "savefig", "write_text", "write_bytes",
           "save", "dump", "to_html", "imsave"}  # fmt: skip
# Writes that are not outputs, with the reason they may write in place.
NOT_OUTPUTS = {
    # render.py: Quarto reads its parameters from a scratch file beside the report copy;
    # it is removed after rendering, and the HTML itself is renamed into place.
    ("src/rnngrad/render.py", "params_file.write_text"),
}


def _open_for_writing(call: ast.Call) -> bool:
    mode = (
        call.args[1]
        if len(call.args) > 1
        else next((k.value for k in call.keywords if k.arg == "mode"), None)
    )
    return (
        isinstance(mode, ast.Constant)
        and isinstance(mode.value, str)
        and bool(set(mode.value) & set("wax+"))
    )


def _non_atomic_writes(path: Path) -> list[str]:
    """Write calls that touch no name bound by an enclosing `with atomic_path(...) as name`."""
    found = []

    def visit(node: ast.AST, safe: frozenset) -> None:
        if isinstance(node, ast.With):
            names = {
                item.optional_vars.id
                for item in node.items
                if isinstance(item.optional_vars, ast.Name) and _name(item.context_expr.func if isinstance(item.context_expr, ast.Call) else item.context_expr).endswith("atomic_path")
            }  # fmt: skip
            safe = safe | names
        if isinstance(node, ast.Call):
            func = node.func
            is_write = (
                (isinstance(func, ast.Attribute) and func.attr in WRITERS)
                or (_name(func) in ("open", "os.open") and _open_for_writing(node))
                or (
                    isinstance(func, ast.Attribute)
                    and func.attr == "open"
                    and _open_for_writing(node)
                )
            )
            touched = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            if is_write and not touched & safe and (_rel(path), _name(func)) not in NOT_OUTPUTS:
                found.append(_where(path, node))
        for child in ast.iter_child_nodes(node):
            visit(child, safe)

    visit(ast.parse(path.read_text()), frozenset())
    return found


def test_every_file_the_library_writes_goes_through_a_temporary_name():
    """io.py holds the one place that writes in place (the job log, a stream by nature)."""
    files = [p for p in _python_files("src", "workflow/scripts") if p.name != "io.py"]
    offenders = [w for p in files for w in _non_atomic_writes(p)]
    assert not offenders, "write to a temporary name (rnngrad.io.atomic_path):\n" + "\n".join(
        offenders
    )


def test_the_checker_catches_a_plain_write(tmp_path):
    """Break the code on purpose: a direct write is reported, the atomic one is not."""
    probe = tmp_path / "writer.py"
    probe.write_text(
        textwrap.dedent("""
        from rnngrad.io import atomic_path
        def good(df, fig, path):
            with atomic_path(path) as tmp:
                df.to_parquet(tmp)
                fig.savefig(tmp)
        def bad(df, fig, path):
            df.to_parquet(path)
            fig.savefig(path)
            open(path, "w").write("x")
            path.write_text("x")
    """)
    )
    found = _non_atomic_writes(probe)
    assert [f.split(":")[1] for f in found] == ["8", "9", "10", "11"], found


def test_atomic_path_leaves_the_old_file_or_the_new_one(tmp_path):
    from rnngrad.io import atomic_path, discard_temporaries, write_text

    target = tmp_path / "out" / "summary.json"
    write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and sorted(p.name for p in target.parent.iterdir()) == [
        "summary.json"
    ]
    # a result file is readable like any other new file, not only by its owner
    mode = target.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    # a temporary left by a killed writer is found and removed, others are not touched
    stale = tmp_path / "out" / ".tmp-summary-abc123.json"
    stale.write_text("{")
    other = tmp_path / "out" / ".tmp-summary2-abc123.json"
    other.write_text("{")
    assert discard_temporaries(target) == [stale]
    assert not stale.exists() and other.exists()


# --- nothing goes online ---------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch):
    """Refuse every socket connection and name lookup except local (AF_UNIX) ones."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access attempted during a test that forbids it")

    real_connect = socket.socket.connect

    def connect(self, address, *a):
        if self.family == socket.AF_UNIX:
            return real_connect(self, address, *a)
        return refuse(address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", lambda self, address: refuse(address))
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "gethostbyname", refuse)
    return attempts


def _tiny_grid(root: Path) -> dict:
    """A real results tree: two trained runs (one diverged) and init probes, as the workflow writes."""
    from rnngrad.config import check_config, variant_specs
    from rnngrad.io import write_parquet
    from rnngrad.probes import init_probe
    from rnngrad.train import RunSpec, train_run

    cfg = check_config({
        "device": "cpu", "hidden_size": 8,
        "variants": {"rnn": {"cell": "rnn_tanh"}, "irnn": {"cell": "rnn_relu", "init": "identity"}},
        "train": {"tasks": {"adding": [6]}, "seeds": [0], "steps": 20, "batch_size": 8,
                  "eval_every": 10, "eval_size": 16, "probe_every": 10, "probe_batch": 4,
                  "checkpoint_every": 10},
        "probes": {"tasks": {"adding": [6]}, "seeds": 2, "batch_size": 4},
    })  # fmt: skip
    specs = variant_specs(cfg)
    for variant, lr in (("rnn", 0.01), ("irnn", 1e6)):  # lr 1e6: the IRNN diverges
        spec = RunSpec("adding", 6, variant, specs[variant], seed=0, steps=20, batch_size=8, lr=lr,
                       eval_every=10, eval_size=16, probe_every=10, probe_batch=4,
                       checkpoint_every=10, device="cpu")  # fmt: skip
        train_run(spec, root / "runs" / "adding" / "T6" / variant / "seed0", progress=False)
        df = init_probe("adding", 6, variant, specs[variant], 2, 4)
        write_parquet(root / "probes" / "adding" / "T6" / f"{variant}.parquet", df)
    return cfg


def test_training_probing_and_analysis_open_no_socket(no_network, tmp_path):
    from rnngrad.aggregate import aggregate
    from rnngrad.cli import main
    from rnngrad.figures import FIGURES, make_figure

    cfg = _tiny_grid(tmp_path / "results")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(cfg))
    assert main(["probe", "--config", str(config), "--task", "adding", "--length", "6", "--variant",
                 "rnn", "--seeds", "1", "--batch-size", "2", "--out", str(tmp_path / "p.parquet")]) == 0  # fmt: skip
    aggregate(tmp_path / "results", tmp_path / "tables", cfg)
    for name in FIGURES:
        make_figure(name, tmp_path / "tables", tmp_path / "figures" / name, cfg)
    assert no_network == []


def test_a_real_diverged_run_flows_through_the_analysis_as_diverged(tmp_path):
    """Not the synthetic tree of conftest: the files train_run writes for a diverged run."""
    import matplotlib

    matplotlib.use("Agg")
    from rnngrad.aggregate import aggregate
    from rnngrad.figures import FIGURES, make_figure

    cfg = _tiny_grid(tmp_path / "results")
    summary = json.loads((tmp_path / "results/runs/adding/T6/irnn/seed0/summary.json").read_text())
    assert summary["status"] == "diverged"
    tables = aggregate(tmp_path / "results", tmp_path / "tables", cfg)
    runs = tables["runs"].set_index("variant")
    assert runs.loc["irnn", "status"] == "diverged" and runs.loc["rnn", "status"] != "diverged"
    success = tables["success"].set_index("variant")
    assert success.loc["irnn", "diverged"] == 1 and success.loc["rnn", "diverged"] == 0
    on_disk = pd.read_csv(tmp_path / "tables" / "runs.csv")
    assert "diverged" in set(on_disk["status"])
    for name in FIGURES:
        paths = make_figure(name, tmp_path / "tables", tmp_path / "figures" / name, cfg)
        assert all(p.stat().st_size > 0 for p in paths)


def _netns_works() -> bool:
    if not shutil.which("unshare"):
        return False
    try:
        return (
            subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10).returncode
            == 0
        )
    except (OSError, subprocess.SubprocessError):
        return False


# run inside a network namespace with no interface up: any connection attempt fails
_OFFLINE = r"""
import sys
from pathlib import Path
import yaml
sys.path.insert(0, sys.argv[2])  # this test file, for _tiny_grid
from test_safety import _tiny_grid
from rnngrad.aggregate import aggregate
from rnngrad.render import render_report
root = Path(sys.argv[1])
cfg = _tiny_grid(root / "results")
aggregate(root / "results", root / "tables", cfg)
qmd = root / "small.qmd"
qmd.write_text("---\ntitle: offline\n---\n\n```{python}\nimport pandas as pd\n"
               "runs = pd.read_parquet(r'" + str(root / "tables" / "runs.parquet") + "')\n```\n\n"
               "Diverged: `{python} int((runs.status == 'diverged').sum())`.\n")
print(render_report(qmd, root / "out" / "small.html", {}, "jupyter-fallback"))
"""


@pytest.mark.slow
@pytest.mark.skipif(not _netns_works(), reason="no unprivileged network namespace (unshare -rn)")
def test_console_scripts_and_the_report_run_with_no_network(tmp_path):
    """No network at all (a private namespace): train, probe, aggregate and render still work."""
    config = tmp_path / "config.yaml"
    config.write_text((ROOT / "config" / "smoke.yaml").read_text())
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmds = [
        [str(BIN / "rnngrad"), "train", "--config", str(config), "--task", "copy", "--length", "5",
         "--variant", "gru", "--steps", "10", "--out", str(tmp_path / "run"), "--quiet"],
        [sys.executable, "-c", _OFFLINE, str(tmp_path), str(Path(__file__).parent)],
    ]  # fmt: skip
    for cmd in cmds:
        res = subprocess.run(
            ["unshare", "-rn", *cmd], capture_output=True, text=True, timeout=300, env=env
        )
        assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "run" / "summary.json").exists()
    html = (tmp_path / "out" / "small.html").read_text()
    assert "Diverged: 1" in html
