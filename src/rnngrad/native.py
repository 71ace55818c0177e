"""C kernels shipped as source, compiled on first use with the machine's C compiler.

torch offers no fused CPU kernel for a scan with its gates (torch.compile of one took
41 s to compile and ran 10x slower, benchmarks/bench_scan.py), and a torch C++ extension
needs ninja and half a minute of compiling against torch's headers. These kernels are
plain C99 over raw pointers: `cc` builds one in a fraction of a second, ctypes loads
it, and the shared library is cached per source, compiler and platform, so each machine
compiles it once. Where no compiler works (or RNNGRAD_NATIVE=0), `load` returns None
with the reason in `why_unavailable`, and the callers keep their torch implementation.

Flags: -O3 vectorises the loops; -fno-trapping-math lets the comparisons become
selects inside them; no -march: the baseline instruction set of the platform (SSE2 on
x86-64), so a library cached in a shared home runs on every node of a cluster.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import warnings
from importlib import resources
from pathlib import Path

from rnngrad.io import atomic_path

__all__ = ["DISABLE", "FLAGS", "cache_dir", "load", "why_unavailable"]

DISABLE = "RNNGRAD_NATIVE"  # set to 0 to train with the torch implementations only
FLAGS = ("-O3", "-fno-trapping-math", "-std=c99", "-shared", "-fPIC")

_loaded: dict[str, ctypes.CDLL | None] = {}
_why: dict[str, str] = {}


def cache_dir() -> Path:
    """Where compiled kernels live: $XDG_CACHE_HOME/rnngrad (default ~/.cache/rnngrad)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "rnngrad"


def _compiler() -> str | None:
    named = os.environ.get("CC")
    if named:
        return shutil.which(named)
    return next((found for cc in ("cc", "gcc", "clang") if (found := shutil.which(cc))), None)


def _key(source: bytes, compiler: str) -> str:
    """Source, flags, the compiler binary and the platform: a change to any compiles again."""
    stat = os.stat(compiler)
    parts = [source, " ".join(FLAGS).encode(), os.path.realpath(compiler).encode()]
    parts += [str(stat.st_size).encode(), str(stat.st_mtime_ns).encode()]
    parts += [sys.platform.encode(), platform.machine().encode()]
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]


def _build(name: str, source: bytes, compiler: str) -> Path:
    """The cached library for `source`, compiled now if missing (under a temporary name,
    renamed when complete: a job that dies mid-compile, or two that compile at once,
    never leave a half-written library)."""
    out = cache_dir() / f"{name}-{_key(source, compiler)}.so"
    if out.exists():
        return out
    with atomic_path(out) as lib:  # the source goes in on stdin: nothing else written
        cmd = [compiler, *FLAGS, "-x", "c", "-", "-o", str(lib)]
        done = subprocess.run(cmd, input=source, capture_output=True)
        if done.returncode != 0:
            lines = done.stderr.decode(errors="replace").strip().splitlines()
            raise OSError(f"{compiler} failed on {name}.c: {(lines or ['no message'])[0]}")
    return out


def load(name: str) -> ctypes.CDLL | None:
    """The compiled kernel library rnngrad/<name>.c, or None (see `why_unavailable`).

    Compiles at most once per process and machine; a failure warns once, naming the
    compiler's error, and the caller falls back to torch.
    """
    if name in _loaded:
        return _loaded[name]
    lib, why = None, ""
    if os.environ.get(DISABLE, "1").strip() == "0":
        why = f"{DISABLE}=0"
    elif (compiler := _compiler()) is None:
        why = f"no C compiler found (CC={os.environ.get('CC', '')!r}, cc, gcc, clang)"
    else:
        try:
            source = resources.files("rnngrad").joinpath(f"{name}.c").read_bytes()
            lib = ctypes.CDLL(str(_build(name, source, compiler)))
        except OSError as err:
            why = str(err)
            warnings.warn(
                f"rnngrad: the {name} kernel is unavailable ({why}); using torch instead",
                RuntimeWarning,
                stacklevel=2,
            )
    _loaded[name], _why[name] = lib, why
    return lib


def why_unavailable(name: str) -> str:
    """Why `load(name)` returned None ("" when it loaded or was not tried)."""
    return _why.get(name, "")
