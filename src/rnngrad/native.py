"""minGRU's kernel (rnngrad/mingru_kernel.py) through numba, or the reason it is not used.

torch offers no fused CPU kernel for a scan with its gates (torch.compile of one took
41 s to compile and ran 10x slower, benchmarks/bench_scan.py). numba, a declared
dependency, compiles the kernel with the LLVM in its own wheel: no system compiler.
It compiles for this CPU on first use (about 1 s per dtype) and caches the build
(numba's cache: __pycache__ beside the module where writable, else ~/.cache/numba, or
$NUMBA_CACHE_DIR), keyed by the source and by the CPU's name and features, so a cache
in a shared home is never loaded on a CPU it was not built for; a later process loads
it in about 0.25 s. Measured against the C kernel it replaces (built by cc -O3), at
T = 1000, B = H = 64, one thread: the same speed, forward and backward (README).

`kernels(dtype)` imports numba, compiles (or loads) the kernel and checks it on a
small input against the recurrence written out, once per process and dtype; a cached
build that fails to load or to check is dropped from numba's cache and compiled once
more. Where any of that fails, or RNNGRAD_NATIVE=0, it returns None, `why_unavailable`
says why, and the first such failure in a process warns (RNNGRAD_NATIVE=0 does not: it
was asked for); the callers keep their torch implementation. Processes that start at
once on an empty cache each compile (numba takes no lock), and each publishes by
renaming a complete file; numba reads its cache files whole, never maps them.
"""

from __future__ import annotations

import importlib
import os
import warnings

import numpy as np
import torch

__all__ = ["DISABLE", "compiler", "kernels", "why_unavailable"]

DISABLE = "RNNGRAD_NATIVE"  # set to 0 to train with the torch implementations only
DTYPES = (torch.float32, torch.float64)

_loaded: dict[torch.dtype, tuple | None] = {}
_why: dict[torch.dtype, str] = {}
_warned = False


def _check(forward, backward, dtype: torch.dtype) -> None:
    """Raise unless the kernel matches h_t = h_{t-1} + z_t (g(ph_t) - h_{t-1}) on a small input."""
    T, B, H = 3, 2, 4
    real = torch.empty((), dtype=dtype).numpy().dtype
    p = np.linspace(-2.0, 2.0, T * B * 2 * H).reshape(T, B, 2 * H).astype(real)
    s = 1 / (1 + np.exp(-p))
    z, cand = s[..., :H], np.where(p[..., H:] >= 0, p[..., H:] + 0.5, s[..., H:])
    want, prev = np.empty((T, B, H)), np.zeros((B, H))
    for t in range(T):
        want[t] = prev = prev + z[t] * (cand[t] - prev)
    h, zero, one = np.empty((T, B, H), real), np.zeros((B, H), real), np.ones(1, real)
    forward(p, s, h, zero, one)
    backward(p, h, np.ones_like(h), zero.copy(), s, zero, one)
    if not np.allclose(h, want, rtol=1e-5, atol=1e-6) or not np.isfinite(s).all():
        raise RuntimeError("the compiled kernel gave wrong values on its check")


def _load(dtype: torch.dtype) -> tuple:
    kernel = importlib.import_module("rnngrad.mingru_kernel")  # numba: 0.3 s; may raise
    try:
        _check(kernel.forward, kernel.backward, dtype)
    except Exception:
        # a cache file that does not load (numba raises on one that does not unpickle,
        # and then on every later run) or a build that checks wrong: its index emptied
        # (numba writes a new file and renames it over the old, which no process maps),
        # compiled and checked once more; a second failure is the reason
        for jitted in (kernel.sizes, kernel.forward, kernel.backward):
            if hasattr(jitted, "_cache"):
                jitted._cache.flush()
        _check(kernel.forward, kernel.backward, dtype)
    return kernel.forward, kernel.backward


def kernels(dtype: torch.dtype) -> tuple | None:
    """(forward, backward) of rnngrad.mingru_kernel for dtype (float32, float64), or None.

    Compiles, checks and remembers once per process and dtype; a failure warns once per
    process, naming the reason, and the caller falls back to torch.
    """
    global _warned
    if dtype in _loaded:
        return _loaded[dtype]
    found, why = None, ""
    if os.environ.get(DISABLE, "1").strip() == "0":
        why = f"{DISABLE}=0"
    elif dtype not in DTYPES:
        why = f"the kernel takes float32 and float64, not {dtype}"
    else:
        try:
            found = _load(dtype)
        except Exception as err:  # ImportError, numba's errors, the check: all fall back
            lines = str(err).strip().splitlines() or ["no message"]
            why = f"{type(err).__name__}: {lines[0]}"
    if why and not _warned and not why.startswith(DISABLE):
        _warned = True
        warnings.warn(
            f"rnngrad: minGRU's compiled kernel is not used ({why}); training with the "
            "torch implementation instead (about 1.7x slower)",
            RuntimeWarning,
            stacklevel=2,
        )
    _loaded[dtype], _why[dtype] = found, why
    return found


def why_unavailable(dtype: torch.dtype = torch.float32) -> str:
    """Why `kernels(dtype)` returned None ("" when it loaded or was not tried)."""
    return _why.get(dtype, "")


def compiler() -> str:
    """What compiles the kernel here, for the run summary: numba, llvmlite, LLVM, CPU."""
    try:
        import llvmlite
        import numba
        from llvmlite import binding
    except Exception as err:
        return f"none ({type(err).__name__})"
    llvm = ".".join(map(str, binding.llvm_version_info))
    cpu = binding.get_host_cpu_name()
    return f"numba {numba.__version__} (llvmlite {llvmlite.__version__}, LLVM {llvm}, cpu {cpu})"
