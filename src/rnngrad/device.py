"""Where a run computes, and with which float arithmetic: the device, TF32 and subnormals."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["resolve_device", "no_tf32", "flushing_subnormals", "flush_denormals"]


def resolve_device(device: str) -> torch.device:
    """auto -> cuda when available, else cpu; cuda without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for, but torch sees no CUDA device")
    return torch.device(device)


@contextlib.contextmanager
def no_tf32(device: torch.device):
    """TF32 off for matmul and cuDNN while on CUDA (restored after); nothing elsewhere.

    Yields:
        whether TF32 could act (always False on CUDA inside the block, False on the CPU,
        which has no TF32).
    """
    if device.type != "cuda":
        yield False
        return
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = matmul.allow_tf32, cudnn.allow_tf32
    matmul.allow_tf32 = cudnn.allow_tf32 = False
    try:
        yield bool(matmul.allow_tf32 or cudnn.allow_tf32)
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = saved


def flushing_subnormals() -> bool:
    """Whether the CPU flushes subnormal floats to zero now (torch.set_flush_denormal)."""
    tiny = torch.tensor(1e-39, dtype=torch.float32)  # below float32's smallest normal
    return bool(tiny * torch.tensor(1.0) == 0)


@contextlib.contextmanager
def flush_denormals(device: torch.device):
    """Subnormal floats flushed to zero on the CPU while training (the state before restored).

    A vanishing float32 gradient passes through the subnormal range (below 1.2e-38),
    where x86 arithmetic is about a hundred times slower: with subnormals kept, one LSTM
    step at T = 1000 took 1.1 s here instead of 0.12-0.2 s (benchmarks/bench_scan.py).
    Flushing changes only values below 1.2e-38 in float32 (2.2e-308 in float64), far
    under Adam's epsilon; the float64 probes report norms down to 1e-300.
    """
    before = flushing_subnormals()
    flushing = device.type == "cpu" and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if flushing:
            torch.set_flush_denormal(before)
