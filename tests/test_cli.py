import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from rnngrad.cli import main

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / "config" / "smoke.yaml")


def test_train_writes_the_run_files(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "--config",
            SMOKE,
            "--task",
            "copy",
            "--length",
            "5",
            "--variant",
            "gru",
            "--seed",
            "1",
            "--steps",
            "20",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["variant"] == "gru" and summary["seed"] == 1 and summary["steps_done"] == 20
    assert summary["config_hash"] and summary["spec"]["steps"] == 20
    assert len(pd.read_parquet(out / "curve.parquet")) == 20
    printed = capsys.readouterr().out
    assert "copy T=5 gru seed=1" in printed
    shown = f"test accuracy {summary['test_metric']:.4g} on {summary['test_size']} held-out"
    assert shown in printed


def test_probe_writes_a_profile_per_seed(tmp_path):
    out = tmp_path / "p.parquet"
    rc = main(
        [
            "probe",
            "--config",
            SMOKE,
            "--task",
            "adding",
            "--length",
            "20",
            "--variant",
            "rnn",
            "--seeds",
            "3",
            "--batch-size",
            "4",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    df = pd.read_parquet(out)
    assert sorted(df["seed"].unique()) == [0, 1, 2]
    assert len(df) == 3 * 20 and (df["variant"] == "rnn").all()


def test_variants_lists_the_config(capsys):
    assert main(["variants", "--config", SMOKE]) == 0
    out = capsys.readouterr().out
    assert "lstm_chrono" in out and "init=chrono" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["train", "--task", "adding", "--length", "10", "--variant", "nope", "--out", "x"],
            "unknown variant 'nope'; defined variants are",
        ),
        (
            ["train", "--task", "adding", "--length", "1", "--variant", "rnn", "--out", "x"],
            "length must be >= 2",
        ),
        (["variants", "--config", "/nonexistent.yaml"], "config file not found: /nonexistent.yaml"),
    ],
)
def test_errors_are_one_clear_line(argv, message, capsys):
    if "--config" not in argv:
        argv = [*argv, "--config", SMOKE]
    assert main(argv) == 1
    assert message in capsys.readouterr().err


def test_console_script_help():
    out = subprocess.run(
        [sys.executable, "-m", "rnngrad.cli", "train", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--length T" in out and "--variant NAME" in out


def _config_file(config: dict, tmp_path: Path) -> Path:
    import yaml

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_aggregate_and_figure_commands_give_what_the_workflow_rules_give(
    results_tree, tables_dir, figures_dir, tmp_path, capsys
):
    import matplotlib.image

    from rnngrad.aggregate import TABLES

    root, config = results_tree
    cfg = _config_file(config, tmp_path)
    out = tmp_path / "tables"
    assert main(["aggregate", "--config", str(cfg), "--results", str(root), "--out", str(out)]) == 0
    for name in TABLES:
        pd.testing.assert_frame_equal(
            pd.read_parquet(out / f"{name}.parquet"),
            pd.read_parquet(tables_dir / f"{name}.parquet"),
        )
    stem = tmp_path / "fig" / "decay_init"
    assert main(["figure", "decay_init", "--config", str(cfg), "--tables", str(out),
                 "--out", str(stem)]) == 0  # fmt: skip
    drawn = matplotlib.image.imread(stem.with_suffix(".png"))
    assert (drawn == matplotlib.image.imread(figures_dir / "decay_init.png")).all()
    assert stem.with_suffix(".svg").stat().st_size > 0
    capsys.readouterr()
    assert main(["figure", "nope", "--config", str(cfg), "--tables", str(out)]) == 1
    assert "decay_init" in capsys.readouterr().err  # the error lists the figures


@pytest.mark.slow
def test_render_command_renders_the_report_with_its_config(
    results_tree, tables_dir, figures_dir, tmp_path
):
    root, config = results_tree
    cfg = _config_file(config, tmp_path)
    html = tmp_path / "report.html"
    argv = ["render", "--config", str(cfg), "--tables", str(tables_dir), "--figures",
            str(figures_dir), "--out", str(html), "--renderer", "jupyter-fallback"]  # fmt: skip
    assert main(argv) == 0
    from rnngrad.config import reproduce_commands

    page = html.read_text()  # the Reproducibility section names the config and the command
    text = re.sub(r"<[^>]+>", "", page)  # the command's words are highlighted one by one
    assert f"<code>{cfg}</code>" in page
    assert reproduce_commands([str(cfg)])[0] in text
