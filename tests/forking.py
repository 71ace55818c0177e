"""Run a command-line `main` in a forked child: the parent imports the heavy modules once.

The driver scripts of test_bad_config and test_kill_resume run in a fresh interpreter
(`python -c`, with the repository on sys.path), import what the command imports, then fork
one child per command line, so each child starts warm and shares nothing else.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def driver_argv(script: str, *args: str) -> list[str]:
    """The command line that runs a driver script in a fresh interpreter that can import tests."""
    prelude = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
    return [sys.executable, "-c", prelude + script, *args]


def run_forked(
    main: Callable[[Sequence[str]], int | None],
    argv: Sequence[str],
    log: str,
    prepare: Callable[[], None] | None = None,
) -> int:
    """Run `prepare()` then `main(argv)` in a child with stdout and stderr to `log`.

    Returns the child's exit code: main's return value, the code of a SystemExit, 1 for
    any other exception (its traceback goes to `log`), or -N when signal N killed it.
    """
    pid = os.fork()
    if pid == 0:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        code = 1
        try:
            if prepare is not None:
                prepare()
            returned = main(list(argv))
            code = returned if isinstance(returned, int) else 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        except BaseException:  # noqa: BLE001 - the child reports everything, then exits
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
