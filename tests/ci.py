"""Tests that need a tool this machine may lack: skipped with the reason, except in CI.

CI (CI=true) installs Quarto, starts a one-node Slurm and has a C compiler, so there a
missing tool is a failure: a skip would hide the path it guards.
"""

from __future__ import annotations

import os

import pytest


def skip_unless_ci(reason: str, what: str) -> None:
    """Skip the test for `reason`; under CI=true fail it, saying that `what` must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true, so {what}: {reason}", pytrace=False)
    pytest.skip(reason)
