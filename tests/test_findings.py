"""rnngrad.findings: each answer of the report on small tables whose answer is known.

The builders at the top make tables with the columns of the contracts (decay with
bound_share, success with `attempted` and test_* columns, the critical table); the
figure tests reuse them.
"""

from __future__ import annotations

import copy
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from rnngrad import findings as F
from rnngrad.aggregate import TABLES
from rnngrad.columns import OPEN_TABLES, TABLE_COLUMNS, check_table
from rnngrad.sweep import critical_table
from rnngrad.verdicts import majority, majority_of

# ------------------------------------------------------------------------- builders

VARIANTS = {
    "rnn": {"cell": "rnn_tanh"},
    "rnn_clip": {"cell": "rnn_tanh", "clip_norm": 1.0},
    "rnn_orthcon": {"cell": "rnn_tanh", "constraint": "orthogonal"},
    "irnn": {"cell": "rnn_relu", "init": "identity", "clip_norm": 1.0},
    "lstm": {"cell": "lstm"},
    "lstm_fb1": {"cell": "lstm", "init": "forget_bias"},
    "lstm_chrono": {"cell": "lstm", "init": "chrono"},
    "gru_clip": {"cell": "gru", "clip_norm": 1.0},  # no unclipped twin
    "lru": {"cell": "lru"},
    "mingru": {"cell": "mingru"},
    "indrnn": {"cell": "indrnn"},
}


def table(name: str, rows) -> pd.DataFrame:
    """`rows` (dicts or a frame) as table `name` of rnngrad.columns, as the aggregate
    writes it: the declared columns in order and dtype; one the rows leave out is 0,
    False, None or NaN by its dtype."""
    df = pd.DataFrame(rows)
    declared = TABLE_COLUMNS[name]
    for c, dtype in declared.items():
        if c not in df.columns:
            df[c] = {"int64": 0, "bool": False, "str": None}.get(dtype, math.nan)
        if dtype in ("int64", "Int64", "float64", "bool", "boolean"):
            df[c] = df[c].astype(dtype)
    extra = [c for c in df.columns if c not in declared] if name in OPEN_TABLES else []
    df = df[[*declared, *extra]]
    check_table(name, df)
    return df


def variants_frame(variants=VARIANTS) -> pd.DataFrame:
    rows = [
        {
            "variant": n,
            "cell": v["cell"],
            "init": v.get("init", "default"),
            "constraint": v.get("constraint", "none"),
            "clip_norm": v.get("clip_norm", math.nan),
            "hidden_size": v.get("hidden_size", 16),
            "lr": math.nan,
            "trained": True,
        }
        for n, v in sorted(variants.items())
    ]
    return pd.DataFrame(rows)


def decay_rows(task, length, variant, rates, phase="init", censored=None, **extra) -> list[dict]:
    """One decay row per seed with the given rates (horizon = -3 / rate, capped)."""
    rows = []
    for seed, rate in enumerate(rates):
        cens = bool(censored[seed]) if censored is not None else rate > -3 / (length - 1)
        rows.append(
            {
                "phase": phase,
                "task": task,
                "length": length,
                "variant": variant,
                "seed": seed,
                "probe_step": pd.NA if phase == "init" else 0,
                "decay_rate": rate,
                "horizon": float(length - 1) if cens else min(-3 / rate, length - 1),
                "horizon_censored": cens,
                "max_distance": float(length - 1),
                "grad_h_start": 1.0,
                "n_points": length,
                "bound_share": 1.0 if variant.startswith("rnn") else math.nan,
                "bound_pairs": 8.0 * length if variant.startswith("rnn") else math.nan,
                **extra,
            }
        )
    return rows


def run_row(task, length, variant, seed, status, **extra) -> dict:
    v = {"init": "default", "constraint": "none", "clip_norm": math.nan, **VARIANTS[variant]}
    row = {
        "task": task,
        "length": length,
        "variant": variant,
        "seed": seed,
        "cell": v["cell"],
        "init": v["init"],
        "constraint": v["constraint"],
        "clip_norm": v["clip_norm"],
        "hidden_size": 16,
        "lr": 0.001,
        "status": status,
        "stopped_early": status == "solved",
        "test_metric": 0.001 if status == "solved" else 0.15,
        "test_loss_ratio": 0.006 if status == "solved" else 0.9,
        "steps_done": 60,
        "diverged_at": 30 if status == "diverged" else math.nan,
        "baseline_loss": 1 / 6,
        "solve_threshold": 0.01,
        "metric_name": "mse",
    }
    row.update(extra)
    return row


def success_row(task, length, variant, solved, seeds, attempted=True, diverged=0) -> dict:
    lo, hi = F.wilson_interval(solved, seeds) if attempted else (math.nan, math.nan)
    return {
        "task": task,
        "length": length,
        "variant": variant,
        "cell": VARIANTS.get(variant, {"cell": "lstm"})["cell"],
        "metric_name": "mse",
        "attempted": attempted,
        "seeds": seeds if attempted else 0,
        "solved": solved,
        "unsolved": seeds - solved - diverged if attempted else 0,
        "diverged": diverged,
        "stopped_early": solved,
        "solved_rate": solved / seeds if attempted else math.nan,
        "solved_rate_ci_low": lo,
        "solved_rate_ci_high": hi,
        "n_metric": seeds if attempted else 0,
        "test_metric_mean": 0.002 if attempted and solved else (0.1 if attempted else math.nan),
        "test_metric_ci_low": math.nan,
        "test_metric_ci_high": math.nan,
        "test_loss_ratio_mean": 0.01 if attempted and solved else (0.8 if attempted else math.nan),
        "test_loss_ratio_median": math.nan,
        "steps_to_solve_median": 40.0 if solved else math.nan,
        "steps_done_median": 60.0 if attempted else math.nan,
    }


