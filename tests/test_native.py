"""rnngrad.native: minGRU's compiled kernel, its input checks, its fallback and its cache.

One test per failure mode of issue 20 that survives the move from a hand-built C
library to numba: bad inputs raise the torch path's error (in a subprocess, so that a
memory error fails the test instead of killing pytest), any reason not to use the
kernel falls back with one warning and a recorded reason, and numba's cache is shared
safely by processes started at once and keyed by the CPU it was built for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch

from rnngrad import native
from rnngrad.cells import scan_method
from rnngrad.mingru_scan import mingru_scan_native
from tests.ci import skip_unless_ci


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    """This process's choice forgotten, so each test loads (or fails to load) anew."""
    monkeypatch.delenv(native.DISABLE, raising=False)
    monkeypatch.setattr(native, "_loaded", {})
    monkeypatch.setattr(native, "_why", {})
    monkeypatch.setattr(native, "_warned", False)


def _kernel_or_skip() -> None:
    if native.kernels(torch.float32) is None:
        reason = f"no compiled kernel: {native.why_unavailable()}"
        skip_unless_ci(reason, "the compiled kernel must load")


def _python(code: str, env: dict | None = None, **popen) -> subprocess.Popen:
    src = os.path.join(os.path.dirname(native.__file__), os.pardir)
    path = os.pathsep.join([os.path.abspath(src), os.getcwd()])
    full = {**os.environ, "PYTHONPATH": path, **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def _finish(proc: subprocess.Popen, timeout: float = 120) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"rc {proc.returncode}: {err[-2000:]}"  # 134, 139: a crash
    return out


BAD_INPUTS = """
import json, torch
from rnngrad.mingru_scan import mingru_scan, mingru_scan_native
from rnngrad import mingru_kernel
import numpy as np
cases = {
    "1-D": torch.randn(2 * 8),  # once read as T = 16: a heap overflow
    "odd last axis": torch.randn(5, 2, 7),  # once silently (5, 2, 3)
    "0-D": torch.tensor(1.0),
    "integers": torch.zeros(3, 2, 4, dtype=torch.int64),
    "float16": torch.zeros(3, 2, 4, dtype=torch.float16),
    "not the CPU": torch.zeros(3, 2, 4, device="meta"),
}
got = {}
for name, p in cases.items():
    for scan in (mingru_scan_native, mingru_scan):
        try:
            scan(p)
            got[f"{name} {scan.__name__}"] = "no error"
        except Exception as err:
            got[f"{name} {scan.__name__}"] = f"{type(err).__name__}: {err}"
p = np.zeros((4, 2, 6), np.float32)  # the kernel itself, given arrays that disagree
for name, args in {
    "short h": (p, p.copy(), np.zeros((2, 2, 3), np.float32)),
    "wrong s": (p, np.zeros((4, 2, 4), np.float32), np.zeros((4, 2, 3), np.float32)),
}.items():
    try:
        mingru_kernel.forward(*args, np.zeros((2, 3), np.float32), np.ones(1, np.float32))
        got["kernel " + name] = "no error"
    except Exception as err:
        got["kernel " + name] = f"{type(err).__name__}: {err}"
print(json.dumps(got))
"""


def test_bad_inputs_raise_the_same_clear_error_on_both_paths_and_never_crash():
    _kernel_or_skip()
    got = json.loads(_finish(_python(BAD_INPUTS)))
    for name in ("1-D", "odd last axis", "0-D"):
        for scan in ("mingru_scan_native", "mingru_scan"):
            assert got[f"{name} {scan}"].startswith(f"ValueError: {scan}: p must be (T, ..., 2H)")
    assert (
        "shape (16,)" in got["1-D mingru_scan"] and "(5, 2, 7)" in got["odd last axis mingru_scan"]
    )
    for scan in ("mingru_scan_native", "mingru_scan"):
        assert got[f"integers {scan}"].startswith(f"ValueError: {scan}: p must be a floating")
    for name in ("float16", "not the CPU"):
        assert got[f"{name} mingru_scan_native"].startswith(
            "ValueError: mingru_scan_native: p must be a float32 or float64 CPU tensor"
        ), got[f"{name} mingru_scan_native"]
    assert got["kernel short h"] == got["kernel wrong s"]
    assert got["kernel short h"] == "ValueError: mingru kernel: arrays of inconsistent shapes"


def test_only_the_cpu_uses_the_kernel():
    _kernel_or_skip()
    assert scan_method("mingru", "cpu") == "native"
    # mps once said "native" (the test was != "cuda"), then failed in the kernel
    assert [scan_method("mingru", d) for d in ("mps", "xpu", "cuda")] == [
        "fused",
        "fused",
        "associative",
    ]


def _break_numba(monkeypatch):
    # numba missing, or one that does not import (it refuses a numpy newer than it knows)
    monkeypatch.setitem(sys.modules, "numba", None)
    monkeypatch.delitem(sys.modules, "rnngrad.mingru_kernel", raising=False)


def test_without_numba_it_falls_back_with_one_warning_and_the_reason(monkeypatch):
    _break_numba(monkeypatch)
    with pytest.warns(
        RuntimeWarning, match=r"not used \((ModuleNotFound|Import)Error.*torch implementation"
    ):
        assert native.kernels(torch.float32) is None
    assert native.why_unavailable(torch.float32).endswith("None in sys.modules")
    assert scan_method("mingru", "cpu") == "fused"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per process, whatever the dtype
        assert native.kernels(torch.float64) is None
        assert native.why_unavailable(torch.float64).endswith("None in sys.modules")
    with pytest.raises(RuntimeError, match="cannot run here .*numba"):
        mingru_scan_native(torch.zeros(2, 1, 4))


def test_disabled_by_the_environment_without_a_warning(monkeypatch):
    monkeypatch.setenv(native.DISABLE, "0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # asked for: no warning
        assert native.kernels(torch.float32) is None
    assert native.why_unavailable(torch.float32) == "RNNGRAD_NATIVE=0"


def test_a_kernel_that_fails_to_compile_or_gives_wrong_values_is_not_used(monkeypatch):
    _kernel_or_skip()
    from rnngrad import mingru_kernel

    def garbage(p, s, h, zero, one):
        h[...] = 7.0

    def uncompilable(*args):
        raise RuntimeError("Failed in nopython mode pipeline\nmore lines")

    monkeypatch.setattr(mingru_kernel, "forward", garbage)
    monkeypatch.setattr(native, "_loaded", {})
    with pytest.warns(RuntimeWarning, match="wrong values"):
        assert native.kernels(torch.float32) is None
    monkeypatch.setattr(mingru_kernel, "forward", uncompilable)
    assert native.kernels(torch.float64) is None  # warned already
    assert native.why_unavailable(torch.float64) == "RuntimeError: Failed in nopython mode pipeline"


@pytest.mark.parametrize("has_kernel", [True, False], ids=["numba", "none"])
def test_the_run_summary_says_why_and_what_compiled_it(tmp_path, monkeypatch, has_kernel):
    from rnngrad.models import VariantSpec
    from rnngrad.settings import RunSpec
    from rnngrad.train import train_run

    if has_kernel:
        _kernel_or_skip()
    else:
        _break_numba(monkeypatch)
    spec = RunSpec("adding", 6, "mingru", VariantSpec(cell="mingru", hidden_size=4), steps=2,
                   eval_every=1, eval_size=8, test_size=8, device="cpu")  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got = train_run(spec, tmp_path, probe=False, progress=False)
    if has_kernel:
        assert got["scan"] == "native" and got["scan_reason"] == ""
        assert got["native_compiler"].startswith("numba ") and "cpu " in got["native_compiler"]
    else:
        assert got["scan"] == "fused" and "numba" in got["scan_reason"]
        assert got["native_compiler"] == ""


WORKER = """
import hashlib, json, numpy as np
from rnngrad import mingru_kernel as k
T, B, H = 40, 3, 5
p = np.random.default_rng(0).standard_normal((T, B, 2 * H)).astype(np.float32)
s, h = 1 / (1 + np.exp(-p)), np.empty((T, B, H), np.float32)
zero, one = np.zeros((B, H), np.float32), np.ones(1, np.float32)
k.forward(p, s, h, zero, one)
k.backward(p, h, np.ones_like(h), zero.copy(), s, zero, one)
stats = k.forward.stats
print(json.dumps({"digest": hashlib.sha256(h.tobytes() + s.tobytes()).hexdigest(),
                  "hits": sum(stats.cache_hits.values()),
                  "misses": sum(stats.cache_misses.values())}))
"""


@pytest.mark.slow
def test_processes_started_at_once_share_one_cache_keyed_by_the_cpu(tmp_path):
    _kernel_or_skip()
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    procs = [_python(WORKER, env) for _ in range(3)]  # an empty cache, as on a fresh node
    first = [json.loads(_finish(p)) for p in procs]
    assert len({r["digest"] for r in first}) == 1  # all agree
    later = json.loads(_finish(_python(WORKER, env)))
    assert (later["hits"], later["misses"]) == (1, 0)  # loaded, not compiled again
    assert later["digest"] == first[0]["digest"]
    # another CPU (as a Cray cc targets one through the environment) finds no build for
    # itself in the same cache: it compiles its own instead of loading this CPU's
    other = json.loads(_finish(_python(WORKER, {**env, "NUMBA_CPU_NAME": "generic"})))
    assert (other["hits"], other["misses"]) == (0, 1)


LOADER = """
import json, torch, warnings
warnings.simplefilter("error")  # a fallback's warning fails the process
from rnngrad import native
found = native.kernels(torch.float32) is not None
from rnngrad import mingru_kernel as k
print(json.dumps({"found": found, "why": native.why_unavailable(),
                  "hits": sum(k.forward.stats.cache_hits.values())}))
"""


@pytest.mark.slow
def test_a_cache_file_that_does_not_load_is_rebuilt_once(tmp_path):
    _kernel_or_skip()
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    assert json.loads(_finish(_python(LOADER, env)))["found"]
    files = sorted((tmp_path / "numba").rglob("mingru_kernel.*"))
    assert any(f.suffix == ".nbi" for f in files) and any(f.suffix == ".nbc" for f in files)
    for f in files:  # a disk that lost them, a copy cut short
        f.write_bytes(b"\x80garbage" * 4)
    healed = json.loads(_finish(_python(LOADER, env)))
    assert healed == {"found": True, "why": "", "hits": 0}  # rebuilt, not refused
    assert json.loads(_finish(_python(LOADER, env)))["hits"] == 1  # and loaded thereafter
