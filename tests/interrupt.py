"""Stop a training run right after one of its checkpoints, as a kill would (no summary)."""

from __future__ import annotations

from pathlib import Path

import pytest

import rnngrad.train as tr
from rnngrad import checkpoints


def stop_after_checkpoint(monkeypatch, spec, out: Path, step: int | None = None, **kwargs):
    """Run `train_run(spec, out, **kwargs)` until the checkpoint of `step` (None: the first)
    is written, then interrupt it; the real checkpoint writer is back in place after."""
    real_save = checkpoints.write

    def save_then_die(path, spec_, model, opt, state):
        real_save(path, spec_, model, opt, state)
        if step is None or state.step == step:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints, "write", save_then_die)
    try:
        with pytest.raises(KeyboardInterrupt):
            tr.train_run(spec, out, progress=False, **kwargs)
    finally:
        monkeypatch.setattr(checkpoints, "write", real_save)
