"""rnngrad.findings.scorecard and .anchors: verdicts, the anchors file, the scorecard.

The fake success table below has one cell per case the scorecard must tell apart: an
agreeing cell, a disagreeing one, one the length sweep never trained and one the grid
lacks, so each count of the summary is known by construction.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from rnngrad.config import load_config, train_grid
from rnngrad.findings.anchors import ANCHOR_COLUMNS, AnchorError, baseline, read_anchors
from rnngrad.findings.outcomes import Budget, budget
from rnngrad.findings.scorecard import (
    NO_COUNTERPART,
    NOT_ATTEMPTED,
    NOT_IN_GRID,
    ScorecardSummary,
    budget_frame,
    scorecard,
    scorecard_summary,
)
from rnngrad.prose_sweep import agreement_text

ROOT = Path(__file__).resolve().parents[1]
ANCHORS = ROOT / "report" / "anchors.csv"
BIB = ROOT / "report" / "references.bib"

# ------------------------------------------------------------- a fake success table


def _cell(task, length, variant, verdict, ratio, seeds=3, attempted=True):
    return {
        "task": task,
        "length": length,
        "variant": variant,
        "attempted": attempted,
        "seeds": seeds if attempted else 0,
        "verdict": verdict if attempted else NOT_ATTEMPTED,
        "test_loss_ratio_median": ratio if attempted else math.nan,
    }


SUCCESS = pd.DataFrame(
    [
        _cell("adding", 600, "gru", "solved", 0.001),  # agrees with Bai et al.
        _cell("adding", 600, "rnn", "at_baseline", 0.99),  # agrees
        _cell("adding", 600, "lstm", "off_baseline", 0.2),  # disagrees (at_baseline)
        _cell("copy", 1000, "lstm", "at_baseline", 1.0),  # agrees
        _cell("copy", 1000, "gru", "at_baseline", 0.0, attempted=False),  # sweep stopped below
    ]
)


def test_scorecard_names_missing_columns():
    with pytest.raises(ValueError, match="verdict"):
        scorecard(pd.DataFrame(columns=ANCHOR_COLUMNS), SUCCESS.drop(columns="verdict"), None)


# ------------------------------------------------------------------- read_anchors

ROW = {
    "key": "bai2018",
    "task": "adding",
    "length": "600",
    "model": "GRU",
    "variant": "gru",
    "outcome": "solved",
    "value": "5.3e-5",
    "value_metric": "mse",
    "iterations": "15630",
    "batch_size": "32",
    "budget_note": "",
    "where": "Table 1",
    "checked": "yes",
    "note": "",
}


def _write(tmp_path, rows, columns=ANCHOR_COLUMNS):
    path = tmp_path / "anchors.csv"
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False)
    return path


def _bib(tmp_path):
    path = tmp_path / "refs.bib"
    path.write_text("@article{bai2018,\n  title = {TCN},\n}\n@misc{ le2015 ,\n title={x}}\n")
    return path


def test_read_anchors_types(tmp_path):
    rows = [ROW, {**ROW, "value": "", "value_metric": "", "iterations": "", "batch_size": ""}]
    df = read_anchors(_write(tmp_path, rows), _bib(tmp_path))
    assert df["length"].tolist() == [600, 600]
    assert df["value"].iloc[0] == pytest.approx(5.3e-5) and math.isnan(df["value"].iloc[1])
    assert df["iterations"].iloc[0] == 15630 and pd.isna(df["iterations"].iloc[1])
    assert df["checked"].tolist() == [True, True]


@pytest.mark.parametrize(
    ("change", "column", "words"),
    [
        ({"task": "copying"}, "task", "unknown task 'copying'"),
        ({"outcome": "beats"}, "outcome", "unknown outcome 'beats'"),
        ({"length": "600.5"}, "length", "not an integer"),
        ({"length": "1"}, "length", "not an integer >= 2"),
        ({"key": "bai2019"}, "key", "not an entry of the bibliography"),
        ({"iterations": "many"}, "iterations", "not a positive integer"),
        ({"checked": "maybe"}, "checked", "options are"),
        ({"checked": "no"}, "note", "needs a note"),
        ({"value_metric": ""}, "value_metric", "needs its metric"),
        ({"value_metric": "accuracy"}, "value_metric", "not a metric of task 'adding'"),
        ({"value": "small"}, "value", "not a number"),
        # a published loss must fall in its class: 0.164 of 1/6 is at the baseline
        ({"value": "0.164"}, "outcome", "means ['at_baseline'], not 'solved'"),
    ],
)
def test_read_anchors_errors_name_file_line_and_column(tmp_path, change, column, words):
    path = _write(tmp_path, [ROW, {**ROW, **change}])
    with pytest.raises(AnchorError) as err:
        read_anchors(path, _bib(tmp_path))
    assert f"{path}: line 3, column {column}: " in str(err.value)
    assert words in str(err.value)
    assert "line 2" not in str(err.value)  # the good row is not blamed


def test_read_anchors_lists_every_problem(tmp_path):
    path = _write(tmp_path, [{**ROW, "task": "x"}, ROW, {**ROW, "outcome": "y"}])
    with pytest.raises(AnchorError) as err:
        read_anchors(path)
    assert "line 2, column task" in str(err.value) and "line 4, column outcome" in str(err.value)


def test_read_anchors_missing_column(tmp_path):
    path = _write(tmp_path, [ROW], [c for c in ANCHOR_COLUMNS if c != "where"])
    with pytest.raises(AnchorError, match=r"lacks the columns \['where'\]"):
        read_anchors(path)


def test_copy_loss_classes(tmp_path):
    """Cross-entropy cannot tell solved from off the baseline; below half it allows both."""
    copy = {**ROW, "task": "copy", "length": "1000", "value_metric": "cross_entropy"}
    low = [{**copy, "value": "3.5e-5", "outcome": o} for o in ("solved", "off_baseline")]
    read_anchors(_write(tmp_path, low))
    with pytest.raises(AnchorError, match="means"):
        read_anchors(_write(tmp_path, [{**copy, "value": "0.0204", "outcome": "off_baseline"}]))


def test_baseline_matches_the_task_definition():
    tasks = pytest.importorskip("rnngrad.tasks")
    for task, length in [("adding", 600), ("copy", 100), ("copy", 1000), ("copy", 2000)]:
        assert baseline(task, length) == pytest.approx(tasks.baseline_loss(task, length))


# ---------------------------------------------------------------------- scorecard


def _anchor(key, task, length, model, variant, outcome, iterations=None, batch=None):
    return {
        "key": key,
        "task": task,
        "length": length,
        "model": model,
        "variant": variant,
        "outcome": outcome,
        "value": math.nan,
        "iterations": pd.NA if iterations is None else iterations,
        "batch_size": pd.NA if batch is None else batch,
        "checked": True,
    }


ANCHOR_ROWS = pd.DataFrame(
    [
        _anchor("bai2018", "adding", 600, "GRU", "gru", "solved", 15_000, 32),
        _anchor("bai2018", "adding", 600, "RNN", "rnn", "at_baseline", 15_000, 32),
        _anchor("bai2018", "adding", 600, "LSTM", "lstm", "at_baseline", 15_000, 32),
        _anchor("bai2018", "copy", 1000, "LSTM", "lstm", "at_baseline"),
        _anchor("bai2018", "copy", 1000, "GRU", "gru", "at_baseline", 15_000, 32),
        _anchor("li2018", "adding", 5000, "IndRNN", "indrnn", "solved", 60_000, 32),
        _anchor("arjovsky2016", "copy", 100, "uRNN", "", "solved", 50_000, 20),
    ]
)
BUDGET = budget_frame(Budget(steps={"adding": {600: 3000}, "copy": {1000: 2000}}, batch_size=64))


def test_budget_frame_of_a_config_has_every_length_its_own_budget():
    cfg = load_config(ROOT / "config" / "config.yaml")
    frame = budget_frame(budget(cfg)).set_index(["task", "length"])
    shortest, longest = min(cfg["train"]["tasks"]["adding"]), max(cfg["train"]["tasks"]["adding"])
    assert frame.loc[("adding", shortest), "steps"] < frame.loc[("adding", longest), "steps"]
    assert (frame["batch_size"] == cfg["train"]["batch_size"]).all()
    assert len(frame) == sum(len(v) for v in cfg["train"]["tasks"].values())


def test_budget_frame():
    assert BUDGET.to_dict("records") == [
        {"task": "adding", "length": 600, "steps": 3000, "batch_size": 64},
        {"task": "copy", "length": 1000, "steps": 2000, "batch_size": 64},
    ]


def test_scorecard_rows():
    card = scorecard(ANCHOR_ROWS, SUCCESS, BUDGET).set_index(["task", "length", "model"])
    assert card.loc[("adding", 600, "GRU"), "ours"] == "solved"
    assert card.loc[("adding", 600, "GRU"), "agrees"]  # pd.NA would raise here
    lstm = card.loc[("adding", 600, "LSTM")]
    assert (lstm["ours"], bool(lstm["agrees"])) == ("off_baseline", False)
    assert lstm["our_seeds"] == 3 and lstm["our_loss_ratio"] == pytest.approx(0.2)
    untrained = card.loc[("copy", 1000, "GRU")]
    assert untrained["ours"] == NOT_ATTEMPTED and pd.isna(untrained["agrees"])
    assert math.isnan(untrained["budget_ratio"]) and untrained["our_seeds"] == 0
    absent = card.loc[("adding", 5000, "IndRNN")]
    assert absent["ours"] == NOT_IN_GRID and pd.isna(absent["agrees"])
    orphan = card.loc[("copy", 100, "uRNN")]
    assert orphan["ours"] == NO_COUNTERPART and pd.isna(orphan["agrees"])
    assert str(scorecard(ANCHOR_ROWS, SUCCESS, BUDGET)["agrees"].dtype) == "boolean"


def test_scorecard_budget_ratio():
    card = scorecard(ANCHOR_ROWS, SUCCESS, BUDGET).set_index(["task", "length", "model"])
    gru = card.loc[("adding", 600, "GRU")]
    assert gru["our_examples"] == 3000 * 64 and gru["their_examples"] == 15_000 * 32
    assert gru["budget_ratio"] == pytest.approx(3000 * 64 / (15_000 * 32))
    unknown = card.loc[("copy", 1000, "LSTM")]  # the paper's budget is not known
    assert unknown["our_examples"] == 2000 * 64 and math.isnan(unknown["their_examples"])
    assert math.isnan(unknown["budget_ratio"])


def test_scorecard_rejects_duplicate_cells():
    with pytest.raises(ValueError, match="more than one row"):
        scorecard(ANCHOR_ROWS, pd.concat([SUCCESS, SUCCESS.iloc[:1]]), BUDGET)


def test_scorecard_summary_counts():
    summary = scorecard_summary(scorecard(ANCHOR_ROWS, SUCCESS, BUDGET))
    assert (summary.rows, summary.compared, summary.agree, summary.disagree) == (7, 4, 3, 1)
    assert (summary.not_in_grid, summary.not_attempted, summary.no_counterpart) == (1, 1, 1)
    assert summary.papers == 3
    assert summary.disagreements == (
        ("bai2018", "adding", 600, "LSTM", "at_baseline", "off_baseline"),
    )
    text = agreement_text(summary)
    assert text.startswith("3 of 4 comparable rows agree in outcome")
    assert "1 does not (they differ on LSTM on adding T = 600 [@bai2018]" in text
    assert "published at baseline, ours off baseline" in text
    assert agreement_text(scorecard_summary(scorecard(ANCHOR_ROWS[:0], SUCCESS, BUDGET))) == (
        "none falls in this grid, so none is compared"
    )
    # rows inside the grid's lengths whose variant the sweep never reached are not "outside"
    unreached = ScorecardSummary(2, 0, 0, 0, 1, 1, 0, 1, ())
    assert agreement_text(unreached).startswith("none was compared: the rows that fall in")


# ------------------------------------------------------------ the real anchors file


def test_real_anchors_read_cleanly_and_cite_the_bibliography():
    anchors = read_anchors(ANCHORS, BIB)  # raises on any bad row or unknown key
    assert len(anchors) >= 8 and anchors["key"].nunique() >= 4
    required = {"le2015", "arjovsky2016", "bai2018", "li2018"}
    assert required <= set(anchors["key"])
    bai = anchors[anchors["key"] == "bai2018"].set_index(["task", "model"])["value"]
    assert bai[("adding", "GRU")] == pytest.approx(5.3e-5)
    assert bai[("copy", "LSTM")] == pytest.approx(0.0204)
    assert not anchors.duplicated(["key", "task", "length", "model"]).any()


def test_paper_grid_covers_every_anchor():
    anchors = read_anchors(ANCHORS, BIB)
    cfg = load_config(ROOT / "config" / "paper.yaml")
    grid = {(p.task, p.length, p.variant) for p in train_grid(cfg)}
    wanted = {
        (a.task, int(a.length), a.variant) for a in anchors.itertuples(index=False) if a.variant
    }
    assert not wanted - grid, f"config/paper.yaml lacks {sorted(wanted - grid)}"
    for task, lengths in cfg["train"]["tasks"].items():
        assert lengths == sorted(set(lengths)), f"{task} lengths not increasing"
