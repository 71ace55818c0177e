"""What names a run, as plain data and without torch: tasks and the names of cells and inits.

The typed config (rnngrad.settings: VariantSpec, RunSpec) and the Snakefile read only
these, so parsing the workflow does not import torch. `rnngrad.tasks` and `rnngrad.models`
re-export them next to the code that gives them meaning (batch generators, the model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "TASKS",
    "Task",
    "get_task",
    "is_solved",
    "CELLS",
    "FUSED_CELLS",
    "LRU_DEFAULTS",
    "INITS",
    "CONSTRAINTS",
]

COPY_SYMBOLS = 10  # recall symbols per copy example
COPY_ALPHABET = 8  # symbols are 1..8
COPY_BLANK = 0
COPY_DELIMITER = 9
COPY_VOCAB = 10  # 0 blank, 1..8 symbols, 9 delimiter


@dataclass(frozen=True)
class Task:
    """What a model needs to know about a task.

    Attributes:
        name: the task's key in TASKS.
        symbolic: True when inputs are integer symbols (the model embeds them).
        input_size: float channels per step, or the vocabulary size when symbolic.
        output_size: outputs per read position (1 for regression, classes otherwise).
        per_step_output: True when the model emits an output at every position.
        higher_is_better: direction of the task's metric.
        solve_threshold: default threshold on the metric for "solved".
        metric_name: what the metric is, for tables and figures.
    """

    name: str
    symbolic: bool
    input_size: int
    output_size: int
    per_step_output: bool
    higher_is_better: bool
    solve_threshold: float
    metric_name: str

    def seq_len(self, length: int) -> int:
        """Number of time steps of an input of dependency length `length`."""
        return length + 2 * COPY_SYMBOLS if self.name == "copy" else length

    def first_read(self, length: int) -> int:
        """Index of the first position where the long-range loss is read."""
        return length + COPY_SYMBOLS if self.name == "copy" else length - 1

    def max_lag(self, length: int) -> int:
        """The longest distance, in steps, from an input that matters to where it is read.

        adding: the first marker can sit at step 0 and is read at step T - 1 (T - 1).
        copy: symbol 0 is read at position T + 10, symbol 9 (at position 9) at T + 19, so
        the lags run from T + 10 to T + 19 and the largest is T + 19.
        """
        return self.seq_len(length) - 1


TASKS: dict[str, Task] = {
    "adding": Task("adding", False, 2, 1, False, False, 0.01, "mse"),
    "copy": Task("copy", True, COPY_VOCAB, COPY_VOCAB, True, True, 0.99, "accuracy"),
}


def get_task(task: str) -> Task:
    """Look a task up by name; the error lists the valid names."""
    try:
        return TASKS[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; options are {sorted(TASKS)}") from None


def is_solved(task: str, value: float, threshold: float | None = None) -> bool:
    """Whether a metric value meets the task's (or the given) threshold."""
    spec = get_task(task)
    threshold = spec.solve_threshold if threshold is None else threshold
    return value >= threshold if spec.higher_is_better else value < threshold


# --- model variants ---

CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru", "lru", "mingru", "indrnn")
INITS = ("default", "orthogonal", "identity", "chrono", "forget_bias")
CONSTRAINTS = ("none", "orthogonal")
FUSED_CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru")  # torch's fused modules (cuDNN, oneDNN)
# The LRU's ring initialisation (Orvieto et al. 2023, long-range settings; see rnngrad.cells)
LRU_DEFAULTS = {"r_min": 0.9, "r_max": 0.999, "max_phase": math.pi / 10}
