"""Long-range synthetic tasks: batch generators, losses, metrics and baselines.

- adding: Hochreiter & Schmidhuber (1997), in the form of Le et al. (2015).
- copy: Arjovsky, Shah & Bengio (2016), "copy memory".

Batches are stateless: a generator keyed by (seed, step, stream) makes each one, so a
resumed run sees exactly the data it would have seen, and every variant trained
with the same seed sees the same data. No data files exist.

Four streams, disjoint by construction rather than by seed ranges (STREAMS): the
training batches (seed, step, "train"), the early-stopping evaluation batch
(seed, 0, "eval"), the held-out test batch (seed, 0, "test") and the probe batch
(seed, 0, "probe"). The stream is the spawn key of a numpy SeedSequence whose entropy is
(seed, step) written as four 32-bit words, so no (seed, step) of one stream can give
another stream's generator.
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
    "STREAMS",
]

# The random streams of a run; a stream's index is its SeedSequence spawn key.
STREAMS = ("train", "eval", "test", "probe")
_WORD = 2**32


def _check_length(task: str, length: int) -> None:
    if not isinstance(length, int) or length < 2:
        raise ValueError(f"length must be an integer >= 2 for task {task!r}, got {length!r}")


def _seed_sequence(seed: int, step: int, stream: str) -> np.random.SeedSequence:
    """The SeedSequence of a batch: entropy (seed, step) in four words, spawn key the stream.

    SeedSequence splits each int into as many 32-bit words as it needs and pads short
    entropy with zero words, so SeedSequence([seed, step]) would make (2**32 + 5, 0) and
    (5, 1) the same generator. Two words each, always four (the pool size, so no padding),
    make the words a one-to-one function of (seed, step); the spawn key then keeps the
    streams apart.
    """
    for name, value in (("seed", seed), ("step", step)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        if not 0 <= value < _WORD**2:
            raise ValueError(f"seed and step must be >= 0 and < 2**64, got {name}={value}")
    if stream not in STREAMS:
        raise ValueError(f"unknown stream {stream!r}; options are {list(STREAMS)}")
    seed, step = int(seed), int(step)
    words = [seed % _WORD, seed // _WORD, step % _WORD, step // _WORD]
    return np.random.SeedSequence(entropy=words, spawn_key=(STREAMS.index(stream),))


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
    stream: str = "train",
) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch of `task` at dependency length `length`.

    Stateless: the same (task, length, batch_size, seed, step, stream) always gives the
    same batch, on any device. Streams (STREAMS: train, eval, test, probe) never share a
    generator, whatever the seeds and steps; within a stream, a smaller batch of the
    copy task is the first rows of a larger one (the adding task draws its markers after
    all values, so its rows differ).

    Args:
        seed, step: integers in [0, 2**64).
        stream: which of the run's random streams the batch comes from.

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
    rng = np.random.default_rng(_seed_sequence(seed, step, stream))
    x, y = _GENERATORS[task](length, batch_size, rng)
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
