"""Long-range synthetic tasks: batch generators, losses, metrics and baselines.

- adding: Hochreiter & Schmidhuber (1997), in the form of Le et al. (2015).
- copy: Arjovsky, Shah & Bengio (2016), "copy memory".

Batches are stateless: a generator seeded by (seed, step) makes each one, so a
resumed run sees exactly the data it would have seen, and every variant trained
with the same seed sees the same data. No data files exist.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from rnngrad.specs import (
    COPY_ALPHABET,
    COPY_BLANK,
    COPY_DELIMITER,
    COPY_SYMBOLS,
    TASKS,
    Task,
    get_task,
    is_solved,
)

__all__ = [
    "TASKS",
    "Task",
    "make_batch",
    "baseline_loss",
    "get_task",
    "is_solved",
    "EVAL_SEED",
    "PROBE_SEED",
]

# Seeds for the fixed evaluation and probe batches. Training seeds are limited to
# [0, 10**6) by the config schema, so these streams never coincide with training data.
EVAL_SEED = 1_000_003
PROBE_SEED = 1_000_033


def _check_length(task: str, length: int) -> None:
    if not isinstance(length, int) or length < 2:
        raise ValueError(f"length must be an integer >= 2 for task {task!r}, got {length!r}")


def _generator(seed: int, step: int) -> np.random.Generator:
    # SeedSequence hashes (seed, step) into independent streams: no two pairs collide.
    if seed < 0 or step < 0:
        raise ValueError(f"seed and step must be >= 0, got seed={seed}, step={step}")
    return np.random.default_rng(np.random.SeedSequence([seed, step]))


def _adding(length: int, batch_size: int, rng: np.random.Generator):
    values = rng.random((batch_size, length))  # (B, T) U(0, 1)
    half = length // 2
    first = rng.integers(0, half, size=batch_size)  # one marker in [0, T/2)
    second = rng.integers(half, length, size=batch_size)  # one in [T/2, T)
    markers = np.zeros((batch_size, length))
    rows = np.arange(batch_size)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1).astype(np.float32)  # (B, T, 2)
    y = (values[rows, first] + values[rows, second]).astype(np.float32)  # (B,)
    return torch.from_numpy(x), torch.from_numpy(y)


def _copy(length: int, batch_size: int, rng: np.random.Generator):
    n = COPY_SYMBOLS
    symbols = rng.integers(1, COPY_ALPHABET + 1, size=(batch_size, n))  # (B, 10)
    x = np.full((batch_size, length + 2 * n), COPY_BLANK, dtype=np.int64)  # (B, T+20)
    x[:, :n] = symbols
    x[:, length + n - 1] = COPY_DELIMITER  # after T-1 blanks
    y = np.full_like(x, COPY_BLANK)
    y[:, -n:] = symbols
    return torch.from_numpy(x), torch.from_numpy(y)


_GENERATORS = {"adding": _adding, "copy": _copy}


def make_batch(
    task: str,
    length: int,
    batch_size: int,
    seed: int,
    step: int,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch of `task` at dependency length `length`.

    Stateless: the same (task, length, batch_size, seed, step) always gives the
    same batch, on any device.

    Returns:
        adding: x float32 (B, T, 2) [value, marker], y float32 (B,) the marked sum.
        copy: x int64 (B, T+20) symbols, y int64 (B, T+20) target symbols.

    Example:
        >>> x, y = make_batch("adding", 50, 8, seed=0, step=0)
        >>> tuple(x.shape), tuple(y.shape)
        ((8, 50, 2), (8,))
    """
    get_task(task)
    _check_length(task, length)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    x, y = _GENERATORS[task](length, batch_size, _generator(seed, step))
    return x.to(device), y.to(device)


def baseline_loss(task: str, length: int) -> float:
    """Loss of the best predictor that ignores the input.

    adding: predicting E[y] = 1 gives Var(U1 + U2) = 2/12 = 1/6.
    copy: blanks where the target is always blank, uniform over the 8 symbols on
    the ten recall positions: 10 ln 8 / (T + 20) averaged over all positions.
    """
    get_task(task)
    _check_length(task, length)
    if task == "adding":
        return 2.0 / 12.0
    return COPY_SYMBOLS * math.log(COPY_ALPHABET) / (length + 2 * COPY_SYMBOLS)


def loss(task: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Training loss, a batch mean: MSE (adding) or cross-entropy over all positions (copy)."""
    if task == "adding":
        return F.mse_loss(out, y)
    return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))


def long_range_loss(task: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example long-range loss (B,): the last-step MSE, or the recall cross-entropy.

    The probes differentiate its sum, so no 1/B enters the per-example gradients.
    """
    if task == "adding":
        return (out - y) ** 2
    n = COPY_SYMBOLS
    logits = out[:, -n:]  # (B, 10, V)
    ce = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), y[:, -n:].reshape(-1), reduction="none"
    )
    return ce.view(-1, n).sum(dim=1)


def metric(task: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The task's metric as a 0-d tensor: MSE (adding) or recall accuracy (copy)."""
    if task == "adding":
        return F.mse_loss(out, y)
    n = COPY_SYMBOLS
    return (out[:, -n:].argmax(dim=-1) == y[:, -n:]).float().mean()
