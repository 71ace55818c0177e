"""Malformed configs are rejected before any job runs, with the key and the allowed values named.

Each case is config/smoke.yaml with one thing broken. Every case goes through three
doors: `check_config` (in process), `rnngrad train --config F` and `snakemake -n
--configfile F`. Snakemake runs in a scratch folder laid out like the repository
(config/config.yaml present, as a user has it), so the Snakefile's default config is
in play exactly as it is for a user. Starting Snakemake costs seconds (it imports
torch through rnngrad), so the dry runs go through one helper process that imports
once and forks a fresh `snakemake` command line per config; two cases also go
through the real console scripts, to show the forked runs answer the same.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from rnngrad.cli import main
from rnngrad.config import ConfigError, load_config
from tests.forking import driver_argv

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "config" / "smoke.yaml"
BIN = Path(sys.executable).parent
TRAIN_ARGS = ["--task", "adding", "--length", "8", "--variant", "rnn", "--seed", "0", "--quiet"]


def _set(*path, value) -> Callable[[dict], None]:
    def mutate(cfg: dict) -> None:
        node = cfg
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _delete(*path) -> Callable[[dict], None]:
    def mutate(cfg: dict) -> None:
        node = cfg
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


def _both(*mutations) -> Callable[[dict], None]:
    def mutate(cfg: dict) -> None:
        for m in mutations:
            m(cfg)

    return mutate


@dataclass(frozen=True)
class Case:
    """A broken config: what is broken, and what the message must contain."""

    name: str
    mutate: Callable  # dict -> None, or str -> str when text=True
    key: str  # the key (path) the message names
    allowed: str | None  # the allowed values (or bound) it names; None where none apply
    text: bool = False  # mutate the YAML text instead of the parsed mapping
    snakemake: tuple[str, ...] | None = None  # what Snakemake says, where it speaks first


def _variant(name: str = "v", train: bool = False, **fields) -> Callable[[dict], None]:
    """Add a variant of the test's own (smoke.yaml's names may change); `train`: train it too."""

    def mutate(cfg: dict) -> None:
        cfg["variants"][name] = fields
        if train:
            cfg["train"]["variants"] = [*cfg["train"].get("variants", []), name]

    return mutate


def _train_variants(*names) -> Callable[[dict], None]:
    """train.variants: `None` stands for the first variant smoke.yaml defines."""

    def mutate(cfg: dict) -> None:
        first = next(iter(cfg["variants"]))
        cfg["train"]["variants"] = [first if n is None else n for n in names]

    return mutate


NAME = "^[a-z][a-z0-9_]*$"
CASES = [
    Case("unknown_top_level_key", _set("threads", value=4), "threads", "'device'"),
    Case("unknown_variant_key", _variant(cell="rnn_tanh", dropout=0.1), "dropout", "'clip_norm'"),
    Case("unknown_cell", _variant(cell="transformer"), "variants.v.cell", "'rnn_tanh'"),
    Case("unknown_init", _variant(cell="gru", init="xavier"), "variants.v.init", "'chrono'"),
    Case("unknown_constraint", _variant(cell="gru", constraint="unitary"), "variants.v.constraint", "'orthogonal'"),
    Case("unknown_task", _set("train", "tasks", "parity", value=[5]), "parity", "'adding'"),
    Case("unknown_train_key", _set("train", "epochs", value=3), "epochs", "'steps'"),
    Case("length_below_2", _set("train", "tasks", "adding", value=[1, 8]), "train.tasks.adding", "minimum of 2"),
    Case("probe_length_below_2", _set("probes", "tasks", "adding", value=[0]), "probes.tasks.adding", "minimum of 2"),
    Case("non_integer_length", _set("train", "tasks", "copy", value=[5.5]), "train.tasks.copy", "integer"),
    Case("negative_seed", _set("train", "seeds", value=[0, -1]), "train.seeds", "minimum of 0"),
    Case("non_integer_seed", _set("train", "seeds", value=[0.5]), "train.seeds", "integer"),
    Case("seeds_not_a_list", _set("train", "seeds", value="0"), "train.seeds", "array"),
    Case("duplicate_seed", _set("train", "seeds", value=[1, 1]), "train.seeds", "non-unique"),
    Case("zero_steps", _set("train", "steps", value=0), "train.steps", "an integer >= 1"),
    Case("zero_steps_of_a_task", _set("train", "steps", value={"adding": 0, "copy": 5}), "train.steps.adding", "an integer >= 1"),
    Case("zero_steps_at_a_length", _set("train", "steps", value={"adding": [5, 0], "copy": 5}), "train.steps.adding", "an integer >= 1 or an array"),
    Case("steps_of_an_unknown_task", _set("train", "steps", value={"adding": 5, "copy": 5, "parity": 5}), "parity", "'adding'"),
    Case("steps_missing_a_trained_task", _set("train", "steps", value={"adding": 5}), "train.steps", "['copy']"),
    Case("steps_a_string", _set("train", "steps", value="60"), "train.steps", "an integer >= 1 or a mapping"),
    Case("lengths_decreasing", _set("train", "tasks", "adding", value=[16, 8]), "train.tasks.adding", "must increase"),
    Case("lengths_unsorted", _set("train", "tasks", "adding", value=[8, 32, 16]), "train.tasks.adding", "[8, 32, 16]"),
    Case("adaptive_not_a_boolean", _set("train", "adaptive", value="yes"), "train.adaptive", "boolean"),
    Case("zero_checkpoint_every", _set("train", "checkpoint_every", value=0), "train.checkpoint_every", "minimum of 1"),
    Case("negative_probe_every", _set("train", "probe_every", value=-1), "train.probe_every", "minimum of 0"),
    Case("variant_name_dotdot", _variant("../x", cell="gru"), "'../x'", NAME),
    Case("variant_name_space", _variant("a b", cell="gru"), "'a b'", NAME),
    Case("variant_name_shell", _variant("$(touch pwned)", cell="gru"), "'$(touch pwned)'", NAME),
    Case("variant_name_newline", _variant("x\n", cell="gru"), "'x\\n'", NAME),
    Case("variant_name_upper", _variant("LSTM", cell="lstm"), "'LSTM'", NAME),
    Case("train_variant_unsafe", _train_variants(None, "../rnn"), "'../rnn'", NAME),
    Case("duplicate_variant_key", lambda t: t.replace("variants:\n", "variants:\n  dup: {cell: gru}\n  dup: {cell: lstm}\n", 1),
         "duplicate key 'dup'", "line", text=True),
    Case("duplicate_top_level_key", lambda t: t + "\ndevice: cuda\n", "duplicate key 'device'", "line", text=True),
    Case("duplicate_in_train_variants", _train_variants(None, None), "train.variants", "non-unique"),
    Case("undefined_train_variant", _train_variants(None, "nope"), "'nope'", "defined variants are"),
    Case("undefined_probe_variant", _set("probes", "variants", value=["nope"]), "probes.variants", "defined variants are"),
    Case("wrong_type_batch_size", _set("train", "batch_size", value="16"), "train.batch_size", "integer"),
    Case("wrong_type_hidden_size", _set("hidden_size", value=16.5), "hidden_size", "integer"),
    Case("bool_as_integer", _set("train", "steps", value=True), "train.steps", "integer"),
    Case("variants_a_list", _set("variants", value=["rnn", "gru"]), "variants", "object"),
    Case("variant_not_a_mapping", _set("variants", "v", value="rnn_tanh"), "variants.v", "object"),
    Case("variant_without_cell", _variant(init="orthogonal"), "variants.v", "'cell' is a required"),
    Case("empty_grid", _set("train", "tasks", value={}), "train.tasks", "'adding'"),
    Case("empty_probe_grid", _set("probes", "tasks", value={}), "probes.tasks", "'adding'"),
    Case("empty_lengths", _set("train", "tasks", "adding", value=[]), "train.tasks.adding", "at least 1"),
    Case("empty_seeds", _set("train", "seeds", value=[]), "train.seeds", "at least 1"),
    Case("no_variants", _both(_set("variants", value={}), _delete("train", "variants")), "variants", "must not be empty"),
    Case("missing_train_section", _delete("train"), "'train'", "required"),
    Case("bad_device", _set("device", value="tpu"), "device", "'cuda'"),
    Case("clip_norm_zero", _variant(cell="rnn_tanh", clip_norm=0), "variants.v.clip_norm", "a number > 0"),
    Case("clip_norm_negative", _variant(cell="rnn_tanh", clip_norm=-1.0), "variants.v.clip_norm", "a number > 0"),
    Case("clip_norm_string", _variant(cell="rnn_tanh", clip_norm="1.0"), "variants.v.clip_norm", "null or a number > 0"),
    Case("clip_norm_nan", _variant(cell="rnn_tanh", clip_norm=float("nan")), "variants.v.clip_norm", "finite"),
    Case("lr_infinite", _set("train", "lr", value=float("inf")), "train.lr", "finite"),
    Case("lr_zero", _set("train", "lr", value=0), "train.lr", "less than or equal to the minimum of 0"),
    Case("hidden_size_zero", _set("hidden_size", value=0), "hidden_size", "minimum of 1"),
    Case("solve_above_one", _set("train", "solve", value={"copy": 1.5}), "train.solve.copy", "maximum of 1"),
    Case("identity_init_on_lstm", _variant(cell="lstm", init="identity"), "variants.v", "needs cell 'rnn_relu'"),
    Case("chrono_on_vanilla_rnn", _variant(cell="rnn_tanh", init="chrono"), "variants.v", "needs cell 'lstm'"),
    Case("orthogonal_constraint_on_gru", _variant(cell="gru", constraint="orthogonal"), "variants.v", "'rnn_tanh' or 'rnn_relu'"),
    Case("chrono_at_length_2", _both(_variant(train=True, cell="lstm", init="chrono"), _set("train", "tasks", value={"adding": [2]})),
         "train.tasks.adding", "lengths >= 3"),
    Case("yaml_syntax_error", lambda t: t + "\nbroken: [1, 2\n", "line", "invalid YAML", text=True,
         snakemake=("not valid JSON or YAML",)),
    Case("not_a_mapping", lambda t: "- rnn\n- gru\n", "config", "must be a mapping", text=True,
         snakemake=("keys at top level",)),
]  # fmt: skip
IDS = [c.name for c in CASES]


def _write(case: Case, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{case.name}.yaml"
    text = SMOKE.read_text()
    if case.text:
        path.write_text(case.mutate(text))
    else:
        cfg = copy.deepcopy(yaml.safe_load(text))
        case.mutate(cfg)
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def configs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad_configs")
    return {case.name: _write(case, folder) for case in CASES}


# --- check_config, in process ------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_check_config_names_the_key_and_allowed_values(case, configs):
    with pytest.raises(ConfigError) as err:
        load_config(configs[case.name])
    message = str(err.value)
    assert "\n" not in message
    assert case.key in message, message
    if case.allowed:
        assert case.allowed in message, message


def test_the_unbroken_smoke_config_passes(tmp_path):
    """The cases break a valid config: without the break it loads."""
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(yaml.safe_load(SMOKE.read_text())))
    load_config(path)


# --- rnngrad train ----------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_rnngrad_train_fails_with_one_line_before_any_work(case, configs, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--config", str(configs[case.name]), *TRAIN_ARGS, "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 1
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert lines[0].startswith("rnngrad train: error: ")
    assert case.key in lines[0]
    if case.allowed:
        assert case.allowed in lines[0]
    assert not out.exists(), "the run folder was created for a rejected config"
    assert captured.out == ""


# --- snakemake -n -----------------------------------------------------------------------

# Imports what the Snakefile imports once, then forks one `snakemake` command line per
# config (os.fork: the child starts from the imported modules, with nothing else shared).
_FORKED_SNAKEMAKE = r"""
import json, sys
import snakemake.cli
import rnngrad.aggregate, rnngrad.config, rnngrad.figures, rnngrad.train  # noqa: F401
from tests.forking import run_forked
results = {name: run_forked(snakemake.cli.main, argv, log) for name, argv, log in json.loads(sys.argv[1])}
print(json.dumps(results))
"""

CONSOLE_CASES = ("empty_grid", "variant_name_dotdot")  # also through the real console scripts


def _workdir(root: Path, name: str) -> Path:
    """A scratch folder laid out like the repository: config/config.yaml and report/."""
    work = root / name
    (work / "config").mkdir(parents=True)
    shutil.copy(ROOT / "config" / "config.yaml", work / "config" / "config.yaml")
    (work / "report").symlink_to(ROOT / "report")
    return work


def _snakemake_argv(config: Path, work: Path) -> list[str]:
    return ["-n", "--snakefile", str(ROOT / "Snakefile"), "--configfile", str(config),
            "--directory", str(work), "--cores", "1", "--quiet", "rules"]  # fmt: skip


@pytest.fixture(scope="module")
def dry_runs(configs, tmp_path_factory) -> dict[str, tuple[int, str, Path]]:
    """name -> (exit code, output, working folder) of `snakemake -n` on every config."""
    root = tmp_path_factory.mktemp("dry_runs")
    ok = root / "ok.yaml"
    ok.write_text(SMOKE.read_text())
    todo = {**configs, "_valid": ok}
    jobs = []
    for name, path in todo.items():
        work = _workdir(root, name)
        jobs.append([name, _snakemake_argv(path, work), str(root / f"{name}.log")])

    def forked():
        res = subprocess.run(driver_argv(_FORKED_SNAKEMAKE, json.dumps(jobs)),
                             capture_output=True, text=True, timeout=300, cwd=root)  # fmt: skip
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout.strip().splitlines()[-1])

    def console(name):
        work = _workdir(root, f"console_{name}")
        argv = [str(BIN / "snakemake"), *_snakemake_argv(configs[name], work)]
        res = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=root)
        return res.returncode, res.stdout + res.stderr, work

    with ThreadPoolExecutor(3) as pool:
        consoles = {name: pool.submit(console, name) for name in CONSOLE_CASES}
        codes = forked()
    runs = {name: (codes[name], (root / f"{name}.log").read_text(), root / name) for name in todo}
    runs.update({f"console_{name}": fut.result() for name, fut in consoles.items()})
    return runs


def _no_job_output(work: Path) -> None:
    made = sorted(
        p.relative_to(work).as_posix() for p in work.rglob("*") if ".snakemake" not in p.parts
    )
    assert not (work / "results").exists(), made
    assert not list(work.rglob("pwned")), "a config value reached a shell"


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_snakemake_dry_run_fails_naming_the_key(case, dry_runs):
    rc, output, work = dry_runs[case.name]
    assert rc != 0, output[-2000:]
    expected = case.snakemake or (case.key, *([case.allowed] if case.allowed else []))
    for text in expected:
        assert text in output, f"{text!r} not in:\n{output[-2000:]}"
    _no_job_output(work)


@pytest.mark.slow
def test_snakemake_accepts_the_valid_config(dry_runs):
    rc, output, work = dry_runs["_valid"]
    assert rc == 0, output[-3000:]
    _no_job_output(work)


@pytest.mark.slow
@pytest.mark.parametrize("name", CONSOLE_CASES)
def test_console_snakemake_agrees_with_the_forked_runs(name, dry_runs):
    rc, output, work = dry_runs[f"console_{name}"]
    assert rc == dry_runs[name][0] != 0
    case = next(c for c in CASES if c.name == name)
    assert case.key in output and case.allowed in output, output[-2000:]
    _no_job_output(work)


@pytest.mark.slow
def test_console_rnngrad_train_prints_one_line(configs, tmp_path):
    """The installed console script, not main(): one stderr line, no traceback, exit 1."""
    argv = [str(BIN / "rnngrad"), "train", "--config", str(configs["variant_name_dotdot"]),
            *TRAIN_ARGS, "--out", str(tmp_path / "run")]  # fmt: skip
    res = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "'../x'" in lines[0] and "^[a-z][a-z0-9_]*$" in lines[0]
    assert not (tmp_path / "run").exists()


def test_enough_cases():
    assert len(CASES) >= 15 and len(set(IDS)) == len(IDS)