def critical_row(task, variant, critical, censored=False, h_init=None, h_final=None, **extra):
    lengths = [10, 20, 50, 100]
    crit = math.nan if critical is None else float(critical)
    longest = 100 if censored else next((x for x in lengths if x > (crit or 0)), 100)
    row = {
        "task": task,
        "variant": variant,
        "cell": VARIANTS.get(variant, {"cell": "lstm"})["cell"],
        "lengths": ",".join(map(str, lengths)),
        "longest_attempted": longest,
        "critical_length": crit,
        "censored": censored,
        "first_failure": math.nan if censored else float(longest),
        "seed_critical_min": 0.0 if critical is None else crit / 2,
        "seed_critical_max": 0.0 if critical is None else crit,
        "horizon_length": longest,
    }
    for phase, h in (("init", h_init), ("final", h_final)):
        value, cens = (
            (h if isinstance(h, tuple) else (h, 0.0)) if h is not None else (math.nan, 0.0)
        )
        row.update(
            {
                f"horizon_{phase}_median": value,
                f"horizon_{phase}_q1": value * 0.8,
                f"horizon_{phase}_q3": value * 1.2,
                f"horizon_{phase}_censored": cens,
            }
        )
    row.update(extra)
    return row


def example_tables() -> dict[str, pd.DataFrame]:
    """A small but complete set of tables in the contracts' schemas (tests of the
    findings, the figures and the report): adding at 10, 20, 50 and copy at 10."""
    variants = variants_frame()
    decay, runs, success, critical = [], [], [], []
    base_rate = {"rnn_tanh": -0.3, "rnn_relu": -0.02, "lstm": -0.05, "gru": -0.04,
                 "lru": -0.001, "mingru": -0.01, "indrnn": -0.02}  # fmt: skip
    reach = {"rnn": 10, "rnn_clip": 10, "rnn_orthcon": 20, "irnn": 20, "lstm": 20,
             "lstm_fb1": 50, "lstm_chrono": 50, "gru_clip": 20, "lru": 50, "mingru": 50,
             "indrnn": 20}  # fmt: skip
    for v in variants.itertuples():
        rate = base_rate[v.cell] * (0.2 if v.init in ("chrono", "forget_bias") else 1)
        for task, lengths in (("adding", [10, 20, 50]), ("copy", [10])):
            for length in (*lengths, 200):
                decay += decay_rows(task, length, v.variant, [rate * k for k in (0.9, 1.0, 1.1)])
            top = reach[v.variant] if task == "adding" else (10 if v.cell in ("lru", "lstm") else 0)
            done = True
            for length in lengths:
                attempted = done
                solved = 3 if length <= top else (1 if length == 20 else 0)
                if attempted:
                    for seed in range(3):
                        status = "solved" if seed < solved else "unsolved"
                        if (v.variant, task, length, seed) == ("rnn", "adding", 20, 2):
                            status = "diverged"
                        runs.append(run_row(task, length, v.variant, seed, status))
                        for step in (0, 30, 59):
                            decay += decay_rows(task, length, v.variant, [rate * (1 - step / 120)],
                                                phase="train", probe_step=step, seed=seed)  # fmt: skip
                success.append(
                    success_row(task, length, v.variant, solved if attempted else 0, 3, attempted,
                                int(attempted and (v.variant, task, length) == ("rnn", "adding", 20)))
                )  # fmt: skip
                done = attempted and solved >= 2
            crit = top if top else None
            h = -3 / rate
            critical.append(
                critical_row(task, v.variant, crit, censored=top >= lengths[-1],
                             h_init=(min(h, 199.0), float(h >= 199)), h_final=(min(1.5 * h, 199.0), 0.0))
            )  # fmt: skip
    runs = pd.DataFrame(runs)
    decay = pd.DataFrame(decay)
    profiles = []
    for v in variants.itertuples():
        for length in (50, 200):
            for seed in range(3):
                d = np.arange(length)
                rate = base_rate[v.cell] * (1 + 0.1 * (seed - 1))
                grad = 10.0 ** (rate * d)
                bounded = v.cell != "lstm"
                profiles.append(
                    pd.DataFrame(
                        {
                            "task": "adding",
                            "length": length,
                            "variant": v.variant,
                            "seed": seed,
                            "t": length - 1 - d,
                            "distance": d,
                            "grad_h": grad,
                            "grad_h_q1": grad * 0.8,
                            "grad_h_q3": grad * 1.25,
                            "grad_c": grad if v.cell == "lstm" else math.nan,
                            "grad_c_q1": math.nan,
                            "grad_c_q3": math.nan,
                            "jac_norm": 10.0**rate,
                            "bound": (1.2 * 10.0**rate) ** d if bounded else math.nan,
                            "bound_holds": 1.0 if bounded else math.nan,
                            "tightness": 1.2**d * (1 + 0.1 * seed) if bounded else math.nan,
                            "tightness_q90": 1.5**d if bounded else math.nan,
                        }
                    )  # fmt: skip
                )
    init_profiles = pd.concat(profiles, ignore_index=True)
    spectra = pd.DataFrame(
        [
            {"task": r.task, "length": r.length, "variant": r.variant, "seed": r.seed,
             "probe_step": step, "gate": gate, "spectral_norm": (1.0 if "orthcon" in r.variant else 1.0 + step / 60),
             "spectral_radius": 0.9}
            for r in runs.itertuples() for step in (0, 59) for gate in ("a", "b")
        ]
    )  # fmt: skip
    curves = pd.DataFrame(
        [
            {"task": r.task, "length": r.length, "variant": r.variant, "seed": r.seed, "step": s,
             "loss": 0.1 / (1 + s), "metric": 0.1 / (1 + s), "eval_loss": 0.1 / (1 + s),
             "grad_norm": 3.0 / (1 + s % 4), "clipped": 3.0 / (1 + s % 4) > 1.0, "elapsed": 0.01 * s}
            for r in runs.itertuples() for s in range(0, 60, 10)
        ]
    )  # fmt: skip
    cost = (
        runs.groupby(["task", "cell", "variant", "length"])
        .size()
        .rename("runs")
        .reset_index()
        .assign(device="cpu", threads=1, steps_per_second=100.0, wall_seconds=0.6, steps_done=60.0,
                bench_seconds=2.0, cpu_seconds=1.5, max_rss_mb=300.0)
    )  # fmt: skip
    cost["seconds_per_step"] = [0.02 if c == "lstm" else 0.01 for c in cost["cell"]]
    train_profiles = init_profiles[init_profiles["length"] == 50].assign(probe_step=0)
    tables = {
        "runs": runs,
        "success": success,
        "curves": curves,
        "init_profiles": init_profiles,
        "train_profiles": train_profiles,
        "decay": decay,
        "spectra": spectra,
        "cost": cost,
        "variants": variants,
        "critical": critical,
    }
    return {name: table(name, rows) for name, rows in tables.items()}


