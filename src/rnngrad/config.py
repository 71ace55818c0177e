"""The experiment config: strict loading, validation, and the grids it defines.

One JSON schema (schemas/config.schema.yaml, also used by the Snakefile) rejects
unknown keys and bad values; `check_config` adds the checks a schema cannot
express (variant combinations, references between sections). Every error names
the key and the allowed values, and is raised before any job runs.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from rnngrad.specs import RunSpec, VariantSpec

__all__ = [
    "ProbeSettings",
    "probe_settings",
    "ConfigError",
    "SCHEMA_PATH",
    "load_config",
    "check_config",
    "variant_specs",
    "train_grid",
    "probe_grid",
    "train_steps",
    "climb_criterion",
    "horizon_length",
    "config_hash",
    "GridPoint",
    "run_spec",
    "read_yaml",
]

SCHEMA_PATH = Path(str(files("rnngrad") / "schemas" / "config.schema.yaml"))


class ConfigError(ValueError):
    """A config that cannot be run; the message names the key."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (plain YAML keeps the last one silently)."""


def _mapping_no_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise ConfigError(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_no_duplicates
)


def read_yaml(path: str | Path) -> Any:
    """Read YAML safely, rejecting duplicate keys; errors name the file."""
    path = Path(path)
    try:
        with path.open() as fh:
            return yaml.load(fh, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file is a directory: {path}") from None
    except yaml.MarkedYAMLError as err:
        # one line: where, then what (PyYAML's own text spans several lines)
        mark = err.problem_mark or err.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = " ".join(str(x) for x in (err.context, err.problem) if x)
        raise ConfigError(f"{path}{where}: invalid YAML: {what}") from None
    except (yaml.YAMLError, ConfigError, UnicodeDecodeError) as err:
        text = " ".join(str(err).split())
        raise ConfigError(f"{path}: {text}") from None


def _schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    where = _key_path(error)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = (
            sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        )
        hint = f"; allowed keys are {allowed}" if allowed else ""
        return f"unknown key(s) {extra} in {where}{hint}"
    if error.validator == "enum":
        return f"{where}: {error.instance!r} is not one of {error.validator_value}"
    if error.validator == "pattern" or error.validator == "propertyNames":
        return (
            f"{where}: name {error.instance!r} is not allowed; names must match "
            "^[a-z][a-z0-9_]*$ (lower-case letters, digits and _, starting with a letter)"
        )
    if error.validator in ("oneOf", "anyOf"):
        # a mapping given where a mapping is allowed failed inside it: say where
        inner = [e for e in error.context or () if e.validator != "type"]
        if inner and isinstance(error.instance, dict):
            return _describe(min(inner, key=lambda e: len(list(e.relative_schema_path))))
        allowed = " or ".join(_allowed(s) for s in error.validator_value)
        return f"{where}: {error.instance!r} is not allowed; allowed values are {allowed}"
    if error.validator == "minProperties":
        keys = sorted(error.schema.get("properties", {}))
        hint = f"; allowed keys are {keys}" if keys else ""
        return f"{where}: must not be empty{hint}"
    if error.validator == "minItems":
        return (
            f"{where}: must list at least {error.validator_value} item(s), got {error.instance!r}"
        )
    return f"{where}: {error.message}"


# Variant names become folder names and wildcards. Python's `$` also matches before a
# trailing newline, so the schema's pattern alone lets "x\n" through: match in full.
_NAME = re.compile(r"[a-z][a-z0-9_]*")


def _check_names(cfg: dict, source: str) -> None:
    named = [("variants", name) for name in cfg["variants"]] + [
        (f"{section}.variants", name)
        for section in ("train", "probes")
        for name in cfg[section].get("variants", [])
    ]
    for where, name in named:
        if not _NAME.fullmatch(name):
            raise ConfigError(
                f"{source}: {where}: name {name!r} is not allowed; names must match "
                "^[a-z][a-z0-9_]*$ (lower-case letters, digits and _, starting with a letter)"
            )


def _allowed(schema: dict) -> str:
    """A schema alternative in words: null, an integer >= 1, a number > 0, ..."""
    kind = schema.get("type", "value")
    if kind == "null":
        return "null"
    if kind == "object":
        keys = sorted(schema.get("properties", {}))
        return "a mapping" + (f" with keys from {keys}" if keys else "")
    bounds = [
        f"{op} {schema[key]}"
        for key, op in (
            ("minimum", ">="),
            ("exclusiveMinimum", ">"),
            ("maximum", "<="),
            ("exclusiveMaximum", "<"),
        )
        if key in schema
    ]
    article = "an" if kind[0] in "aeiou" else "a"
    return f"{article} {kind}" + (f" {' and '.join(bounds)}" if bounds else "")


def _non_finite(value: Any, where: str = "") -> str | None:
    """The key path of the first NaN or infinite number in a config, else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "(top level)"
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _non_finite(item, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


def _fill_defaults(cfg: dict, schema: dict) -> None:
    # The schema's `default`s, applied to the sections that exist, so the defaults
    # live in one visible place for both the CLI and the Snakefile.
    for key, sub in schema.get("properties", {}).items():
        if "default" in sub and key not in cfg:
            cfg[key] = copy.deepcopy(sub["default"])
        elif isinstance(cfg.get(key), dict) and sub.get("type") == "object":
            _fill_defaults(cfg[key], sub)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and extra.get("type") == "object":
        for key, value in cfg.items():
            if key not in schema.get("properties", {}) and isinstance(value, dict):
                _fill_defaults(value, extra)


def check_config(cfg: Any, source: str = "config") -> dict:
    """Validate a config mapping and return it with defaults filled in.

    Raises:
        ConfigError: the first problem found, naming the key and the allowed values.
    """
    if not isinstance(cfg, dict):
        raise ConfigError(f"{source}: the config must be a mapping, got {type(cfg).__name__}")
    schema = _schema()
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(cfg),
        key=lambda e: (len(list(e.absolute_path)), _key_path(e)),
    )
    if errors:
        raise ConfigError(f"{source}: " + "; ".join(_describe(e) for e in errors[:5]))
    bad = _non_finite(cfg)
    if bad:
        raise ConfigError(
            f"{source}: {bad}: NaN and infinity are not allowed; give a finite number"
        )
    _check_names(cfg, source)
    cfg = copy.deepcopy(cfg)
    _fill_defaults(cfg, schema)
    specs = variant_specs(cfg, source)
    for section in ("train", "probes"):
        for name in cfg[section].get("variants", []):
            if name not in specs:
                raise ConfigError(
                    f"{source}: {section}.variants names unknown variant {name!r}; "
                    f"defined variants are {sorted(specs)}"
                )
    for task, lengths in cfg["train"]["tasks"].items():
        if any(b <= a for a, b in zip(lengths, lengths[1:], strict=False)):
            raise ConfigError(
                f"{source}: train.tasks.{task}: lengths must increase (the sweep tries them "
                f"in order, each once the one before is solved), got {lengths}"
            )
    steps = cfg["train"]["steps"]
    if isinstance(steps, dict):
        missing = sorted(set(cfg["train"]["tasks"]) - set(steps))
        if missing:
            raise ConfigError(
                f"{source}: train.steps: no step budget for trained task(s) {missing}; "
                f"give one per task or a single number, got {steps}"
            )
        for task, lengths in cfg["train"]["tasks"].items():
            if isinstance(steps[task], list) and len(steps[task]) != len(lengths):
                raise ConfigError(
                    f"{source}: train.steps.{task}: a list of budgets needs one per length "
                    f"of train.tasks.{task} ({len(lengths)}: {lengths}), got "
                    f"{len(steps[task])}: {steps[task]}"
                )
    for section in ("train", "probes"):
        for task, lengths in cfg[section]["tasks"].items():
            for name in _variants(cfg, section):
                if specs[name].init == "chrono" and min(lengths) < 3:
                    raise ConfigError(
                        f"{source}: {section}.tasks.{task}: variant {name!r} uses init 'chrono', "
                        "which needs lengths >= 3"
                    )
    return cfg


def load_config(path: str | Path) -> dict:
    """Read, validate and default a config file (see check_config)."""
    return check_config(read_yaml(path), source=str(path))


def variant_specs(cfg: dict, source: str = "config") -> dict[str, VariantSpec]:
    """The config's variants as VariantSpecs; the top-level hidden_size is their default."""
    specs = {}
    for name, entry in cfg["variants"].items():
        entry = {"hidden_size": cfg.get("hidden_size", 64), **entry}
        try:
            specs[name] = VariantSpec.from_dict(entry)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{source}: variants.{name}: {err}") from None
    return specs


def _variants(cfg: dict, section: str) -> list[str]:
    return list(cfg[section].get("variants") or cfg["variants"])


@dataclass(frozen=True)
class ProbeSettings:
    """What a probe at initialisation reads from `probes:`: one reading for the CLI and
    the workflow, so the same config gives the same probe from both."""

    seeds: int
    batch_size: int
    jac_examples: int


def probe_settings(cfg: dict) -> ProbeSettings:
    """The checked config's `probes.seeds`, `batch_size` and `jac_examples`."""
    p = cfg["probes"]
    return ProbeSettings(int(p["seeds"]), int(p["batch_size"]), int(p["jac_examples"]))


@dataclass(frozen=True)
class GridPoint:
    """One job of a grid: a task at a length, a variant, and a seed (None for init probes)."""

    task: str
    length: int
    variant: str
    seed: int | None = None


def train_grid(cfg: dict) -> list[GridPoint]:
    """Every training run of the config, in a stable order."""
    return [
        GridPoint(task, length, variant, seed)
        for task, lengths in cfg["train"]["tasks"].items()
        for length in lengths
        for variant in _variants(cfg, "train")
        for seed in cfg["train"]["seeds"]
    ]


def train_steps(cfg: dict, task: str, length: int) -> int:
    """The step budget of a run: `train.steps`, one number, or per task a number or a
    list with one number per length of `train.tasks.<task>`."""
    steps = cfg["train"]["steps"]
    if isinstance(steps, dict):
        if task not in steps:
            raise ConfigError(
                f"train.steps has no step budget for task {task!r}; it has {sorted(steps)}"
            )
        steps = steps[task]
    if not isinstance(steps, list):
        return int(steps)
    lengths = list(cfg["train"]["tasks"].get(task, []))
    # A length off the ladder (rnngrad train --length, a benchmark) takes the budget of
    # the next ladder length up, or the longest's: a longer dependency never gets less.
    above = [i for i, n in enumerate(lengths) if n >= length]
    return int(steps[above[0] if above else len(lengths) - 1])


def climb_criterion(cfg: dict, task: str) -> str:
    """What passes a length of the task's sweep: `train.climb.<task>`, default solved."""
    return str(cfg["train"].get("climb", {}).get(task, "solved"))


def horizon_length(cfg: dict, task: str) -> int | None:
    """The common length at which every trained model of a task is probed at the end of
    its run: the task's longest training length (None for a task that is not trained)."""
    lengths = cfg["train"]["tasks"].get(task)
    return max(lengths) if lengths else None


def probe_grid(cfg: dict) -> list[GridPoint]:
    """Every probe-at-initialisation job (all seeds of a point go in one job)."""
    return [
        GridPoint(task, length, variant)
        for task, lengths in cfg["probes"]["tasks"].items()
        for length in lengths
        for variant in _variants(cfg, "probes")
    ]


def config_hash(cfg: dict) -> str:
    """A short stable hash of the resolved config, written beside every result."""
    blob = json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def run_spec(cfg: dict, point: GridPoint, *, threads: int = 1, **overrides) -> RunSpec:
    """The resolved RunSpec of one training run of a (checked) config.

    Args:
        cfg: a config returned by load_config / check_config.
        point: task, length, variant and seed of the run.
        threads: torch threads (a runtime setting, not part of the experiment).
        overrides: RunSpec fields to change (e.g. steps from the command line); None ignored.

    Raises:
        ConfigError: unknown variant or task, naming the allowed ones.
    """
    specs = variant_specs(cfg)
    if point.variant not in specs:
        raise ConfigError(
            f"unknown variant {point.variant!r}; defined variants are {sorted(specs)}"
        )
    train = cfg["train"]
    settings = {
        key: train[key]
        for key in (
            "batch_size",
            "lr",
            "eval_every",
            "eval_size",
            "test_size",
            "final_k",
            "probe_every",
            "probe_batch",
            "checkpoint_every",
        )
    }
    if overrides.get("steps") is None:
        settings["steps"] = train_steps(cfg, point.task, point.length)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return RunSpec(
        task=point.task,
        length=point.length,
        variant=point.variant,
        model=specs[point.variant],
        seed=point.seed if point.seed is not None else 0,
        solve_threshold=train.get("solve", {}).get(point.task),
        horizon_length=horizon_length(cfg, point.task),
        device=cfg["device"],
        threads=threads,
        **settings,
    )
