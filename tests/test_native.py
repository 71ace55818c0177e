"""rnngrad.native: C kernels compiled once per machine, cached, and refused cleanly.

Each test points the cache at its own directory and forgets what this process loaded.
"""

from __future__ import annotations

import stat
import warnings

import pytest

from rnngrad import native
from tests.ci import skip_unless_ci

KERNEL = "mingru_kernel"


@pytest.fixture(autouse=True)
def fresh(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(native.DISABLE, raising=False)
    monkeypatch.setattr(native, "_loaded", {})
    monkeypatch.setattr(native, "_why", {})
    return tmp_path / "cache" / "rnngrad"


def _compiler_or_skip():
    compiler = native._compiler()
    if compiler is None:
        skip_unless_ci("no C compiler here", "a C compiler must be found")
    return compiler


def _script(path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_compiles_once_and_later_processes_load_the_cached_library(fresh, monkeypatch):
    _compiler_or_skip()
    lib = native.load(KERNEL)
    assert lib is not None and native.why_unavailable(KERNEL) == ""
    assert hasattr(lib, "mingru_forward_f32") and hasattr(lib, "mingru_backward_f64")
    assert [p.suffix for p in fresh.iterdir()] == [".so"]  # no sources or temp dirs left

    def no_compiler(*args, **kwargs):
        raise AssertionError("compiled again")

    monkeypatch.setattr(native.subprocess, "run", no_compiler)
    monkeypatch.setattr(native, "_loaded", {})  # a new process, the same cache
    assert native.load(KERNEL) is not None


def test_the_cache_key_follows_the_source_and_the_compiler(tmp_path):
    compiler = _compiler_or_skip()
    key = native._key(b"int f(void);", compiler)
    assert key == native._key(b"int f(void);", compiler)
    assert key != native._key(b"int g(void);", compiler)
    other = _script(tmp_path / "cc", "exit 0")
    assert key != native._key(b"int f(void);", other)


def test_disabled_by_the_environment(monkeypatch):
    monkeypatch.setenv(native.DISABLE, "0")
    assert native.load(KERNEL) is None
    assert native.why_unavailable(KERNEL) == "RNNGRAD_NATIVE=0"


def test_without_a_compiler_it_says_which_it_looked_for(monkeypatch, fresh):
    monkeypatch.setenv("CC", "no-such-cc-anywhere")
    assert native.load(KERNEL) is None
    assert "no C compiler" in native.why_unavailable(KERNEL)
    assert "no-such-cc-anywhere" in native.why_unavailable(KERNEL)
    assert not fresh.exists()


def test_a_failing_compiler_warns_once_and_leaves_nothing_that_looks_built(
    monkeypatch, fresh, tmp_path
):
    # a compiler that writes half a library, then fails
    body = (
        'while [ "$1" != -o ]; do shift; done\nprintf half > "$2"\necho "fatal: boom" >&2\nexit 1'
    )
    cc = _script(tmp_path / "badcc", body)
    monkeypatch.setenv("CC", cc)
    with pytest.warns(RuntimeWarning, match="fatal: boom"):
        assert native.load(KERNEL) is None
    assert "badcc failed on mingru_kernel.c: fatal: boom" in native.why_unavailable(KERNEL)
    assert list(fresh.iterdir()) == []  # neither the half library nor its temp dir
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # remembered: no second warning, no second try
        assert native.load(KERNEL) is None


def test_a_source_that_does_not_compile_raises_with_the_compiler_message(fresh):
    compiler = _compiler_or_skip()
    with pytest.raises(OSError, match=r"failed on broken\.c: .*error"):
        native._build("broken", b"this is not C;\n", compiler)
    assert list(fresh.iterdir()) == []