EXAMPLE_CONFIG = {
    "device": "cpu",
    "hidden_size": 16,
    "variants": VARIANTS,
    "train": {
        "tasks": {"adding": [10, 20, 50], "copy": [10]},
        "seeds": [0, 1, 2],
        "steps": {"adding": 2500, "copy": 6000},
        "batch_size": 8,
        "lr": 0.001,
        "eval_every": 10,
        "eval_size": 32,
        "test_size": 2000,
        "final_k": 3,
        "probe_every": 30,
        "probe_batch": 8,
        "checkpoint_every": 30,
    },
    "probes": {"tasks": {"adding": [50, 200]}, "seeds": 3, "batch_size": 8},
}


@pytest.fixture(scope="module")
def tables():
    return example_tables()


# -------------------------------------------------------------------------- decay


def test_init_decay_medians_per_task_and_length_never_mix_tasks():
    decay = pd.DataFrame(
        decay_rows("adding", 50, "rnn", [-0.2, -0.3, -0.7])
        + decay_rows("copy", 50, "rnn", [-0.001])  # another task, same seed 0
        + decay_rows("adding", 50, "lstm", [-0.05])  # a single seed
        + decay_rows("adding", 50, "rnn", [-9.0], phase="train")
    )
    out = F.init_decay(decay, variants_frame()).set_index(["task", "variant"])
    assert out.at[("adding", "rnn"), "rate"] == pytest.approx(-0.3)
    assert out.at[("adding", "rnn"), "seeds"] == 3
    assert out.at[("adding", "rnn"), "tenfold"] == pytest.approx(1 / 0.3)
    assert out.at[("copy", "rnn"), "rate"] == pytest.approx(-0.001)
    assert out.at[("copy", "rnn"), "seeds"] == 1
    assert out.at[("adding", "lstm"), "seeds"] == 1
    assert out.at[("adding", "lstm"), "rate_q1"] == out.at[("adding", "lstm"), "rate_q3"]
    assert out.at[("adding", "rnn"), "cell"] == "rnn_tanh"
    assert out.at[("adding", "rnn"), "bound_share"] == 1.0
    assert math.isnan(out.at[("adding", "lstm"), "bound_share"])


def test_init_decay_pools_the_seeds_bound_shares_by_their_pairs():
    seeds = [
        {"bound_share": 1.0, "bound_pairs": 100.0},
        {"bound_share": 0.5, "bound_pairs": 300.0},
        {"bound_share": math.nan, "bound_pairs": math.nan},  # a seed without a bound
        {"bound_share": 0.0, "bound_pairs": 0.0},  # no pairs: does not count
    ]
    rows = decay_rows("adding", 10, "rnn", [-0.3] * len(seeds))
    decay = pd.DataFrame([{**r, **b} for r, b in zip(rows, seeds, strict=True)])
    out = F.init_decay(decay, variants_frame()).iloc[0]
    assert out["bound_share"] == pytest.approx((100 + 150) / 400)


