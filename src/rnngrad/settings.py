"""The typed config: the one place of every setting's default, bound and description.

`Config` (with `Train`, `Probes` and `VariantSpec`) is the experiment config as pydantic
models; `RunSpec` is one training run, its settings taking their defaults and bounds from
`Train`. rnngrad.config reads files into these models, generates the JSON schema from
`Config` (`rnngrad schema`) and names the key of any error. No torch: the Snakefile
imports this module.
"""

from __future__ import annotations

import dataclasses
import math
from functools import wraps
from typing import Annotated, Any, Literal

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.dataclasses import dataclass

from rnngrad.specs import CELLS, CONSTRAINTS, FUSED_CELLS, INITS, LRU_DEFAULTS, TASKS
from rnngrad.verdicts import OFF_BASELINE

__all__ = ["Config", "Train", "Probes", "VariantSpec", "RunSpec", "default", "explain"]

NAME_PATTERN = "^[a-z][a-z0-9_]*$"


def _unique(items: list) -> list:
    if len(set(items)) != len(items):
        raise ValueError(f"{items} has non-unique elements")
    return items


_UNIQUE = {"json_schema_extra": {"uniqueItems": True}}
_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)

# Variant names become folder names and wildcards: lower-case letters, digits and _.
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Names = Annotated[list[Name], Field(min_length=1, **_UNIQUE), AfterValidator(_unique)]
TaskName = Literal[tuple(TASKS)]
PosInt = Annotated[int, Field(ge=1, strict=True)]
Positive = Annotated[float, Field(gt=0, strict=True)]
Seed = Annotated[int, Field(ge=0, le=999_999, strict=True)]
Length = Annotated[int, Field(ge=2, le=100_000, strict=True)]
Lengths = Annotated[list[Length], Field(min_length=1, **_UNIQUE), AfterValidator(_unique)]
Tasks = Annotated[
    dict[TaskName, Lengths], Field(min_length=1, description="task name -> dependency lengths T")
]
Budget = Annotated[
    PosInt | Annotated[list[PosInt], Field(min_length=1)],
    Field(description="a task's step budget, one number or one per length"),
]
Criterion = Annotated[
    Literal["solved", "off_baseline"],
    Field(
        description="what passes a length: solved (the test metric passed the threshold) or "
        f"off_baseline (test loss at most {OFF_BASELINE:g} of the input-blind baseline's, "
        "or solved)"
    ),
]
Device = Literal["auto", "cpu", "cuda"]


def _no_default(schema: dict) -> None:
    schema.pop("default", None)  # the default is another key's (see its description)


def _absent(schema: dict) -> None:
    """A key that is absent or set, never null: the schema of its value only."""
    (value,) = [s for s in schema.pop("anyOf") if s.get("type") != "null"]
    schema.update(value)


def default(model: type, key: str) -> Any:
    """The default of a field of one of these models (the one place it is written)."""
    return model.__pydantic_fields__[key].default


def bad_name(where: str, name: Any) -> str:
    return (
        f"{where}: name {name!r} is not allowed; names must match {NAME_PATTERN} "
        "(lower-case letters, digits and _, starting with a letter)"
    )


_BOUNDS = {"greater_than_equal": ("ge", ">="), "greater_than": ("gt", ">"),
           "less_than_equal": ("le", "<="), "less_than": ("lt", "<")}  # fmt: skip


def explain(err: pydantic.ValidationError, noun: str = "") -> str:
    """pydantic's errors in one line, each naming its key."""
    texts = []
    for e in err.errors()[:5]:
        loc = [str(part) for part in e["loc"]]
        where = ".".join(loc[:-2] if loc and loc[-1] == "[key]" else loc) or "(top level)"
        kind, value = e["type"], e.get("input")
        if kind == "string_pattern_mismatch":
            # a name the schema let through: Python's `$` also matches before a final newline
            texts.append(bad_name(where, value))
        elif kind in _BOUNDS:
            key, op = _BOUNDS[kind]
            texts.append(f"{where} must be {op} {e['ctx'][key]}, got {value!r}")
        elif kind == "literal_error":
            options = e["ctx"]["expected"].replace(" or ", ", ")
            texts.append(f"unknown {where} {value!r}; options are [{options}]")
        elif kind == "missing":
            texts.append(f"{where} is required")
        elif kind == "finite_number":
            texts.append(f"{where} must be finite, got {value!r}")
        elif kind in ("unexpected_keyword_argument", "extra_forbidden"):
            texts.append(f"unknown {noun} key(s) ['{loc[-1]}']".replace("  ", " "))
        elif kind == "value_error":
            text = e["msg"].removeprefix("Value error, ")
            texts.append(f"{where}: {text}" if loc else text)
        else:
            texts.append(f"{where}: {e['msg']}")
    return "; ".join(texts)


