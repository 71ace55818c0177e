"""rnngrad.aggregate: the tables and bad inputs (statistics: test_stats; the decay measures:
test_measures)."""

from __future__ import annotations

import json
import math
import shutil
import statistics
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from rnngrad import aggregate as agg
from rnngrad.aggregate import (
    TABLES,
    InputError,
    build_tables,
    discover,
    read_table,
    variants_table,
    write_table,
)
from rnngrad.columns import TABLE_COLUMNS, check_table
from rnngrad.stats import wilson_interval
from tests.conftest import EARLY_UNSOLVED, JAC_EXAMPLES

# ------------------------------------------------------------------------------ tables


@pytest.fixture(scope="module")
def tables(results_tree):
    root, config = results_tree
    inputs = discover(root)
    return build_tables(inputs.run_dirs, inputs.probe_files, inputs.benchmark_files, config)


def _summaries(root):
    return [json.loads(p.read_text()) for p in sorted(root.glob("runs/*/T*/*/seed*/summary.json"))]


def test_build_tables_makes_every_table_as_declared(tables):
    assert tuple(tables) == TABLES == tuple(TABLE_COLUMNS)
    for name, df in [*tables.items(), *build_tables([], [], []).items()]:
        check_table(name, df)  # raises on a column or dtype off its declaration


def test_write_table_refuses_a_table_off_its_declaration(tmp_path, tables):
    success = tables["success"]
    bad = {
        "a column missing": success.drop(columns="verdict"),
        "columns out of order": success[[*success.columns[1:], success.columns[0]]],
        "a column too many": success.assign(extra=1),
        "a count as text": success.assign(seeds=success["seeds"].astype(str)),
        "a flag as a number": success.assign(attempted=1.0),
    }
    for why, df in bad.items():
        with pytest.raises(ValueError, match="table success"):
            write_table(df, tmp_path / "success")
        assert not list(tmp_path.iterdir()), why
    with pytest.raises(ValueError, match="unknown table"):
        write_table(success, tmp_path / "successes")
    runs = tables["runs"].assign(later_field=1)  # the runs keep a summary's other fields
    write_table(runs, tmp_path / "runs")


def test_runs_table_has_one_row_per_run_and_keeps_the_diverged_run(tables, results_tree):
    runs = tables["runs"]
    assert len(runs) == 2 * 2 * 3 * 2
    assert not runs.duplicated(["task", "length", "variant", "seed"]).any()
    div = runs[runs["status"] == "diverged"]
    assert list(zip(div["task"], div["length"], div["variant"], div["seed"], strict=True)) == [
        ("adding", 20, "rnn", 1)
    ]
    assert div["final_metric"].isna().all()
    assert "spec" not in runs.columns and "spec_json" in runs.columns


def test_success_table_counts_and_intervals(tables, results_tree):
    root, _ = results_tree
    success = tables["success"]
    assert len(success) == 2 * 2 * 3 and success["attempted"].all()
    summaries = pd.DataFrame(_summaries(root))
    for row in success.itertuples():
        runs = summaries[
            (summaries["task"] == row.task)
            & (summaries["length"] == row.length)
            & (summaries["variant"] == row.variant)
        ]
        solved = (runs["status"] == "solved").sum()
        assert row.seeds == len(runs)
        assert row.solved == solved
        assert row.diverged == (runs["status"] == "diverged").sum()
        assert row.stopped_early == runs["stopped_early"].sum()
        assert row.solved_rate == pytest.approx(solved / len(runs))
        lo, hi = wilson_interval(solved, len(runs))
        assert (row.solved_rate_ci_low, row.solved_rate_ci_high) == pytest.approx((lo, hi))
        metric = runs["test_metric"].dropna().astype(float).tolist()
        assert row.n_metric == len(metric)
        assert row.test_metric_mean == pytest.approx(statistics.fmean(metric))
        if len(metric) >= 2:
            assert min(metric) <= row.test_metric_ci_low <= row.test_metric_mean
            assert row.test_metric_mean <= row.test_metric_ci_high <= max(metric)
        else:
            assert math.isnan(row.test_metric_ci_low) and math.isnan(row.test_metric_ci_high)
        ratio = runs["test_loss_ratio"].dropna().astype(float)
        assert row.test_loss_ratio_median == pytest.approx(ratio.median())
    unsolved = success[success["solved"] == 0]
    assert len(unsolved) and unsolved["steps_to_solve_median"].isna().all()
    diverged = success[success["diverged"] > 0]
    assert diverged[["task", "length", "variant"]].values.tolist() == [["adding", 20, "rnn"]]
    assert diverged["n_metric"].tolist() == [1]


def test_status_and_success_come_from_the_test_metric(tables):
    runs = tables["runs"].set_index(["task", "length", "variant", "seed"])
    early = runs.loc[EARLY_UNSOLVED]
    assert early["stopped_early"] and early["status"] == "unsolved"
    assert early["final_metric"] < early["solve_threshold"] <= early["test_metric"]
    for c in ("test_size", "test_metric", "test_loss", "test_loss_ratio", "stopped_early"):
        assert c in runs.columns
    row = tables["success"].set_index(["task", "length", "variant"]).loc[EARLY_UNSOLVED[:3]]
    assert row["stopped_early"] == 2 and row["solved"] == 1 and row["unsolved"] == 1