def test_init_decay_horizon_is_a_lower_bound_when_most_seeds_are_censored():
    decay = pd.DataFrame(
        decay_rows("adding", 100, "a", [-0.1, -0.01, -0.01], censored=[False, True, True])
        + decay_rows("adding", 100, "b", [-0.1, -0.2, -0.01], censored=[False, False, True])
        + decay_rows("adding", 10, "a", [-0.1])
    )
    out = F.init_decay(decay).set_index(["length", "variant"])
    assert out.at[(100, "a"), "horizon_censored"]
    assert out.at[(100, "a"), "horizon"] == 99
    assert out.at[(100, "a"), "censored_share"] == pytest.approx(2 / 3)
    assert not out.at[(100, "b"), "horizon_censored"]
    assert out.at[(100, "b"), "horizon"] == pytest.approx(30)  # horizons 30, 15, >= 99
    assert out["longest"].tolist() == [False, True, True]


def test_censored_median_sorts_lower_bounds_above_measured_values():
    from rnngrad.findings._common import censored_median

    assert censored_median([50, 20, 30], [False, True, True]) == (20, True)
    assert censored_median([5, 8, 10, 12], [False, False, True, True]) == (8, False)
    assert censored_median([7.0], [False]) == (7.0, False)
    h, c = censored_median([], [])
    assert math.isnan(h) and not c


def test_init_decay_of_an_empty_table():
    assert F.init_decay(table("decay", [])).empty


def test_bound_tightness_pools_pairs_and_describes_the_longest_plain_rnn(tables):
    decay = pd.DataFrame(
        decay_rows("adding", 10, "rnn", [-0.3], bound_pairs=100.0)
        + decay_rows("adding", 10, "rnn_clip", [-0.3], bound_share=0.5, bound_pairs=300.0)
        + decay_rows("adding", 10, "lstm", [-0.1])
    )
    out = F.bound_tightness(tables["init_profiles"], decay, variants_frame())
    assert out.share == pytest.approx((100 + 150) / 400)
    assert out.pairs == 400
    assert out.lowest_share == 0.5
    assert (out.task, out.length, out.variant) == ("adding", 200, "rnn")
    row = out.by_distance.set_index("distance").loc[10]
    assert row["tightness"] == pytest.approx(1.2**10 * 1.1)  # median of the seeds' 1.0, 1.1, 1.2
    assert row["tightness_q90"] == pytest.approx(1.5**10)
    assert out.milestones["distance"].tolist() == [1, 10, 100, 199]


def test_decay_change_is_per_run():
    rows = []
    for seed, (a, b) in enumerate([(-0.3, -0.1), (-0.5, -0.45)]):
        for step, rate in ((0, a), (100, b)):
            rows += decay_rows(
                "adding", 50, "rnn", [rate], phase="train", probe_step=step, seed=seed
            )
    rows += decay_rows("copy", 50, "rnn", [-2.0], phase="train", probe_step=200)  # probed once
    out = F.decay_change(pd.DataFrame(rows)).set_index("seed")
    assert out.loc[0, "change"] == pytest.approx(0.2)
    assert out.loc[1, "change"] == pytest.approx(0.05)
    assert len(out) == 2  # the copy run has one probe: no change to report


def test_width_effect_compares_only_widths_of_one_family():
    variants = variants_frame(
        {"rnn": {"cell": "rnn_tanh"}, "rnn_h64": {"cell": "rnn_tanh", "hidden_size": 64},
         "lstm": {"cell": "lstm"}}
    )  # fmt: skip
    decay = pd.DataFrame(
        decay_rows("adding", 100, "rnn", [-0.3])
        + decay_rows("adding", 100, "rnn_h64", [-0.2])
        + decay_rows("adding", 1000, "rnn", [-0.3])  # rnn_h64 not probed at 1000
        + decay_rows("adding", 100, "lstm", [-0.05])
    )
    out = F.width_effect(decay, variants)
    assert out["variant"].tolist() == ["rnn", "rnn_h64"]
    assert out["length"].unique().tolist() == [100]
    assert out["rate_change"].tolist() == pytest.approx([0.0, 0.1])
    assert F.width_effect(decay, variants_frame()).empty


def test_reference_decay_falls_with_the_gain():
    out = F.reference_decay(gains=(0.5, 1.0), length=40)
    assert list(out.columns) == ["gain", "distance 10", "distance 30", "distance 39"]
    small, one = out.iloc[0], out.iloc[1]
    assert 0 < small["distance 39"] < 1e-9 and small["distance 39"] < one["distance 39"]
    assert small["distance 10"] > small["distance 30"]


# ------------------------------------------------------------------------ outcomes


def test_training_overview_counts(tables):
    out = F.training_overview(tables["runs"], tables["success"])
    runs = tables["runs"]
    assert out.runs == len(runs)
    assert out.solved + out.unsolved + out.diverged == out.runs
    assert out.diverged == 1
    assert out.diverged_runs.iloc[0][["task", "length", "variant", "seed"]].tolist() == [
        "adding", 20, "rnn", 2
    ]  # fmt: skip
    assert out.cells_not_attempted == int((~tables["success"]["attempted"]).sum()) > 0
    assert out.cells_attempted + out.cells_not_attempted == out.cells
    assert out.tasks == ["adding", "copy"]
    assert (out.seeds_min, out.seeds_max) == (3, 3)


