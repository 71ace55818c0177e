"""Atomic file writes: nothing half-written ever carries a final name.

Every file rnngrad writes goes to a temporary name in the same folder and is
renamed into place, so a killed job leaves either the old file, no file, or a
stray `.tmp-*` that no reader looks at.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import resource
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_path",
    "discard_temporaries",
    "log_to",
    "write_cpu_usage",
    "write_json",
    "write_parquet",
    "write_text",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by their owner only; a result file gets the mode any
# other new file would get (0o644 under the usual umask), read once at import.
_FILE_MODE = 0o666 & ~_umask()


def _temp_prefix(path: Path) -> str:
    return f".tmp-{path.stem}-"


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it to `path`.

    The suffix is kept so writers that look at it (matplotlib, pyarrow) still work.
    The data is flushed to disk before the rename, so even a crash of the machine
    leaves the old file or the new one under the final name, never a mix.

    Example:
        >>> with atomic_path("out/fig.png") as tmp:  # doctest: +SKIP
        ...     fig.savefig(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        tmp.chmod(_FILE_MODE)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def discard_temporaries(path: str | Path) -> list[Path]:
    """Remove the temporaries a killed writer of `path` left beside it; return them.

    Only for a file that no other process is writing now (a run's own files).
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = f"{glob.escape(_temp_prefix(path))}*{glob.escape(path.suffix)}"
    stale = sorted(path.parent.glob(pattern))
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n")


def write_cpu_usage(path: str | Path) -> None:
    """The job's own CPU seconds (this process and its children) as {"cpu_seconds": x}.

    Snakemake's benchmark file samples a job's CPU time and misses its tail, so each job
    counts its own with getrusage (rnngrad.aggregate reads it beside the benchmark file).
    """
    cpu = sum(
        r.ru_utime + r.ru_stime
        for r in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    )
    write_json(path, {"cpu_seconds": cpu})


def write_parquet(path: str | Path, df) -> None:
    """Write a DataFrame as parquet (no index), atomically."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


@contextlib.contextmanager
def log_to(path: str | Path) -> Iterator[None]:
    """Send stderr and logging to a job's log file (the workflow scripts use this)."""
    import logging
    import sys

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh, contextlib.redirect_stderr(fh):
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            yield
        except BaseException:
            import traceback

            traceback.print_exc(file=fh)
            raise
        finally:
            root.removeHandler(handler)
            sys.stderr.flush()