def test_cells_of_the_grid_without_runs_are_not_attempted(results_tree):
    root, config = results_tree
    config = json.loads(json.dumps(config))
    config["train"]["tasks"]["adding"] = [10, 20, 50]  # T = 50 was never trained
    inputs = discover(root)
    tables = build_tables(inputs.run_dirs, inputs.probe_files, inputs.benchmark_files, config)
    success = tables["success"]
    missing = success[success["length"] == 50]
    assert sorted(missing["variant"]) == ["lstm", "rnn", "rnn_clip"]
    assert not missing["attempted"].any() and (missing["seeds"] == 0).all()
    for c in ("solved_rate", "solved_rate_ci_low", "test_metric_mean", "test_loss_ratio_mean"):
        assert missing[c].isna().all(), c
    assert missing.set_index("variant").loc["rnn_clip", "clip_norm"] == 1.0
    assert set(missing["metric_name"]) == {"mse"}
    assert success.loc[success["length"] != 50, "attempted"].all()
    assert len(success) == 2 * 2 * 3 + 3


def _runs(metric_name, values, statuses):
    n = len(values)
    return pd.DataFrame(
        {
            "task": "adding" if metric_name == "mse" else "copy",
            "length": 10,
            "variant": "rnn",
            "seed": range(n),
            "cell": "rnn_tanh",
            "init": "default",
            "constraint": "none",
            "clip_norm": np.nan,
            "hidden_size": 8,
            "metric_name": metric_name,
            "status": statuses,
            "test_metric": values,
            "test_loss_ratio": np.asarray(values) * 6,
            "stopped_early": [s == "solved" for s in statuses],
            "steps_to_solve": [100.0 if s == "solved" else np.nan for s in statuses],
            "steps_done": 100,
        }
    )


def test_success_intervals_stay_in_the_metric_range():
    mse = agg.success_table(_runs("mse", [0.001, 0.002, 0.3], ["solved", "solved", "unsolved"]))
    row = mse.iloc[0]
    assert 0 <= row["test_metric_ci_low"] <= row["test_metric_mean"] <= row["test_metric_ci_high"]
    assert row["solved_rate"] == pytest.approx(2 / 3)
    assert 0 <= row["solved_rate_ci_low"] < 2 / 3 < row["solved_rate_ci_high"] <= 1
    acc = agg.success_table(_runs("accuracy", [1.0, 0.999, 0.2], ["solved", "solved", "unsolved"]))
    row = acc.iloc[0]
    assert 0 <= row["test_metric_ci_low"] <= row["test_metric_ci_high"] <= 1
    all_solved = agg.success_table(_runs("mse", [0.001] * 4, ["solved"] * 4)).iloc[0]
    assert all_solved["solved_rate_ci_high"] == 1.0 and all_solved["solved_rate_ci_low"] > 0.4


def test_decay_table_init_and_train(tables):
    decay = tables["decay"]
    init = decay[decay["phase"] == "init"]
    assert len(init) == 2 * 2 * 3 * 3  # tasks x lengths x variants x init seeds
    assert init["probe_step"].isna().all()
    lstm = init[init["variant"] == "lstm"]["decay_rate"]
    assert lstm.mean() == pytest.approx(math.log10(0.9), abs=0.01)
    rnn = init[init["variant"] == "rnn"]["decay_rate"]
    assert rnn.mean() == pytest.approx(math.log10(0.5), abs=0.01)
    train = decay[decay["phase"] == "train"]
    profiles = tables["train_profiles"]
    assert len(train) == len(
        profiles.drop_duplicates(["task", "length", "variant", "seed", "probe_step"])
    )
    assert train["probe_step"].notna().all()
    # the bound's share: every (example, step) pair of a vanilla cell, none for the LSTM
    vanilla = decay[decay["variant"] != "lstm"]
    assert (vanilla["bound_share"] == 1.0).all()
    assert (vanilla["bound_pairs"] == JAC_EXAMPLES * (vanilla["max_distance"] + 1)).all()
    lstm = decay[decay["variant"] == "lstm"]
    assert lstm["bound_share"].isna().all() and (lstm["bound_pairs"] == 0).all()


def test_run_file_tables_carry_the_run_keys(tables, results_tree):
    root, _ = results_tree
    curves = tables["curves"]
    total = sum(len(pd.read_parquet(p)) for p in root.glob("runs/*/T*/*/seed*/curve.parquet"))
    assert len(curves) == total
    for name in ("curves", "train_profiles", "spectra", "init_profiles"):
        df = tables[name]
        assert list(df.columns[:4]) == ["task", "length", "variant", "seed"], name
        assert df["length"].dtype == np.int64 and df["seed"].dtype == np.int64