def test_training_overview_counts_runs_stopped_early_that_failed_the_test():
    runs = pd.DataFrame(
        [run_row("adding", 10, "rnn", 0, "unsolved", stopped_early=True),
         run_row("adding", 10, "rnn", 1, "unsolved"), run_row("adding", 10, "rnn", 2, "solved")]
    )  # fmt: skip
    out = F.training_overview(runs, pd.DataFrame([success_row("adding", 10, "rnn", 1, 3)]))
    assert out.stopped_early_unsolved == 1
    assert (out.seeds_min, out.seeds_max) == (3, 3)


def test_training_overview_of_an_empty_grid():
    out = F.training_overview(table("runs", []), table("success", []))
    assert (out.runs, out.solved, out.cells, out.tasks) == (0, 0, 0, [])
    assert out.diverged_runs.empty


def test_success_keeps_not_attempted_cells_apart_from_failures():
    s = pd.DataFrame(
        [
            success_row("adding", 10, "rnn", 2, 3),
            success_row("adding", 20, "rnn", 1, 3, diverged=1),
            success_row("adding", 50, "rnn", 0, 3, attempted=False),
            success_row("adding", 10, "lstm", 1, 2),  # half is no majority
            success_row("adding", 10, "gru", 1, 1),  # a single seed
        ]
    )
    out = F.success_by_length(s).set_index(["variant", "length"])["outcome"]
    assert out[("rnn", 10)] == "solved"
    assert out[("rnn", 20)] == "failed"
    assert out[("rnn", 50)] == "not attempted"
    assert out[("lstm", 10)] == "failed"
    assert out[("gru", 10)] == "solved"
    rates = F.success_by_length(s).set_index(["variant", "length"])
    assert math.isnan(rates.at[("rnn", 50), "solved_rate"])
    assert math.isnan(rates.at[("rnn", 50), "solved_rate_ci_low"])


# (solved seeds, seeds) that are a strict majority, up to five seeds: ties are not
MAJORITIES = {(1, 1), (2, 2), (2, 3), (3, 3), (3, 4), (4, 4), (3, 5), (4, 5), (5, 5)}


def test_the_success_table_the_critical_length_and_the_sweep_share_one_majority_rule():
    counts = [(k, n) for n in range(1, 6) for k in range(n + 1)]
    s = pd.DataFrame([success_row("adding", 10, f"v{k}of{n}", k, n) for k, n in counts])
    outcome = F.success_by_length(s).set_index("variant")["outcome"]
    critical = critical_table(s.assign(off_baseline=0), pd.DataFrame()).set_index("variant")
    for k, n in counts:
        want = (k, n) in MAJORITIES
        assert (outcome[f"v{k}of{n}"] == "solved") is want, (k, n)
        assert (not math.isnan(critical.at[f"v{k}of{n}", "critical_length"])) is want, (k, n)
        assert majority(["solved"] * k + ["at_baseline"] * (n - k), "solved") is want, (k, n)
        assert bool(majority_of(k, n)) is want, (k, n)


def test_critical_length_ranks_censored_first_and_failures_last():
    c = pd.DataFrame(
        [critical_row("adding", "rnn", None), critical_row("adding", "lstm", 20),
         critical_row("adding", "lru", 100, censored=True)]
    )  # fmt: skip
    out = F.critical_length(c)
    assert out["variant"].tolist() == ["lru", "lstm", "rnn"]
    assert out["reach"].tolist() == [math.inf, 20, 0]


def _predict(pairs, phase="init"):
    rows = [critical_row("adding", f"v{i}", c, censored=c == 100, h_init=h, h_final=h)
            for i, (c, h) in enumerate(pairs)]  # fmt: skip
    return F.horizon_predicts_critical(pd.DataFrame(rows), phase=phase).iloc[0]


def test_horizon_predicts_critical_when_they_rise_together():
    out = _predict([(None, 3.0), (10, 12.0), (20, 25.0), (50, 60.0), (100, (99.0, 1.0))])
    assert out["rho"] == pytest.approx(1.0)
    assert out["rho_low"] > 0 and out["verdict"] == "predicts"
    assert out["variants"] == 5
    assert out["agreement"] == 1.0  # horizon >= T exactly where T <= critical length


def test_horizon_that_runs_against_the_critical_length_is_inverse():
    out = _predict([(None, 80.0), (10, 60.0), (20, 25.0), (50, 12.0), (100, 3.0)], "final")
    assert out["rho"] == pytest.approx(-1.0)
    assert out["verdict"] == "inverse"
    assert out["agreement"] < 0.5


def test_a_horizon_unrelated_to_the_critical_length_is_no_evidence():
    out = _predict([(None, 20.0), (10, 80.0), (20, 5.0), (50, 40.0), (100, 10.0), (20, 60.0)])
    assert abs(out["rho"]) < 0.5 and out["rho_low"] < 0 < out["rho_high"]
    assert out["verdict"] == "no evidence"


