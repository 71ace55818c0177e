import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rnngrad.config import (
    ConfigError,
    GridPoint,
    check_config,
    climb_criterion,
    config_hash,
    horizon_length,
    load_config,
    probe_grid,
    run_spec,
    train_grid,
    train_steps,
    variant_specs,
)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "config").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    cfg = load_config(path)
    assert train_grid(cfg) and probe_grid(cfg)


def test_defaults_are_filled_from_the_schema():
    cfg = check_config(
        {
            "variants": {"a": {"cell": "gru"}},
            "train": {"tasks": {"adding": [5]}, "seeds": [0]},
            "probes": {"tasks": {"copy": [5]}},
        }
    )
    assert (
        cfg["device"] == "auto" and cfg["train"]["steps"] == 3000 and cfg["probes"]["seeds"] == 10
    )
    assert cfg["variants"]["a"]["init"] == "default"
    assert variant_specs(cfg)["a"].hidden_size == 64


def test_grids_and_run_spec():
    cfg = load_config(ROOT / "config" / "smoke.yaml")
    grid = train_grid(cfg)
    n_lengths = sum(len(v) for v in cfg["train"]["tasks"].values())
    assert len(grid) == n_lengths * len(cfg["train"]["variants"]) * len(cfg["train"]["seeds"])
    assert len(set(grid)) == len(grid)
    spec = run_spec(cfg, GridPoint("adding", 8, "gru", 1), threads=2, steps=7)
    assert spec.steps == 7 and spec.threads == 2 and spec.seed == 1 and spec.model.cell == "gru"
    assert spec.model.hidden_size == cfg["hidden_size"]
    with pytest.raises(ConfigError, match="unknown variant 'nope'"):
        run_spec(cfg, GridPoint("adding", 8, "nope", 0))


def test_climb_criterion_sequential_and_the_common_horizon_length():
    raw = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    cfg = check_config(raw)
    assert cfg["train"]["sequential"] is True and climb_criterion(cfg, "copy") == "solved"
    raw["train"]["climb"] = {"copy": "off_baseline"}
    cfg = check_config(raw)
    assert climb_criterion(cfg, "copy") == "off_baseline"
    assert climb_criterion(cfg, "adding") == "solved"
    # every run of a task is probed at the end at the task's longest length
    assert run_spec(cfg, GridPoint("adding", 8, "gru", 0)).horizon_length == 16
    assert horizon_length(cfg, "copy") == 5
    raw["train"]["climb"] = {"copy": "nearly"}
    with pytest.raises(ConfigError, match="train.climb.copy: 'nearly' is not one of"):
        check_config(raw)


def test_steps_per_task_and_the_sweep_switch():
    cfg = load_config(ROOT / "config" / "smoke.yaml")
    assert cfg["train"]["adaptive"] is True  # the schema's default
    raw = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    raw["train"].update(steps={"adding": 11, "copy": 22}, adaptive=False)
    cfg = check_config(raw)
    assert cfg["train"]["adaptive"] is False
    assert train_steps(cfg, "adding", 8) == 11 and train_steps(cfg, "copy", 5) == 22
    assert run_spec(cfg, GridPoint("copy", 5, "gru", 0)).steps == 22
    assert run_spec(cfg, GridPoint("adding", 8, "gru", 0)).steps == 11
    assert run_spec(cfg, GridPoint("copy", 5, "gru", 0), steps=3).steps == 3  # --steps wins
    # the grid still lists every planned run, whatever the sweep will train
    assert len(train_grid(cfg)) == len(train_grid(load_config(ROOT / "config" / "smoke.yaml")))
    raw["train"]["steps"] = 33
    cfg = check_config(raw)
    assert train_steps(cfg, "adding", 16) == train_steps(cfg, "copy", 5) == 33
    # one budget per length
    raw["train"]["steps"] = {"adding": [7, 9], "copy": 22}
    cfg = check_config(raw)
    assert [run_spec(cfg, GridPoint("adding", n, "gru", 0)).steps for n in (8, 16)] == [7, 9]
    # off the ladder: the next length up, or the longest
    assert [train_steps(cfg, "adding", n) for n in (4, 12, 32)] == [7, 9, 9]
    raw["train"]["steps"] = {"adding": [7], "copy": 22}
    with pytest.raises(
        ConfigError, match=r"train.steps.adding: a list of budgets needs one per length"
    ):
        check_config(raw)
    raw["train"].update(steps={"adding": 5}, tasks={"adding": [8]})  # copy not trained
    cfg = check_config(raw)
    with pytest.raises(ConfigError, match="no step budget for task 'copy'"):
        run_spec(cfg, GridPoint("copy", 5, "gru", 0))


def test_train_lengths_must_increase_probe_lengths_need_not():
    raw = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    raw["probes"]["tasks"] = {"adding": [64, 8]}
    check_config(raw)
    raw["train"]["tasks"] = {"adding": [8, 32, 16]}
    with pytest.raises(ConfigError, match=r"train\.tasks\.adding: lengths must increase"):
        check_config(raw)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_train_increasing_lengths(path):
    cfg = load_config(path)
    for task, lengths in cfg["train"]["tasks"].items():
        assert lengths == sorted(lengths) and len(lengths) >= 1, task


def test_config_hash_is_stable_and_sensitive():
    cfg = load_config(ROOT / "config" / "smoke.yaml")
    assert config_hash(cfg) == config_hash(load_config(ROOT / "config" / "smoke.yaml"))
    cfg["train"]["batch_size"] += 1
    assert config_hash(cfg) != config_hash(load_config(ROOT / "config" / "smoke.yaml"))


def test_duplicate_keys_are_rejected(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(
        (ROOT / "config" / "smoke.yaml").read_text() + "\nvariants:\n  x: {cell: gru}\n"
    )
    with pytest.raises(ConfigError, match="duplicate key 'variants'"):
        load_config(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="config file not found: .*nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_error_names_key_and_allowed_values():
    cfg = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    cfg["variants"]["rnn"]["cell"] = "transformer"
    with pytest.raises(
        ConfigError, match=r"variants\.rnn\.cell: 'transformer' is not one of \['rnn_tanh'"
    ):
        check_config(cfg)


def test_the_config_layer_imports_no_torch():
    # the Snakefile imports rnngrad.config (and specs): parsing it must not pay for torch
    code = (
        "import sys, rnngrad.config, rnngrad.specs, rnngrad.cli; "
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)[:5]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