def _plain_errors(noun: str):
    """A pydantic dataclass whose constructor raises a ValueError in rnngrad's words."""

    def wrap(cls):
        init = cls.__init__

        @wraps(init)
        def __init__(self, *args, **kwargs):
            names = [f.name for f in dataclasses.fields(cls)]
            if len(args) > len(names):
                raise TypeError(f"{cls.__name__} takes at most {len(names)} arguments")
            try:
                init(self, **dict(zip(names, args, strict=False)), **kwargs)
            except pydantic.ValidationError as err:
                raise ValueError(explain(err, noun)) from None

        cls.__init__ = __init__
        return cls

    return wrap


@_plain_errors("variant")
@dataclass(frozen=True, config=_STRICT)
class VariantSpec:
    """A model variant: data from the config's `variants:` mapping, not a class."""

    cell: Literal[CELLS] = Field(description="recurrent cell")
    hidden_size: PosInt = Field(
        64,
        description="width H of the hidden state; in a config, the top-level hidden_size",
        json_schema_extra=_no_default,
    )
    init: Literal[INITS] = Field("default", description="initialisation of the recurrence")
    constraint: Literal[CONSTRAINTS] = Field(
        "none", description="orthogonal: W_hh kept orthogonal during training (vanilla cells)"
    )
    clip_norm: Positive | None = Field(
        None, description="clip the global gradient norm to this value; null for none"
    )
    lr: Positive | None = Field(None, description="learning rate; null takes train.lr")
    r_min: Annotated[float, Field(ge=0, lt=1)] | None = Field(
        None,
        json_schema_extra=_absent,
        description=f"cell lru only; |lambda| starts on the ring [r_min, r_max] "
        f"(default {LRU_DEFAULTS['r_min']})",
    )
    r_max: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        None,
        json_schema_extra=_absent,
        description=f"cell lru only; must be < 1 and > r_min (default {LRU_DEFAULTS['r_max']})",
    )
    max_phase: Annotated[float, Field(gt=0, le=2 * math.pi)] | None = Field(
        None,
        json_schema_extra=_absent,
        description="cell lru only; the phase of lambda starts on [0, max_phase] (default pi/10)",
    )

    @model_validator(mode="after")
    def _combinations(self) -> VariantSpec:
        """What one key's bounds cannot say: which cells an init or a constraint fits."""
        for key, value in LRU_DEFAULTS.items():
            if self.cell != "lru" and getattr(self, key) is not None:
                raise ValueError(
                    f"{key} sets the LRU's ring initialisation and needs cell 'lru', "
                    f"got cell {self.cell!r}"
                )
            if self.cell == "lru" and getattr(self, key) is None:
                object.__setattr__(self, key, value)  # frozen: fill the default once
        if self.cell == "lru" and not self.r_min < self.r_max:
            raise ValueError(
                f"r_min must be < r_max, got r_min={self.r_min!r} and r_max={self.r_max!r}"
            )
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
        return self

    @classmethod
    def from_dict(cls, d: dict) -> VariantSpec:
        return cls(**d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True, config=_STRICT)
class Solve:
    """Per task, the threshold on the metric for "solved" (the task's own when absent)."""

    adding: Positive | None = Field(
        None, description="test MSE below this", json_schema_extra=_absent
    )
    copy: Annotated[float, Field(gt=0, le=1)] | None = Field(
        None, description="recall accuracy at least this", json_schema_extra=_absent
    )