def test_a_weak_positive_correlation_with_a_wide_interval_is_no_evidence():
    out = _predict([(None, 20.0), (10, 5.0), (20, 60.0), (50, 10.0), (100, 80.0)])
    assert 0 < out["rho"] < 0.8 and out["rho_low"] < 0
    assert out["verdict"] == "no evidence"


def test_two_variants_cannot_decide():
    out = _predict([(10, 12.0), (20, 25.0)])
    assert math.isnan(out["rho"]) and out["verdict"] == "undetermined"
    with pytest.raises(ValueError, match="phase"):
        F.horizon_predicts_critical(pd.DataFrame(), phase="end")


def test_horizon_prediction_is_per_task():
    rows = [critical_row("adding", f"v{i}", c, h_init=h) for i, (c, h) in
            enumerate([(None, 3.0), (10, 12.0), (20, 25.0), (50, 60.0)])]  # fmt: skip
    rows += [critical_row("copy", f"v{i}", c, h_init=h) for i, (c, h) in
             enumerate([(None, 60.0), (10, 25.0), (20, 12.0), (50, 3.0)])]  # fmt: skip
    out = F.horizon_predicts_critical(pd.DataFrame(rows)).set_index("task")
    assert out.at["adding", "rho"] == pytest.approx(1.0)
    assert out.at["copy", "rho"] == pytest.approx(-1.0)


def test_budget_is_the_configured_one_not_the_longest_run():
    from rnngrad.config import check_config

    runs = pd.DataFrame([run_row("adding", 10, "rnn", 0, "solved", steps_done=60)])
    raw = copy.deepcopy(EXAMPLE_CONFIG)
    raw["train"].update(tasks={"adding": [10, 20], "copy": [5]}, steps=2500)
    b = F.budget(check_config(raw))
    assert b.steps == {"adding": {10: 2500, 20: 2500}, "copy": {5: 2500}}
    assert not b.per_task
    assert int(runs["steps_done"].max()) not in b.steps["adding"].values()
    raw["train"].update(steps={"adding": [100, 300], "copy": 6000}, adaptive=False)
    raw["train"]["climb"] = {"copy": "off_baseline"}
    b = F.budget(check_config(raw))
    assert b.steps == {"adding": {10: 100, 20: 300}, "copy": {5: 6000}} and b.per_task
    assert (b.adaptive, b.sequential, b.climb) == (
        False,
        True,
        {"adding": "solved", "copy": "off_baseline"},
    )
    assert F.budget(None).steps == {}


# ------------------------------------------------------------------------ remedies


def test_clipping_against_its_twin_on_the_same_seeds():
    runs = pd.DataFrame(
        [run_row("adding", 10, "rnn", 0, "unsolved"), run_row("adding", 10, "rnn", 1, "diverged"),
         run_row("adding", 10, "rnn_clip", 0, "solved"), run_row("adding", 10, "rnn_clip", 1, "solved"),
         run_row("adding", 10, "rnn_clip", 2, "solved"),  # no twin run at seed 2
         run_row("adding", 10, "gru_clip", 0, "solved")]
    )  # fmt: skip
    curves = pd.DataFrame(
        {
            "variant": ["rnn_clip"] * 4 + ["rnn"] * 2,
            "clipped": [True, False, False, False, False, False],
        }
    )
    out = F.clipping_effect(runs, curves).set_index("variant")
    assert out.at["rnn_clip", "twin"] == "rnn"
    assert out.at["rnn_clip", "pairs"] == 2
    assert (out.at["rnn_clip", "solved"], out.at["rnn_clip", "solved_twin"]) == (2, 0)
    assert (out.at["rnn_clip", "diverged"], out.at["rnn_clip", "diverged_twin"]) == (0, 1)
    assert out.at["rnn_clip", "clipped_share"] == 0.25
    assert pd.isna(out.at["gru_clip", "twin"])
    assert math.isnan(out.at["gru_clip", "solved_twin"])
    assert out.at["gru_clip", "pairs"] == 1 and math.isnan(out.at["gru_clip", "clipped_share"])


def test_a_twin_differs_only_in_clipping():
    variants = variants_frame(
        {"rnn": {"cell": "rnn_tanh"}, "rnn_orth": {"cell": "rnn_tanh", "init": "orthogonal"},
         "rnn_orth_clip": {"cell": "rnn_tanh", "init": "orthogonal", "clip_norm": 1.0},
         "rnn_h64_clip": {"cell": "rnn_tanh", "hidden_size": 64, "clip_norm": 1.0}}
    )  # fmt: skip
    assert F.twin(variants, "rnn_orth_clip") == "rnn_orth"
    assert F.twin(variants, "rnn_h64_clip") is None  # rnn has another width
    assert F.twin(variants[variants["variant"] != "rnn_orth"], "rnn_orth_clip") is None
    assert F.twin(variants, "missing") is None


def test_no_clipped_variant_gives_an_empty_frame():
    runs = pd.DataFrame([run_row("adding", 10, "rnn", 0, "unsolved")])
    assert F.clipping_effect(runs, pd.DataFrame()).empty
    assert F.clipping_effect(pd.DataFrame(), pd.DataFrame()).empty


