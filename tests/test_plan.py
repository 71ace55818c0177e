"""rnngrad.plan and `rnngrad plan`: step costs, the sweep's run counts in closed form."""

import doctest

import pytest
import yaml

from rnngrad import plan as planmod
from rnngrad.cli import main
from rnngrad.config import load_config
from rnngrad.plan import STEP_SECONDS, plan, plan_summary, probe_seconds, step_seconds
from tests.test_cli import SMOKE


@pytest.mark.parametrize("cell", sorted(STEP_SECONDS))
def test_step_seconds_is_the_measurement_at_t1024_and_linear_in_t_and_batch(cell):
    assert step_seconds(cell, "adding", 1024) == pytest.approx(STEP_SECONDS[cell])
    base = step_seconds(cell, "adding", 300)
    assert step_seconds(cell, "adding", 900) == pytest.approx(3 * base)
    assert step_seconds(cell, "adding", 300, batch_size=16) == pytest.approx(base / 4)
    assert step_seconds(cell, "adding", 300, batch_size=256) == pytest.approx(4 * base)


def test_a_copy_step_costs_its_time_steps_t_plus_20():
    assert step_seconds("lstm", "copy", 1004) == pytest.approx(STEP_SECONDS["lstm"])
    assert step_seconds("gru", "copy", 10) == pytest.approx(0.293 * 30 / 1024)


def test_width_costs_h_to_the_1_5_above_64_and_nothing_less_below():
    base = step_seconds("rnn_tanh", "adding", 100)
    assert step_seconds("rnn_tanh", "adding", 100, hidden_size=256) == pytest.approx(8 * base)
    assert step_seconds("rnn_tanh", "adding", 100, hidden_size=16) == pytest.approx(base)
    # probes: 2 ms per step and seed at H = 64 with 2 Jacobian examples, ~ H^2.5
    assert probe_seconds("copy", 80, jac_examples=2, seeds=3) == pytest.approx(0.002 * 100 * 3)
    assert probe_seconds("adding", 100, 256, 4) == pytest.approx(0.002 * 100 * 2 * 32)


def test_an_unknown_cell_names_the_known_ones():
    with pytest.raises(ValueError, match=r"'rnn_tahn'.*'gru'.*'rnn_tanh'"):
        step_seconds("rnn_tahn", "adding", 10)


def test_the_training_probes_use_the_trainings_jacobian_examples():
    from rnngrad.probes import TRAIN_JAC_EXAMPLES

    assert planmod.TRAIN_JAC_EXAMPLES == TRAIN_JAC_EXAMPLES


def test_the_doctests_hold():
    assert doctest.testmod(planmod).failed == 0


LENGTHS = [100, 200, 400]


