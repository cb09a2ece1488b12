"""Markdown tables read from run folders' ``metrics.json`` (numbers are never retyped)."""

from __future__ import annotations

import json
from pathlib import Path

COLUMNS = [
    ("forget_rate", "forget rate ↓", "{:.1%}"),
    ("retain_accuracy", "retain acc ↑", "{:.1%}"),
    ("fd_retain", "FD retain ↓", "{:.2f}"),
    ("fd_floor", "FD floor", "{:.2f}"),
    ("kid_retain", "KID retain ↓", "{:.3f}"),
    ("forget_mass", "forget mass ↓", "{:.3f}"),
    ("off_support", "off-support ↓", "{:.3f}"),
    ("mmd_retain", "MMD retain ↓", "{:.4f}"),
    ("seconds", "time (s)", "{:.1f}"),
]


def read_metrics(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def leaderboard(rows: dict[str, dict]) -> str:
    """A markdown table: one row per model, only the columns some row has."""
    cols = [c for c in COLUMNS if any(c[0] in r for r in rows.values())]
    head = "| model | " + " | ".join(c[1] for c in cols) + " |"
    sep = "|---|" + "---|" * len(cols)
    body = []
    for name, r in rows.items():
        cells = [c[2].format(r[c[0]]) if isinstance(r.get(c[0]), (int, float)) else "–" for c in cols]
        body.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join([head, sep, *body])