@dataclass(frozen=True, config=_STRICT)
class Climb:
    """Per task, the criterion on which the sweep goes on to the next length."""

    adding: Criterion = "solved"
    copy: Criterion = "solved"


class Train(BaseModel):
    """The training grid and the settings of every run."""

    model_config = _STRICT
    tasks: Tasks = Field(
        description="task name -> dependency lengths T, in increasing order (the sweep's order)"
    )
    variants: Names | None = Field(
        None,
        json_schema_extra=_absent,
        description="variants to train; all of `variants` when absent",
    )
    seeds: Annotated[list[Seed], Field(min_length=1, **_UNIQUE), AfterValidator(_unique)]
    steps: PosInt | Annotated[dict[TaskName, Budget], Field(min_length=1)] = Field(
        3000,
        description="at most this many Adam steps per run (a run stops early once solved): "
        "one number for every run, or per task a number or a list with one number per length "
        "of train.tasks.<task> (e.g. {adding: [2000, 2000, 4000], copy: 6000})",
    )
    adaptive: bool = Field(
        True,
        description="true: an adaptive length sweep, each task's lengths climbed in "
        "increasing order (see climb and sequential); false: every length of train.tasks is "
        "trained with every seed",
    )
    climb: Climb = Field(default_factory=Climb)
    sequential: bool = Field(
        True,
        description="true: the first seed climbs the lengths alone, and the last length it "
        "passed and the first it failed are then trained with every seed (more lengths below "
        "or above until a majority decides); false: every seed climbs",
    )
    batch_size: PosInt = Field(64, description="training batch size")
    lr: Positive = Field(1e-3, description="Adam learning rate, unless the variant sets its own")
    eval_every: PosInt = Field(100, description="evaluate on the fixed evaluation batch every N")
    eval_size: PosInt = Field(
        500, description="size of the evaluation batch, on which a run stops early once solved"
    )
    test_size: PosInt = Field(
        2000, description="size of the held-out test batch that decides each run's status"
    )
    final_k: PosInt = Field(3, description="the final metric: mean of the last k evaluations")
    probe_every: Annotated[int, Field(ge=0, strict=True)] = Field(
        500, description="probe the gradient every N steps (0 = only at the start and the end)"
    )
    probe_batch: PosInt = Field(32, description="size of the fixed probe batch")
    checkpoint_every: PosInt = Field(500, description="write a checkpoint every N steps")
    solve: Solve = Field(default_factory=Solve, description='per task, the metric for "solved"')


class Probes(BaseModel):
    """Probes at initialisation: no training, many seeds, long lengths."""

    model_config = _STRICT
    tasks: Tasks
    variants: Names | None = Field(
        None,
        json_schema_extra=_absent,
        description="variants to probe; all of `variants` when absent",
    )
    seeds: PosInt = Field(10, description="seeds 0..N-1 per task, length and variant")
    batch_size: PosInt = Field(32, description="examples of the probe batch")
    jac_examples: PosInt = Field(
        4,
        description="examples of the probe batch behind the Jacobian norms and the bound; each "
        "costs an exact eigenproblem per time step (2H x 2H for the LSTM), most of a probe's time",
    )