def _config(tmp_path, **train):
    """Three lengths, three seeds, one eval, one probe and one test batch per run."""
    cfg = {
        "variants": {"rnn": {"cell": "rnn_tanh"}, "wide": {"cell": "gru", "hidden_size": 128}},
        "train": {
            "tasks": {"adding": LENGTHS},
            "variants": ["rnn"],
            "seeds": [0, 1, 2],
            "steps": 1000,
            "batch_size": 64,
            "eval_every": 1000,
            "eval_size": 64,
            "test_size": 64,
            "probe_every": 1000,
            **train,
        },
        "probes": {"tasks": {"adding": [100]}, "seeds": 2, "jac_examples": 2},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return load_config(path)


def _run(t):
    """One rnn_tanh run at adding length t, full budget, by hand: 1000 steps, one eval
    and one test pass of 64 examples (a third of a step each), one probe at t with
    2 Jacobian examples and the horizon probe at 400 with one."""
    step = 0.091 * t / 1024
    return 1000 * step + 2 / 3 * step + 0.002 * t + 0.002 * 400 / 2


def _row(df, variant="rnn"):
    return df.set_index("variant").loc[variant]


def test_sequential_min_is_every_seed_at_the_first_length_max_the_lead_and_the_top_two(
    tmp_path,
):
    r = _row(plan(_config(tmp_path)))
    c = [_run(t) for t in LENGTHS]
    assert (r["runs_min"], r["runs_max"]) == (3, 3 + 2 * 2)
    assert r["cpu_seconds_min"] == pytest.approx(3 * c[0])
    assert r["cpu_seconds_max"] == pytest.approx(sum(c) + 2 * (c[1] + c[2]))
    # the lead runs before the other seeds; the top two lengths run at the same time
    assert r["chain_seconds_min"] == pytest.approx(2 * c[0])
    assert r["chain_seconds_max"] == pytest.approx(sum(c) + c[2])
    assert r["lengths"] == "100,200,400"


def test_without_sequential_every_seed_climbs(tmp_path):
    r = _row(plan(_config(tmp_path, sequential=False)))
    c = [_run(t) for t in LENGTHS]
    assert (r["runs_min"], r["runs_max"]) == (3, 9)
    assert r["cpu_seconds_min"] == pytest.approx(3 * c[0])
    assert r["cpu_seconds_max"] == pytest.approx(3 * sum(c))
    assert r["chain_seconds_max"] == pytest.approx(sum(c))


def test_without_adaptive_every_length_gets_every_seed(tmp_path):
    r = _row(plan(_config(tmp_path, adaptive=False)))
    c = [_run(t) for t in LENGTHS]
    assert (r["runs_min"], r["runs_max"]) == (9, 9)
    assert r["cpu_seconds_min"] == pytest.approx(3 * sum(c))
    assert r["cpu_seconds_max"] == pytest.approx(3 * sum(c))
    assert r["chain_seconds_max"] == pytest.approx(c[2])


def test_probed_only_variants_cost_their_probes_and_the_summary_adds_up(tmp_path):
    df = plan(_config(tmp_path))
    wide = _row(df, "wide")
    assert (wide["runs_max"], wide["cpu_seconds_max"]) == (0, 0)
    # 100 steps x 2 seeds x 2 ms, x 2^2.5 for H = 128
    assert _row(df)["probe_cpu_seconds"] == pytest.approx(0.4)
    assert wide["probe_cpu_seconds"] == pytest.approx(0.4 * 2**2.5)
    c = [_run(t) for t in LENGTHS]
    s = plan_summary(df, cores=4)
    assert (s.runs_min, s.runs_max) == (3, 7)
    probes = 0.4 * (1 + 2**2.5)
    assert s.probe_hours * 3600 == pytest.approx(probes)
    assert s.train_hours_max * 3600 == pytest.approx(sum(c) + 2 * (c[1] + c[2]))
    # the climb is a chain: on 4 cores the lead's ladder is longer than the CPU share
    assert s.wall_hours_max * 3600 == pytest.approx(sum(c) + c[2])
    many = plan_summary(df, cores=1, efficiency=0.5)
    assert many.wall_hours_min * 3600 == pytest.approx((3 * c[0] + probes) / 0.5)


def test_cli_plan_prints_the_totals_of_the_smoke_grid(capsys):
    assert main(["plan", SMOKE, "--cores", "2"]) == 0
    out = capsys.readouterr().out
    # by hand: 3 trained variants, 2 seeds; adding [8, 16] min 2 max 2 + 1 x 2,
    # copy [5] 2 and 2
    assert f"{SMOKE}: 12 to 18 training runs" in out
    assert "CPU-hours (+" in out and "on 2 cores at 90 % efficiency" in out
    assert any(line.split()[:2] == ["adding", "gru"] for line in out.splitlines())


@pytest.mark.parametrize("text", [None, "variants: {}\ntrain: {tasks: {}}\nbogus: 1\n"])
def test_cli_plan_names_a_missing_or_bad_config(tmp_path, capsys, text):
    path = tmp_path / "grid.yaml"
    if text is not None:
        path.write_text(text)
    assert main(["plan", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rnngrad plan: error:") and str(path) in err
