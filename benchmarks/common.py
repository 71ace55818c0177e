"""What every benchmark shares: the device, side-by-side timing, the machine, figures.

Machines are noisy (other jobs, frequency scaling), so every figure of the suite is a
ratio of two things timed side by side: the two are called in turn, the order rotated
each repeat, many short repeats. Interference from other work only ever adds time, so
each side's cost is its fastest repeat (as timeit does) and the figure is the ratio of
the two; the median of the per-repeat ratios is kept beside it. On a CPU at one torch
thread the clock is this thread's CPU time, which leaves out the time the scheduler
gave to other jobs. Absolute times are kept as context, beside the machine and its load.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TypeVar
from unittest import mock

import torch
import yaml

import rnngrad.train

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")
PROFILE = ROOT / "workflow" / "profiles" / "default" / "config.yaml"

__all__ = [
    "Figure",
    "alternate",
    "best_ratio",
    "clock",
    "device_of",
    "grid_parser",
    "interleave",
    "load",
    "machine",
    "median_ratio",
    "rule_threads",
    "seconds",
    "sync",
    "threads",
    "train_clock",
]


@dataclass
class Figure:
    """One figure of the suite: a value, its goal, and whether the goal is met.

    met is None when the figure has no goal (context) or was not measured.
    """

    section: str
    name: str
    value: float | str | None
    goal: str
    met: bool | None
    unit: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def device_of(name: str = "auto") -> torch.device:
    """auto: CUDA (cuDNN kernels) when torch sees a GPU, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    return torch.device(name)


def grid_parser(doc: str, cells: Sequence[str], lengths: Sequence[int]) -> argparse.ArgumentParser:
    """The command line of a benchmark over cells and lengths: the first line of its
    docstring, --cells, --lengths and --device (see device_of); it adds its own."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=list(cells))
    parser.add_argument("--lengths", nargs="+", type=int, default=list(lengths))
    parser.add_argument("--device", default="auto")
    return parser


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so a timer sees it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def clock(device: torch.device) -> Callable[[], float]:
    """The suite's clock: this thread's CPU time on a CPU at one torch thread, else wall.

    At one thread the work runs on this thread alone, and CPU time leaves out the time
    the scheduler gave to other jobs: on a loaded machine it is the far steadier measure
    of the work. On a GPU, or with several threads, only wall time tells the cost.
    """
    if device.type == "cpu" and torch.get_num_threads() == 1:
        return time.thread_time
    return time.perf_counter


def seconds(fn: Callable[[], object], device: torch.device, wall: bool = False) -> float:
    """Seconds fn() takes on the suite's clock (wall=True: always wall time)."""
    now = time.perf_counter if wall else clock(device)
    sync(device)
    start = now()
    fn()
    sync(device)
    return now() - start


def training_numerics(main: Callable[..., T]) -> Callable[..., T]:
    """Run a benchmark's entry point under train_run's CPU numerics (subnormals flushed
    to zero), so a bare loop, a bare step and train_run are timed alike."""

    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        with rnngrad.train.flush_denormals(torch.device("cpu")):
            return main(*args, **kwargs)

    return wrapped


@contextlib.contextmanager
def train_clock(device: torch.device) -> Iterator[None]:
    """train_run's own timer (wall_seconds, steps_per_second) read from the suite's clock."""
    with mock.patch.object(rnngrad.train, "time", SimpleNamespace(perf_counter=clock(device))):
        yield


def interleave(fns: dict[str, Callable[[], T]], repeats: int) -> dict[str, list[T]]:
    """Each function's results per repeat, the functions called in turn, order rotated.

    A change in machine load then hits every function alike; compare them per repeat.
    """
    names = list(fns)
    out: dict[str, list[T]] = {name: [] for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            out[name].append(fns[name]())
    return out


def alternate(
    fns: dict, repeats: int, device: torch.device, wall: bool = False
) -> dict[str, list[float]]:
    """Seconds of each function per repeat, timed side by side (see interleave)."""
    timed = {name: (lambda fn=fn: seconds(fn, device, wall)) for name, fn in fns.items()}
    return interleave(timed, repeats)


def median_ratio(num: list[float], den: list[float]) -> float:
    """Median over repeats of num[i] / den[i] (paired: timed side by side)."""
    return statistics.median(a / b for a, b in zip(num, den, strict=True))


def best_ratio(num: list[float], den: list[float]) -> float:
    """min(num) / min(den): each side's fastest repeat (noise only adds time)."""
    return min(num) / min(den)


class threads:
    """Context manager: torch intra-op threads set to n, restored afterwards."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __enter__(self) -> threads:
        self.previous = torch.get_num_threads()
        torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc) -> None:
        torch.set_num_threads(self.previous)


def rule_threads(rule: str = "train", profile: Path = PROFILE) -> int:
    """The threads the default profile gives a rule (set-threads), 1 when it sets none."""
    try:
        settings = yaml.safe_load(profile.read_text()) or {}
    except OSError:
        return 1
    return int((settings.get("set-threads") or {}).get(rule, 1))


def load() -> list[float]:
    """1, 5 and 15 minute load averages (what else the machine was doing)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: torch.device) -> dict:
    """The machine the figures came from: CPU, cores, torch, the device and CUDA."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cuda = (
        f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda}, "
        f"cuDNN {torch.backends.cudnn.version()})"
        if torch.cuda.is_available()
        else "not available here"
    )
    return {
        "cpu": _cpu_model(),
        "cores": cores,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cuda": cuda,
        "train_rule_threads": rule_threads("train"),
    }