class Config(BaseModel):
    """The grid of an rnngrad run. Unknown keys are rejected at every level. Runtime
    settings (threads, resources, executor) belong in workflow/profiles/, not here."""

    model_config = ConfigDict(**_STRICT, title="rnngrad experiment config")
    device: Device = Field("auto", description="auto picks CUDA when present")
    hidden_size: PosInt = Field(
        default(VariantSpec, "hidden_size"),
        description="hidden size H of every variant that does not set its own",
    )
    variants: Annotated[dict[Name, VariantSpec], Field(min_length=1)] = Field(
        description="variant name -> model settings (see rnngrad.models.VariantSpec)"
    )
    train: Train
    probes: Probes

    @model_validator(mode="before")
    @classmethod
    def _inherit(cls, data: Any) -> Any:
        return inherit_hidden_size(data)

    def section_variants(self, section: str) -> list[str]:
        """The variants that `train` or `probes` runs: its own list, else all of them."""
        return list(getattr(self, section).variants or self.variants)

    @model_validator(mode="after")
    def _across_sections(self) -> Config:
        """The checks that span keys: names that refer to variants, the ladder of lengths
        and its step budgets, chrono's shortest length."""
        for section in ("train", "probes"):
            for name in getattr(self, section).variants or []:
                if name not in self.variants:
                    raise ValueError(
                        f"{section}.variants names unknown variant {name!r}; "
                        f"defined variants are {sorted(self.variants)}"
                    )
        tasks, steps = self.train.tasks, self.train.steps
        for task, lengths in tasks.items():
            if any(b <= a for a, b in zip(lengths, lengths[1:], strict=False)):
                raise ValueError(
                    f"train.tasks.{task}: lengths must increase (the sweep tries them in "
                    f"order, each once the one before is solved), got {lengths}"
                )
        if isinstance(steps, dict):
            missing = sorted(set(tasks) - set(steps))
            if missing:
                raise ValueError(
                    f"train.steps: no step budget for trained task(s) {missing}; "
                    f"give one per task or a single number, got {steps}"
                )
            for task, lengths in tasks.items():
                if isinstance(steps[task], list) and len(steps[task]) != len(lengths):
                    raise ValueError(
                        f"train.steps.{task}: a list of budgets needs one per length of "
                        f"train.tasks.{task} ({len(lengths)}: {lengths}), got "
                        f"{len(steps[task])}: {steps[task]}"
                    )
        for section in ("train", "probes"):
            for task, lengths in getattr(self, section).tasks.items():
                for name in self.section_variants(section):
                    if self.variants[name].init == "chrono" and min(lengths) < 3:
                        raise ValueError(
                            f"{section}.tasks.{task}: variant {name!r} uses init 'chrono', "
                            "which needs lengths >= 3"
                        )
        return self


def inherit_hidden_size(cfg: Any) -> Any:
    """The config with its top-level hidden_size in every variant that sets none."""
    if not isinstance(cfg, dict) or not isinstance(cfg.get("variants"), dict):
        return cfg
    width = cfg.get("hidden_size", default(Config, "hidden_size"))
    variants = {
        name: {"hidden_size": width, **v} if isinstance(v, dict) else v
        for name, v in cfg["variants"].items()
    }
    return {**cfg, "variants": variants}


def _train(key: str) -> Any:
    return Train.model_fields[key]


@_plain_errors("run spec")
@dataclass(frozen=True, config=_STRICT)
class RunSpec:
    """Everything that determines a run's numbers (threads and device only its speed).

    The training settings take their defaults, bounds and descriptions from `Train`.
    `horizon_length`: after training, probe the final model once more at this length
    (the task's longest grid length in a workflow), so that the horizons of models
    trained at different lengths are measured on one footing; None: no.
    """

    task: TaskName
    length: Length
    variant: str = "lstm"
    model: VariantSpec = Field(default_factory=lambda: VariantSpec(cell="lstm"))
    seed: Seed = 0
    steps: PosInt = default(Train, "steps")
    batch_size: int = _train("batch_size")
    lr: float = _train("lr")
    eval_every: int = _train("eval_every")
    eval_size: int = _train("eval_size")
    test_size: int = _train("test_size")
    final_k: int = _train("final_k")
    # None: the task's own threshold. 0 is allowed here, below the config's bound: for a
    # lower-is-better metric it never passes, which fixes a run's outcome in a test
    solve_threshold: Annotated[float, Field(ge=0, strict=True)] | None = None
    probe_every: int = _train("probe_every")
    probe_batch: int = _train("probe_batch")
    checkpoint_every: int = _train("checkpoint_every")
    horizon_length: Length | None = None
    device: Device = Config.model_fields["device"]
    threads: PosInt = 1  # torch intra-op threads (the Snakemake job's threads)

    @property
    def effective_lr(self) -> float:
        return self.model.lr if self.model.lr is not None else self.lr

    def identity(self) -> dict:
        """The fields that fix the run's numbers: a checkpoint resumes only a run equal in these."""
        d = self.to_dict()
        d.pop("threads")
        d.pop("device")
        return d

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RunSpec:
        return cls(**d)