def test_cost_table_joins_the_benchmarks(tables):
    cost = tables["cost"]
    assert len(cost) == 2 * 2 * 3
    assert (
        np.isfinite(cost[["steps_per_second", "bench_seconds", "cpu_seconds", "max_rss_mb"]])
        .all()
        .all()
    )
    assert set(cost["cell"]) == {"lstm", "rnn_tanh"}
    assert (cost["seconds_per_step"] * cost["steps_per_second"]).round(12).eq(1).all()


def test_variants_table_fills_config_defaults():
    config = {
        "hidden_size": 32,
        "variants": {"a": {"cell": "gru"}, "b": {"cell": "lstm", "hidden_size": 8, "clip_norm": 1}},
        "train": {"variants": ["b"], "lr": 0.01},
    }
    v = variants_table(config).set_index("variant")
    assert v.loc["a", "init"] == "default" and v.loc["a", "constraint"] == "none"
    assert v.loc["a", "hidden_size"] == 32 and v.loc["b", "hidden_size"] == 8
    assert math.isnan(v.loc["a", "clip_norm"]) and v.loc["b", "clip_norm"] == 1.0
    assert v.loc["a", "lr"] == 0.01
    assert v["trained"].tolist() == [False, True]


def test_write_table_writes_parquet_and_csv_atomically(tmp_path, tables):
    parquet, csv = write_table(tables["success"], tmp_path / "sub" / "success")
    assert parquet.name == "success.parquet" and csv.name == "success.csv"
    back = pd.read_parquet(parquet)
    pd.testing.assert_frame_equal(back, tables["success"], check_dtype=False)
    assert len(pd.read_csv(csv)) == len(tables["success"])
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == [
        "success.csv",
        "success.parquet",
    ]


def test_aggregate_writes_every_table(tables_dir):
    for name in TABLES:
        assert (tables_dir / f"{name}.parquet").is_file() and (tables_dir / f"{name}.csv").is_file()
    assert len(read_table(tables_dir, "runs")) == 24
    with pytest.raises(ValueError, match="unknown table"):
        read_table(tables_dir, "nope")


def test_empty_inputs_give_empty_tables_with_columns():
    tables = build_tables([], [], [])
    assert all(len(df) == 0 for df in tables.values())
    assert {"task", "variant", "solved_rate"} <= set(tables["success"].columns)
    assert {"phase", "decay_rate", "horizon", "bound_share"} <= set(tables["decay"].columns)
    assert {"attempted", "test_metric_ci_low"} <= set(tables["success"].columns)


# -------------------------------------------------------------------------- bad inputs


@pytest.fixture
def run_copy(results_tree, tmp_path):
    root, _ = results_tree
    src = root / "runs" / "copy" / "T10" / "lstm" / "seed0"
    dst = tmp_path / "runs" / "copy" / "T10" / "lstm" / "seed0"
    shutil.copytree(src, dst)
    return dst


def test_truncated_parquet_error_names_the_path(run_copy):
    path = run_copy / "curve.parquet"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError, match=str(path)):
        agg.curves_table([run_copy])


def test_missing_file_error_names_the_path(run_copy):
    (run_copy / "spectra.parquet").unlink()
    with pytest.raises(FileNotFoundError, match=str(run_copy / "spectra.parquet")):
        agg.spectra_table([run_copy])


def test_truncated_summary_error_names_the_path(run_copy):
    path = run_copy / "summary.json"
    path.write_text(path.read_text()[:50])
    with pytest.raises(InputError, match=str(path)):
        agg.runs_table([run_copy])


def test_truncated_probe_file_error_names_the_path(results_tree, tmp_path):
    root, _ = results_tree
    path = tmp_path / "adding" / "T10" / "rnn.parquet"
    path.parent.mkdir(parents=True)
    path.write_bytes((root / "probes" / "adding" / "T10" / "rnn.parquet").read_bytes()[:-40])
    with pytest.raises(InputError, match=str(path)):
        agg.init_profiles_table([path])


def test_bad_benchmark_path_or_file_is_named(results_tree, tmp_path):
    root, _ = results_tree
    runs = agg.runs_table(discover(root).run_dirs)
    per_job = tmp_path / "adding" / "T10" / "rnn.tsv"  # a format the workflow no longer writes
    per_job.parent.mkdir(parents=True)
    for bad in (tmp_path / "whatever.tsv", per_job):
        bad.write_text("s\tcpu_time\tmax_rss\n1\t1\t1\n")
        with pytest.raises(InputError, match=str(bad)):
            agg.cost_table(runs, [bad])
    empty = tmp_path / "adding" / "T10" / "rnn" / "seed0.tsv"
    empty.parent.mkdir()
    empty.write_text("")
    with pytest.raises(InputError, match=str(empty)):
        agg.cost_table(runs, [empty])


def test_the_analysis_layer_imports_neither_torch_nor_snakemake():
    code = (
        "import sys, rnngrad.aggregate, rnngrad.findings, rnngrad.figures, rnngrad.render; "
        "bad = [m for m in ('torch', 'snakemake') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
