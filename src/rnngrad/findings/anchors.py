"""The published anchors of the scorecard: report/anchors.csv, read and checked.

One row per paper, task, T and model: the bibliography key, the published outcome class
(rnngrad.findings.scorecard: solved, off_baseline, at_baseline) and number when there is
one, the paper's training budget, where in the paper it was read and whether it was
read there (checked) or is second-hand or recalled (with a note why). A published loss
must fall in its outcome class under OFF_BASELINE: a change of that line shows up here
as an error naming the rows whose class it moves.

No torch: pandas only.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from rnngrad.findings.scorecard import OFF_BASELINE, OUTCOMES
from rnngrad.specs import COPY_ALPHABET, COPY_SYMBOLS, is_solved

__all__ = ["ANCHOR_COLUMNS", "AnchorError", "baseline", "bib_keys", "read_anchors"]

ANCHOR_COLUMNS = ("key", "task", "length", "model", "variant", "outcome", "value",
                  "value_metric", "iterations", "batch_size", "budget_note", "where",
                  "checked", "note")  # fmt: skip
_METRICS = {"mse": "adding", "cross_entropy": "copy", "accuracy": "copy"}


class AnchorError(ValueError):
    """A bad anchors file; the message names the file, the line and the column."""


def baseline(task: str, length: int) -> float:
    """The memoryless loss (rnngrad.tasks.baseline_loss, without torch): 1/6 or 10 ln 8/(T+20)."""
    if task == "adding":
        return 2.0 / 12.0
    return COPY_SYMBOLS * math.log(COPY_ALPHABET) / (length + 2 * COPY_SYMBOLS)


def _implied(task: str, length: int, value: float, metric: str) -> set[str]:
    """The outcomes a published number allows (cross-entropy cannot tell solved from off)."""
    if metric == "accuracy":
        return {"solved"} if is_solved(task, value) else {"off_baseline", "at_baseline"}
    if metric == "mse" and is_solved(task, value):
        return {"solved"}
    if value / baseline(task, length) > OFF_BASELINE:
        return {"at_baseline"}
    return {"off_baseline"} if metric == "mse" else {"solved", "off_baseline"}


def bib_keys(path: str | Path) -> set[str]:
    """The entry keys of a BibTeX file."""
    return set(re.findall(r"@\w+\s*\{\s*([^,\s]+)\s*,", Path(path).read_text(encoding="utf-8")))


def _int(text: str, positive: bool = True) -> int | None:
    if not re.fullmatch(r"\d+", text) or (positive and int(text) < 1):
        return None
    return int(text)


def _row_errors(row: dict, keys: set[str] | None) -> list[tuple[str, str]]:
    """(column, problem) for each bad value of one anchor row."""
    errs = []
    if not row["key"] or (keys is not None and row["key"] not in keys):
        errs.append(("key", f"{row['key']!r} is not an entry of the bibliography"))
    if row["task"] not in ("adding", "copy"):
        errs.append(("task", f"unknown task {row['task']!r}; options are ['adding', 'copy']"))
    length = _int(row["length"])
    if length is None or length < 2:
        errs.append(("length", f"{row['length']!r} is not an integer >= 2"))
    if row["outcome"] not in OUTCOMES:
        errs.append(
            ("outcome", f"unknown outcome {row['outcome']!r}; options are {list(OUTCOMES)}")
        )
    if not row["model"]:
        errs.append(("model", "empty"))
    for col in ("iterations", "batch_size"):
        if row[col] and _int(row[col]) is None:
            errs.append((col, f"{row[col]!r} is not a positive integer"))
    if row["checked"] not in ("yes", "no"):
        errs.append(("checked", f"{row['checked']!r}; options are ['yes', 'no']"))
    elif row["checked"] == "no" and not row["note"]:
        errs.append(("note", "an unchecked row needs a note saying why"))
    value, metric = row["value"], row["value_metric"]
    if bool(value) != bool(metric):
        errs.append(("value_metric", "a value needs its metric and a metric its value"))
    elif metric and _METRICS.get(metric) != row["task"]:
        errs.append(("value_metric", f"{metric!r} is not a metric of task {row['task']!r}"))
    elif value:
        try:
            number = float(value)
        except ValueError:
            return [*errs, ("value", f"{value!r} is not a number")]
        if not errs and row["outcome"] not in _implied(row["task"], length, number, metric):
            allowed = sorted(_implied(row["task"], length, number, metric))
            errs.append(("outcome", f"{value} ({metric}) means {allowed}, not {row['outcome']!r}"))
    return errs


def read_anchors(path: str | Path, bib: str | Path | None = None) -> pd.DataFrame:
    """Read and check the published anchors (one row per paper, task, T and model).

    Checks every row: task and outcome names, an integer length, integer budgets, a
    number's metric and its outcome (a published loss must fall in its outcome class by
    OFF_BASELINE), checked yes/no with a note when no, and, given `bib`, that every key
    is an entry of that BibTeX file. Returns the rows with length, iterations and
    batch_size as integers (<NA> when empty), value as float and checked as bool.

    Raises:
        AnchorError: every problem found, each as "path: line N, column C: problem".
    """
    path = Path(path)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ANCHOR_COLUMNS if c not in df.columns]
    if missing:
        raise AnchorError(f"{path}: lacks the columns {missing}")
    keys = bib_keys(bib) if bib is not None else None
    df = df.apply(lambda col: col.str.strip())
    problems = [
        f"{path}: line {i + 2}, column {col}: {msg}"  # line 1 is the header
        for i, row in enumerate(df.to_dict("records"))
        for col, msg in _row_errors(row, keys)
    ]
    if problems:
        raise AnchorError("\n".join(problems))
    out = df.assign(
        length=df["length"].astype(int),
        value=pd.to_numeric(df["value"].replace("", None), errors="coerce").astype(float),
        iterations=pd.to_numeric(df["iterations"].replace("", None)).astype("Int64"),
        batch_size=pd.to_numeric(df["batch_size"].replace("", None)).astype("Int64"),
        checked=df["checked"] == "yes",
    )
    return out.reset_index(drop=True)
