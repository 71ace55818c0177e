"""What names a run, as plain data and without torch: tasks, model variants, run specs.

The config layer and the Snakefile read only these, so parsing the workflow does not
import torch. `rnngrad.tasks`, `rnngrad.models` and `rnngrad.train` re-export them next to
the code that gives them meaning (batch generators, the model, the training loop).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

__all__ = [
    "TASKS",
    "Task",
    "get_task",
    "is_solved",
    "VariantSpec",
    "CELLS",
    "FUSED_CELLS",
    "LRU_DEFAULTS",
    "INITS",
    "CONSTRAINTS",
    "RunSpec",
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


@dataclass(frozen=True)
class VariantSpec:
    """A model variant: data from the config's `variants:` mapping, not a class.

    Attributes:
        cell: recurrent cell, one of CELLS.
        hidden_size: width H of the hidden state.
        init: initialisation of the recurrent weights, one of INITS.
        constraint: "orthogonal" keeps W_hh orthogonal during training (vanilla cells).
        clip_norm: clip the global gradient norm to this value; None for no clipping.
        lr: learning rate for this variant; None takes the run's default.
        r_min, r_max: cell lru only: |lambda| starts uniform on the ring r_min <= |lambda|
            <= r_max (0 <= r_min < r_max < 1); None takes LRU_DEFAULTS.
        max_phase: cell lru only: the phase of lambda starts uniform on [0, max_phase]
            (0 < max_phase <= 2 pi); None takes LRU_DEFAULTS.
    """

    cell: str = "lstm"
    hidden_size: int = 64
    init: str = "default"
    constraint: str = "none"
    clip_norm: float | None = None
    lr: float | None = None
    r_min: float | None = None
    r_max: float | None = None
    max_phase: float | None = None

    def __post_init__(self) -> None:
        _choice("cell", self.cell, CELLS)
        self._check_lru()
        _choice("init", self.init, INITS)
        _choice("constraint", self.constraint, CONSTRAINTS)
        if not isinstance(self.hidden_size, int) or self.hidden_size < 1:
            raise ValueError(f"hidden_size must be a positive integer, got {self.hidden_size!r}")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ValueError(f"clip_norm must be > 0 or null, got {self.clip_norm!r}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be > 0 or null, got {self.lr!r}")
        if self.init == "identity" and self.cell != "rnn_relu":
            raise ValueError(
                f"init 'identity' (IRNN) needs cell 'rnn_relu', got cell {self.cell!r}"
            )
        if self.init in ("chrono", "forget_bias") and self.cell != "lstm":
            raise ValueError(
                f"init {self.init!r} sets LSTM gate biases and needs cell 'lstm', got {self.cell!r}"
            )
        if self.init == "orthogonal" and self.cell not in FUSED_CELLS:
            raise ValueError(
                "init 'orthogonal' makes the recurrent weight matrices orthogonal and needs "
                f"one of the cells {list(FUSED_CELLS)}; cell {self.cell!r} has a diagonal "
                "recurrence"
            )
        if self.constraint == "orthogonal" and self.cell not in ("rnn_tanh", "rnn_relu"):
            raise ValueError(
                "constraint 'orthogonal' keeps a square W_hh orthogonal and needs cell "
                f"'rnn_tanh' or 'rnn_relu', got {self.cell!r}"
            )

    def _check_lru(self) -> None:
        """The ring keys: LRU only, defaults filled in, 0 <= r_min < r_max < 1."""
        if self.cell != "lru":
            for key in LRU_DEFAULTS:
                if getattr(self, key) is not None:
                    raise ValueError(
                        f"{key} sets the LRU's ring initialisation and needs cell 'lru', "
                        f"got cell {self.cell!r}"
                    )
            return
        for key, default in LRU_DEFAULTS.items():
            value = getattr(self, key)
            if value is None:
                object.__setattr__(self, key, default)  # frozen: fill the default once
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{key} must be a number, got {value!r}")
            elif not math.isfinite(value):
                raise ValueError(f"{key} must be finite, got {value!r}")
        if not 0 <= self.r_min < 1:
            raise ValueError(f"r_min must be in [0, 1), got {self.r_min!r}")
        if not self.r_max < 1:
            raise ValueError(
                f"r_max must be < 1 (|lambda| = 1 never forgets and can grow), got {self.r_max!r}"
            )
        if not self.r_min < self.r_max:
            raise ValueError(
                f"r_min must be < r_max, got r_min={self.r_min!r} and r_max={self.r_max!r}"
            )
        if not 0 < self.max_phase <= 2 * math.pi:
            raise ValueError(f"max_phase must be in (0, 2 pi], got {self.max_phase!r}")

    @classmethod
    def from_dict(cls, d: dict) -> VariantSpec:
        """Build from a config mapping; unknown keys are an error that names them."""
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(
                f"unknown variant key(s) {sorted(unknown)}; allowed keys are "
                f"{sorted(cls.__dataclass_fields__)}"
            )
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


def _choice(key: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ValueError(f"unknown {key} {value!r}; options are {list(options)}")


# --- training runs ---


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run's numbers (threads and device only its speed).

    Attributes:
        task, length: the task and its dependency length T.
        variant: the variant's name in the config; model: its settings.
        seed: seeds the initial weights and the training batches.
        steps: maximum optimiser steps (early stop when solved).
        batch_size: training batch size.
        lr: Adam learning rate, unless the variant sets its own.
        eval_every: evaluate on the fixed evaluation batch every N steps.
        eval_size: size of the evaluation batch (its own random stream), on which the
            run stops early once the metric passes the threshold.
        test_size: size of the held-out test batch (its own stream), on which the final
            weights are evaluated once; it alone decides the run's status.
        final_k: the final metric is the mean of the last k evaluations.
        solve_threshold: metric threshold for "solved"; None takes the task's default.
        probe_every: probe dL/dh_t every N steps (0: only at the start and the end).
        probe_batch: size of the fixed probe batch.
        checkpoint_every: write a checkpoint every N steps.
        horizon_length: after training, probe the final model once more at this length
            (the task's longest grid length in a workflow), so that the horizons of
            models trained at different lengths are measured on one footing; None: no.
        device: auto | cpu | cuda.
        threads: torch intra-op threads (the Snakemake job's threads).
    """

    task: str
    length: int
    variant: str = "lstm"
    model: VariantSpec = field(default_factory=VariantSpec)
    seed: int = 0
    steps: int = 3000
    batch_size: int = 64
    lr: float = 1e-3
    eval_every: int = 100
    eval_size: int = 500
    test_size: int = 2000
    final_k: int = 3
    solve_threshold: float | None = None
    probe_every: int = 500
    probe_batch: int = 32
    checkpoint_every: int = 500
    horizon_length: int | None = None
    device: str = "auto"
    threads: int = 1

    def __post_init__(self) -> None:
        get_task(self.task)
        if self.horizon_length is not None and self.horizon_length < 2:
            raise ValueError(f"horizon_length must be >= 2 or None, got {self.horizon_length}")
        if self.length < 2:
            raise ValueError(f"length must be >= 2, got {self.length}")
        for key in (
            "steps",
            "batch_size",
            "eval_every",
            "eval_size",
            "test_size",
            "final_k",
            "probe_batch",
            "checkpoint_every",
            "threads",
        ):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        if self.probe_every < 0:
            raise ValueError(f"probe_every must be >= 0, got {self.probe_every}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"unknown device {self.device!r}; options are ['auto', 'cpu', 'cuda']")

    @property
    def effective_lr(self) -> float:
        return self.model.lr if self.model.lr is not None else self.lr

    def identity(self) -> dict:
        """The fields that fix the run's numbers: a checkpoint resumes only a run equal in these."""
        d = asdict(self)
        d.pop("threads")
        d.pop("device")
        return d

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RunSpec:
        d = dict(d)
        d["model"] = VariantSpec.from_dict(d.get("model", {}))
        return cls(**d)
