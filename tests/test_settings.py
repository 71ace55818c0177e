"""The typed config (rnngrad.settings) is the one place of the defaults: the committed
JSON schema is generated from it, and the CLI and the workflow read the same values."""

import copy
from pathlib import Path

import pytest
import yaml

from rnngrad import config as cfgmod
from rnngrad import settings
from rnngrad.cli import main

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "config" / "smoke.yaml"


def test_the_committed_schema_is_the_one_generated_from_the_model():
    assert cfgmod.SCHEMA_PATH.read_text() == cfgmod.schema_text(), "run `rnngrad schema`"
    # Snakemake's folder and editors see the same file
    workflow_schema = ROOT / "workflow" / "schemas" / "config.schema.yaml"
    assert workflow_schema.resolve() == cfgmod.SCHEMA_PATH.resolve()


def test_rnngrad_schema_writes_it(tmp_path, capsys):
    out = tmp_path / "schema.yaml"
    assert main(["schema", "--out", str(out)]) == 0
    assert out.read_text() == cfgmod.SCHEMA_PATH.read_text()
    assert yaml.safe_load(out.read_text())["properties"]["probes"] == {"$ref": "#/$defs/Probes"}


@pytest.fixture
def changed_default():
    """Change one default of the model, as an edit of settings.py would, then undo it."""
    undo = []

    def change(model, key, value):
        field = model.model_fields[key]
        undo.append((field, field.default))
        field.default = value
        _rebuild()

    yield change
    for field, old in reversed(undo):
        field.default = old
    _rebuild()


def _rebuild():
    for model in (settings.Train, settings.Probes, settings.Config):
        model.model_rebuild(force=True)
    cfgmod.json_schema.cache_clear()


def _config_without(tmp_path, section, key) -> Path:
    raw = yaml.safe_load(SMOKE.read_text())
    raw = copy.deepcopy(raw)
    raw[section].pop(key, None)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_a_probe_default_changed_in_the_model_reaches_the_cli_and_the_dag(
    changed_default, tmp_path, monkeypatch
):
    import rnngrad.io
    import rnngrad.probes

    changed_default(settings.Probes, "jac_examples", 7)
    path = _config_without(tmp_path, "probes", "jac_examples")
    # the workflow: common.smk checks the config, probe.smk passes probe_settings(CFG)
    assert cfgmod.probe_settings(cfgmod.load_config(path)).jac_examples == 7
    assert cfgmod.json_schema()["$defs"]["Probes"]["properties"]["jac_examples"]["default"] == 7
    # the CLI
    seen = {}
    monkeypatch.setattr(rnngrad.probes, "init_probe", lambda *a, **kw: seen.update(kw))
    monkeypatch.setattr(rnngrad.io, "write_parquet", lambda *a: None)
    argv = ["probe", "--config", str(path), "--task", "adding", "--length", "8"]
    assert main([*argv, "--variant", "rnn", "--out", str(tmp_path / "p.parquet")]) == 0
    assert seen["jac_examples"] == 7


def test_a_training_default_changed_in_the_model_reaches_the_cli_and_the_dag(
    changed_default, tmp_path, monkeypatch
):
    import rnngrad.train

    changed_default(settings.Train, "test_size", 777)
    path = _config_without(tmp_path, "train", "test_size")
    # the workflow: run_identity (common.smk) and the train script call run_spec
    point = cfgmod.GridPoint("adding", 8, "rnn", 0)
    assert cfgmod.run_spec(cfgmod.load_config(path), point).test_size == 777
    # the CLI
    seen = []

    def fake_train_run(spec, out, **kw):
        seen.append(spec)
        return dict(test_metric=None, stopped_early=False, status="unsolved", steps_done=0,
                    metric_name="mse", test_size=spec.test_size)  # fmt: skip

    monkeypatch.setattr(rnngrad.train, "train_run", fake_train_run)
    argv = ["train", "--config", str(path), "--task", "adding", "--length", "8"]
    assert main([*argv, "--variant", "rnn", "--out", str(tmp_path / "run")]) == 0
    assert seen[0].test_size == 777


def test_run_spec_takes_its_defaults_and_bounds_from_the_model():
    spec = settings.RunSpec("adding", 8)
    for key in ("batch_size", "lr", "eval_every", "test_size", "probe_every", "steps"):
        assert getattr(spec, key) == settings.default(settings.Train, key), key
    assert spec.device == settings.default(settings.Config, "device")
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        settings.RunSpec("adding", 8, batch_size=0)
    with pytest.raises(ValueError, match="length must be >= 2"):
        settings.RunSpec("adding", 1)


def test_the_probes_default_jac_examples_is_the_models():
    import rnngrad.probes

    assert rnngrad.probes.JAC_EXAMPLES == settings.default(settings.Probes, "jac_examples")
