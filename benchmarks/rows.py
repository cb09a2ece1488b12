"""Benchmark rows cached by key in one JSON file: a rerun resumes, partial results survive a kill."""

from __future__ import annotations

import json
import os
from pathlib import Path


def _plain(value):
    """numpy / torch scalars as Python numbers; anything else as its string."""
    return value.item() if hasattr(value, "item") else str(value)


class Rows:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.rows = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def get(self, key: str, compute):
        """The row stored under ``key``, computing and saving it (atomically) the first time."""
        if key not in self.rows:
            self.rows[key] = compute()
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.rows, indent=1, default=_plain))
            os.replace(tmp, self.path)
        return self.rows[key]
