"""``genunlearn demo``: digits, forget class 3 with the two fastest methods, against retrain.

Runs the ``demo`` suite (reduced training budgets so it fits in minutes on 2 CPU cores), prints
the leaderboard and writes the report with sample grids and the trade-off plot.
"""

from __future__ import annotations

from pathlib import Path


def run_demo(out: Path, progress: bool = True) -> dict:
    from genunlearn.bench.report import build_report, leaderboard, read_metrics
    from genunlearn.bench.runner import run_suite
    from genunlearn.bench.tasks import suite_tasks

    run_suite("demo", out, progress=progress)  # checks --out before any work
    report = build_report(out)
    rows = {}
    for task in suite_tasks("demo")[1]:
        task_dir = Path(out) / task.name
        rows = {cell: read_metrics(task_dir / cell) for cell in ("base", "retrain", *task.methods)}
        print(f"\n{task.name} (forget {task.forget}):\n")
        print(leaderboard(rows))
    print(f"\nreport: {report}")
    return rows
