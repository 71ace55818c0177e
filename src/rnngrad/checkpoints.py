"""A run's checkpoint: model, optimiser and RunState, so a killed run resumes where it stopped
and, batches being a pure function of (seed, step), ends with an uninterrupted run's numbers.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch

from rnngrad.io import atomic_path
from rnngrad.settings import RunSpec

log = logging.getLogger(__name__)

VERSION = 1


def _lists(*keys: str):
    return dataclasses.field(default_factory=lambda: {k: [] for k in keys})


@dataclasses.dataclass
class RunState:
    """What a checkpoint holds besides the model and optimiser: plain lists and numbers."""

    step: int = 0
    curve: dict[str, list] = _lists("step", "loss", "grad_norm", "clipped", "elapsed")
    evals: dict[str, list] = _lists("step", "metric", "eval_loss")
    probes: list[dict] = dataclasses.field(default_factory=list)
    spectra: list[dict] = dataclasses.field(default_factory=list)
    horizon: dict | None = None  # the final model's profile at horizon_length
    steps_to_solve: int | None = None
    diverged_at: int | None = None
    elapsed: float = 0.0  # seconds of training before this process (resumed runs)


def write(path: Path, spec: RunSpec, model, opt, state: RunState) -> None:
    """Write the checkpoint atomically: a kill leaves the previous one or this one whole."""
    blob = {
        "version": VERSION,
        "identity": spec.identity(),
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "state": dict(vars(state)),
    }
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def load(path: Path, spec: RunSpec, model, opt) -> RunState | None:
    """Restore a checkpoint of this very run into model and opt; anything else is reported
    and ignored (None).

    weights_only=True: a checkpoint is data, never code (a tampered file cannot run
    anything). After a failed load the caller must rebuild model and optimiser, which
    may hold part of the checkpoint.
    """
    if not path.exists():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or blob.get("version") != VERSION:
            raise ValueError(f"not an rnngrad checkpoint of version {VERSION}")
        if blob.get("identity") != spec.identity():
            log.warning("checkpoint %s belongs to another run spec; starting over", path)
            return None
        model.load_state_dict(blob["model"])
        opt.load_state_dict(blob["optimizer"])
        state = RunState(**blob["state"])
        if not 0 < state.step <= spec.steps or len(state.curve["step"]) != state.step:
            raise ValueError(f"inconsistent state at step {state.step}")
        return state
    except Exception as err:  # noqa: BLE001 (any unreadable checkpoint: start over)
        log.warning("checkpoint %s is unreadable (%s); starting over", path, err)
        return None