def _old_growth(spectra: pd.DataFrame) -> pd.Series:
    # the report's logic before the fix: grouped by (variant, seed, probe_step) only
    per = spectra.groupby(["variant", "seed", "probe_step"])["spectral_norm"].max().reset_index()
    return per.groupby("variant").apply(
        lambda g: (
            g.sort_values("probe_step")["spectral_norm"].iloc[-1]
            / g.sort_values("probe_step")["spectral_norm"].iloc[0]
        ),
        include_groups=False,
    )


def test_spectral_growth_is_per_run_never_across_runs():
    def rows(task, length, seed, steps_norms):
        return [{"task": task, "length": length, "variant": "rnn", "seed": seed, "probe_step": s,
                 "gate": g, "spectral_norm": n * (1 if g == "h" else 0.5), "spectral_radius": 0.9}
                for s, n in steps_norms for g in ("h", "x")]  # fmt: skip

    spectra = pd.DataFrame(
        rows("adding", 10, 0, [(0, 1.0), (100, 2.0)])  # grows 2x
        + rows("copy", 10, 0, [(0, 5.0), (50, 5.0)])  # another task, same seed: 1x
        + rows("adding", 20, 1, [(0, 4.0), (200, 2.0)])  # another seed, longer run: 0.5x
        + rows("adding", 20, 2, [(0, 3.0)])  # probed once
    )
    out = F.spectral_growth(spectra)
    assert sorted(out["growth"]) == pytest.approx([0.5, 1.0, 2.0])
    assert len(out) == 3
    one = out.set_index(["task", "length", "seed"]).loc[("adding", 10, 0)]
    assert (one["first_step"], one["last_step"], one["norm_first"], one["norm_last"]) == (
        0,
        100,
        1.0,
        2.0,
    )
    # the old logic divides one run's last probe by another's first and finds no 2x growth
    assert _old_growth(spectra)["rnn"] != pytest.approx(2.0)
    assert F.spectral_growth(pd.DataFrame()).empty


def test_constraint_check(tables):
    out = F.constraint_check(tables["spectra"], tables["variants"])
    assert out["variant"].tolist() == ["rnn_orthcon"]
    assert out["deviation"].iloc[0] == 0.0
    spectra = tables["spectra"].copy()
    spectra.loc[spectra["variant"] == "rnn_orthcon", "spectral_norm"] = 1.02
    assert F.constraint_check(spectra, tables["variants"])["deviation"].iloc[0] == pytest.approx(
        0.02
    )


def test_mitigation_gains_pair_each_remedy_with_its_baseline(tables):
    out = F.mitigation_gains(
        tables["runs"], tables["decay"], tables["critical"], tables["variants"]
    )
    adding = out[out["task"] == "adding"].set_index("remedy")
    assert adding.at["chrono", "baseline"] == "lstm"
    assert adding.at["chrono over forget bias 1", "baseline"] == "lstm_fb1"
    assert adding.at["forget bias 1", "variant"] == "lstm_fb1"
    assert adding.at["IRNN", "variant"] == "irnn"
    assert adding.at["IRNN", "baseline"] == "rnn_clip"  # clipped like irnn
    assert adding.at["orthogonal constraint", "variant"] == "rnn_orthcon"
    for modern in ("LRU", "minGRU", "IndRNN"):
        assert adding.at[modern, "baseline"] == "lstm"
    assert "orthogonal init (GRU)" not in adding.index  # the grid has no such variant
    # chrono solves adding to T = 50, the plain LSTM to T = 20 (3 seeds x lengths attempted)
    chrono = adding.loc["chrono"]
    assert chrono["pairs"] == 9
    assert (chrono["solved"], chrono["solved_base"]) == (9, 6)
    assert chrono["gain"] == pytest.approx(3 / 9)
    assert (chrono["critical"], chrono["critical_base"]) == (math.inf, 20)
    assert chrono["rate"] == pytest.approx(-0.01) and chrono["rate_base"] == pytest.approx(-0.05)


def test_mitigation_gains_match_seeds():
    runs = pd.DataFrame(
        [
            run_row("adding", 10, "lstm", 0, "unsolved"),
            run_row("adding", 10, "lstm", 1, "solved"),
            run_row("adding", 10, "lstm_chrono", 0, "solved"),
            run_row("copy", 10, "lstm_chrono", 1, "solved"),
        ]  # fmt: skip
    )
    out = F.mitigation_gains(runs, table("decay", []), None, variants_frame())
    chrono = out[out["remedy"] == "chrono"].set_index("task")
    assert chrono.at["adding", "pairs"] == 1
    assert (chrono.at["adding", "solved"], chrono.at["adding", "solved_base"]) == (1, 0)
    assert chrono.at["copy", "pairs"] == 0 and math.isnan(chrono.at["copy", "gain"])
    assert F.mitigation_gains(table("runs", []), table("decay", [])).empty


def test_cost_by_cell_at_the_longest_length(tables):
    out = F.cost_by_cell(tables["cost"])
    adding = out.by_cell[out.by_cell["task"] == "adding"].set_index("cell")
    assert adding["length"].unique().tolist() == [50]
    assert adding.at["lstm", "ms_per_step"] == pytest.approx(20)
    assert adding.at["lstm", "ratio"] == pytest.approx(2)
    assert adding["ratio"].min() == 1
    assert (out.devices, out.threads) == (["cpu"], [1])
    assert F.cost_by_cell(pd.DataFrame()).by_cell.empty


