"""Whether a file rnngrad wrote reads back whole (shared by the kill tests and their driver)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch


def read_error(path: Path) -> str | None:
    """The error reading `path` back by its suffix (parquet, json, pt); None when it reads."""
    try:
        if path.suffix == ".parquet":
            pd.read_parquet(path)
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".pt":
            torch.load(path, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure to read back is the finding
        return str(err)
    return None
