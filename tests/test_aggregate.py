"""rnngrad.aggregate: decay measures, statistics, the tables, and bad inputs."""

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
    decay_rate,
    discover,
    horizon,
    horizon_censored,
    mean_ci,
    read_table,
    t_quantile,
    variants_table,
    write_table,
)


def _profile(base: float, n: int, scale: float = 2.0) -> pd.DataFrame:
    d = np.arange(n)
    return pd.DataFrame({"t": n - 1 - d, "distance": d, "grad_h": scale * base**d})


# ---------------------------------------------------------------------- decay measures


@pytest.mark.parametrize("base", [0.5, 0.9, 1.0, 1.3])
def test_decay_rate_of_an_exact_exponential_is_log10_of_its_base(base):
    assert decay_rate(_profile(base, 30)) == pytest.approx(math.log10(base), abs=1e-12)


def test_decay_rate_ignores_negative_distances_zeros_and_nans():
    p = _profile(0.5, 20)
    extra = pd.DataFrame(
        {"t": [30, 31, 32, 33], "distance": [-1, -2, 25, 26], "grad_h": [5.0, 7.0, 0.0, np.nan]}
    )
    assert decay_rate(pd.concat([p, extra])) == pytest.approx(math.log10(0.5), abs=1e-12)


def test_decay_rate_needs_two_distances():
    assert math.isnan(decay_rate(_profile(0.5, 1)))
    assert math.isnan(decay_rate(_profile(0.5, 0)))


def test_horizon_is_the_last_distance_above_the_ratio():
    # 0.5**9 = 1.95e-3 >= 1e-3 > 0.5**10 = 9.8e-4
    p = _profile(0.5, 21)
    assert horizon(p) == 9
    assert horizon_censored(p) is False


def test_horizon_censored_when_the_norm_never_falls_that_far():
    p = _profile(0.9, 21)  # 0.9**20 = 0.12
    assert horizon(p) == 20
    assert horizon_censored(p) is True


def test_horizon_counts_a_dip_or_a_missing_norm_as_fallen():
    p = _profile(0.9, 21)
    p.loc[p["distance"] == 5, "grad_h"] = 1e-9  # a dip below the threshold, then recovery
    assert (horizon(p), horizon_censored(p)) == (20, False)
    q = _profile(0.9, 21)
    q.loc[q["distance"] == 20, "grad_h"] = np.nan
    assert (horizon(q), horizon_censored(q)) == (19, False)


def test_decay_measures_match_the_probes_module():
    probes = pytest.importorskip("rnngrad.probes")  # imports torch: only this test
    rng = np.random.default_rng(1)
    for k in range(20):
        p = _profile(rng.uniform(0.3, 1.2), int(rng.integers(2, 40)), scale=rng.uniform(0.1, 5))
        p["grad_h"] *= np.exp(rng.normal(0, 0.5, len(p)))
        if k % 3 == 0:
            p.loc[p.sample(2, random_state=k).index, "grad_h"] = [0.0, np.nan]
        expected = probes.decay_summary(p)
        assert decay_rate(p) == pytest.approx(expected["decay_rate"], nan_ok=True)
        h = horizon(p)
        assert (math.isnan(h) and math.isnan(expected["horizon"])) or h == expected["horizon"]
        assert horizon_censored(p) == expected["horizon_censored"]


def test_horizon_without_a_start_is_nan():
    p = _profile(0.5, 10)
    assert math.isnan(horizon(p[p["distance"] > 0]))
    assert math.isnan(horizon(p.assign(grad_h=0.0)))


# -------------------------------------------------------------------------- statistics


@pytest.mark.parametrize(
    ("df", "q"),
    [(1, 12.7062), (2, 4.3027), (4, 2.7764), (10, 2.2281), (30, 2.0423), (1000, 1.9623)],
)
def test_t_quantile_matches_tables(df, q):
    assert t_quantile(0.975, df) == pytest.approx(q, abs=1e-4)
    assert t_quantile(0.025, df) == pytest.approx(-q, abs=1e-4)


def test_mean_ci_from_known_numbers():
    mean, lo, hi = mean_ci([1.0, 2.0, 3.0])
    half = 4.302653 * 1.0 / math.sqrt(3)  # t_{0.975,2} * sd / sqrt(n)
    assert mean == 2.0
    assert (lo, hi) == pytest.approx((2.0 - half, 2.0 + half), abs=1e-5)


def test_mean_ci_of_one_value_has_no_interval_and_skips_missing():
    mean, lo, hi = mean_ci([0.5, None, float("nan")])
    assert mean == 0.5 and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(x) for x in mean_ci([]))


# ------------------------------------------------------------------------------ tables


@pytest.fixture(scope="module")
def tables(results_tree):
    root, config = results_tree
    inputs = discover(root)
    return build_tables(inputs.run_dirs, inputs.probe_files, inputs.benchmark_files, config)


def _summaries(root):
    return [json.loads(p.read_text()) for p in sorted(root.glob("runs/*/T*/*/seed*/summary.json"))]


def test_build_tables_makes_every_table(tables):
    assert tuple(tables) == TABLES


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
    assert len(success) == 2 * 2 * 3
    summaries = pd.DataFrame(_summaries(root))
    for row in success.itertuples():
        runs = summaries[
            (summaries["task"] == row.task)
            & (summaries["length"] == row.length)
            & (summaries["variant"] == row.variant)
        ]
        assert row.seeds == len(runs)
        assert row.solved == (runs["status"] == "solved").sum()
        assert row.diverged == (runs["status"] == "diverged").sum()
        assert row.solved_rate == pytest.approx((runs["status"] == "solved").mean())
        metric = runs["final_metric"].dropna().astype(float).tolist()
        assert row.final_metric_mean == pytest.approx(statistics.fmean(metric))
        if len(metric) >= 2:
            half = (
                t_quantile(0.975, len(metric) - 1)
                * statistics.stdev(metric)
                / math.sqrt(len(metric))
            )
            assert row.final_metric_ci_high - row.final_metric_mean == pytest.approx(half)
        else:
            assert math.isnan(row.final_metric_ci_low) and math.isnan(row.final_metric_ci_high)
    unsolved = success[success["solved"] == 0]
    assert len(unsolved) and unsolved["steps_to_solve_median"].isna().all()
    diverged = success[success["diverged"] > 0]
    assert diverged[["task", "length", "variant"]].values.tolist() == [["adding", 20, "rnn"]]
    assert diverged["n_metric"].tolist() == [1]


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
    assert {"phase", "decay_rate", "horizon"} <= set(tables["decay"].columns)


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
    bad = tmp_path / "whatever.tsv"
    bad.write_text("s\n1\n")
    with pytest.raises(InputError, match=str(bad)):
        agg.cost_table(runs, [bad])
    empty = tmp_path / "adding" / "T10" / "rnn" / "seed0.tsv"
    empty.parent.mkdir(parents=True)
    empty.write_text("")
    with pytest.raises(InputError, match=str(empty)):
        agg.cost_table(runs, [empty])


def test_the_analysis_layer_imports_neither_torch_nor_snakemake():
    code = (
        "import sys, rnngrad.aggregate, rnngrad.figures, rnngrad.render; "
        "bad = [m for m in ('torch', 'snakemake') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