# ------------------------------------------------------------------------- methods


def test_grid_table_gives_per_task_budgets():
    from rnngrad.config import check_config

    g = F.grid_table(check_config(EXAMPLE_CONFIG)).set_index(["stage", "task"])
    assert g.at[("train", "adding"), "max steps"] == "2500"
    assert g.at[("train", "copy"), "max steps"] == "6000"
    raw = copy.deepcopy(EXAMPLE_CONFIG)
    raw["train"]["steps"] = {"adding": [100, 200, 300], "copy": 6000}
    g = F.grid_table(check_config(raw)).set_index(["stage", "task"])
    assert g.at[("train", "adding"), "max steps"] == "100, 200, 300"
    assert g.at[("train", "adding"), "lengths T"] == "10, 20, 50"
    assert g.at[("probes", "adding"), "seeds"] == 3


def test_tasks_table_reads_thresholds_and_baselines(tables):
    t = F.tasks_table({**EXAMPLE_CONFIG, "train": {**EXAMPLE_CONFIG["train"], "solve": {"adding": 0.02}}},
                      tables["runs"]).set_index("task")  # fmt: skip
    assert t.at["adding", "solved when (test batch)"] == "mse < 0.02"
    assert t.at["copy", "solved when (test batch)"] == "accuracy ≥ 0.99"
    assert "T=10: 0.1667" in t.at["adding", "baseline loss"]


def test_resolve_config_merges_files_in_order(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("train: {steps: 10, seeds: [0]}\nhidden_size: 8\n")
    b.write_text("train: {steps: 20}\n")
    cfg = F.resolve_config([a, b])
    assert cfg["train"] == {"steps": 20, "seeds": [0]} and cfg["hidden_size"] == 8
    assert F.resolve_config({"x": 1}) == {"x": 1}
    assert F.resolve_config(tmp_path / "missing.yaml") == {}


def test_load_tables_gives_empty_frames_for_absent_ones(tmp_path):
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "runs.parquet")
    out = F.load_tables(tmp_path)
    assert set(out) == set(TABLES) and "critical" in out
    assert len(out["runs"]) == 1 and out["critical"].empty


def test_findings_and_prose_import_no_torch():
    code = "import sys, rnngrad.findings, rnngrad.prose; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------ spreads and extremes


def test_spread_is_the_median_and_range_of_the_finite_values():
    assert F.spread([3.0, None, math.nan, 1.0, 2.0, 10.0]) == F.Spread(2.5, 1.0, 10.0, 4)
    empty = F.spread([])
    assert empty.n == 0 and math.isnan(empty.median) and math.isnan(empty.high)


def _init_rows(**rates):
    return pd.DataFrame(
        [{"task": task, "length": 100, "variant": v, "rate": r, "horizon_censored": c,
          "longest": True} for (v, (task, r, c)) in rates.items()]
        + [{"task": "adding", "length": 50, "variant": "shorter", "rate": 0.0,
            "horizon_censored": True, "longest": False}]
    )  # fmt: skip


def test_decay_extremes_reads_one_task_at_its_longest_length():
    init = _init_rows(
        rnn=("adding", -0.3, False),
        lstm=("adding", -0.01, False),
        lru=("adding", -0.001, True),
        other=("copy", 0.5, True),  # another task: never mixed in
    )
    ext = F.decay_extremes(init, "adding")
    assert (ext.slowest, ext.slowest_rate, ext.length) == ("lru", -0.001, 100.0)
    assert ext.never_fell == ["lru"]  # not `shorter` (a shorter length) nor `other`
    none = F.decay_extremes(init, "missing")
    assert none.slowest is None and none.never_fell == [] and math.isnan(none.slowest_rate)


def test_largest_gain_is_the_remedy_that_added_most_solved_runs():
    gains = pd.DataFrame(
        {"remedy": ["chrono", "LRU", "clip"], "variant": ["c", "l", "k"],
         "baseline": ["b", "b", "b"], "task": "adding", "pairs": [3, 3, 0],
         "solved": [2, 3, 0], "solved_base": [1, 0, 0], "gain": [1 / 3, 1.0, math.nan]}
    )  # fmt: skip
    assert F.largest_gain(gains)["remedy"] == "LRU"
    assert F.largest_gain(gains.iloc[[2]]) is None  # no pairs: no gain to report


def test_kernel_use_counts_the_minGRU_cpu_runs_on_the_fallback():
    runs = pd.DataFrame(
        {
            "cell": ["mingru", "mingru", "mingru", "mingru", "lstm"],
            "device": ["cpu", "cpu", "cpu", "cuda", "cpu"],
            # a run on CUDA and an LSTM say nothing about the CPU kernel
            "scan_reason": ["", "RNNGRAD_NATIVE=0", "ImportError: no numba", "", "x"],
        }
    )
    use = F.kernel_use(runs)
    assert (use.runs, use.fallbacks) == (3, 2)
    assert use.reasons == ["ImportError: no numba", "RNNGRAD_NATIVE=0"]
    assert F.kernel_use(runs.iloc[[0, 3, 4]]) == F.KernelUse(1, 0, [])
