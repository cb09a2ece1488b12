"""What every benchmark script shares: the row cache, mean ± sample standard deviation over seeds,
the rule that picks a setting on validation, and the record of the picks (the methods' defaults).

Scripts import it as ``from common import ...`` (Python puts the script's folder on the path).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path


def _plain(value):
    """numpy / torch scalars as Python numbers; anything else as its string."""
    return value.item() if hasattr(value, "item") else str(value)


class Rows:
    """Benchmark rows cached by key in one JSON file: a rerun resumes, partial results survive a
    kill. Rows written under old metric names are read under the current ones."""

    def __init__(self, path: Path):
        from genunlearn.eval.renamed import current_names

        self.path = Path(path)
        self.rows = current_names(json.loads(self.path.read_text())) if self.path.is_file() else {}

    def get(self, key: str, compute):
        """The row stored under ``key``, computing and saving it (atomically) the first time."""
        if key not in self.rows:
            self.rows[key] = compute()
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.rows, indent=1, default=_plain))
            os.replace(tmp, self.path)
        return self.rows[key]


def mean_sd(values) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof = 1) of ``values``; the deviation is None for one
    value (a single seed says nothing about the spread)."""
    v = [float(x) for x in values]
    if not v:
        raise ValueError("mean_sd of no values")
    mean = math.fsum(v) / len(v)
    if len(v) == 1:
        return mean, None
    return mean, math.sqrt(math.fsum((x - mean) ** 2 for x in v) / (len(v) - 1))


def fmt_mean_sd(values, spec: str = ".2f", missing: str = "—") -> str:
    """``"mean ± sd"`` of the values that are not None (sample SD), ``"mean"`` for one value,
    ``missing`` for none."""
    v = [x for x in values if x is not None]
    if not v:
        return missing
    mean, sd = mean_sd(v)
    return f"{mean:{spec}}" if sd is None else f"{mean:{spec}} ± {sd:{spec}}"


def pick_setting(candidates, score, constraints=(), fallback=None):
    """The setting to report, chosen on validation: the candidate with the lowest ``score`` among
    those meeting every constraint; while none does, the last constraint is dropped; with none
    left, the lowest ``fallback`` (default: ``score``) over all candidates. Ties go to the first."""
    candidates = list(candidates)
    for kept in range(len(constraints), 0, -1):
        ok = [c for c in candidates if all(meets(c) for meets in constraints[:kept])]
        if ok:
            return min(ok, key=score)
    return min(candidates, key=fallback or score)


PICKS = Path(__file__).parents[1] / "src" / "genunlearn" / "methods" / "picks.json"


def record_pick(kind: str, method: str, setting: dict, by: str) -> None:
    """Record ``setting``, picked on validation by the benchmark ``by``, as method ``method``'s defaults
    for models of ``kind`` (what ``genunlearn unlearn`` then uses with no options); written atomically."""
    from genunlearn.io.weights import atomic_write_text

    record = json.loads(PICKS.read_text()) if PICKS.is_file() else {}
    record.setdefault(kind, {})[method] = {"by": by, "setting": setting}
    atomic_write_text(PICKS, json.dumps(record, indent=1, sort_keys=True) + "\n")
