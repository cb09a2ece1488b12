"""``genunlearn demo``: digits, forget class 3 with the two fastest methods, against retrain.

Runs the ``demo`` suite: the base and retrain-without-3 models are the full recipe's, so on a
fresh install they come from the released models shipped with the package (sha256-checked), at
full quality; the methods get short budgets so that everything fits in about 90 s on 2 CPU cores
(``benchmarks/demo_time.py``). Prints the leaderboard and where the report is.
"""

from __future__ import annotations

from pathlib import Path


def run_demo(out: Path, progress: bool = True) -> dict:
    """Run (or resume) the demo suite under ``out``; print the leaderboard and the report's path.
    Returns the last task's metrics per cell."""
    from genunlearn.bench.report import build_report, leaderboard, read_metrics
    from genunlearn.bench.runner import check_runs_folder, run_suite
    from genunlearn.bench.tasks import suite_tasks
    from genunlearn.progress import stage

    _, tasks = suite_tasks("demo")
    check_runs_folder(out, tasks)  # bad --out: one line before anything is said or done
    for task in tasks:
        stage(
            f"demo: {task.name}: base and retrain ({task.forget}) models, then {', '.join(task.methods)}",
            "each judged on samples of every class",
        )
    run_suite("demo", out, progress=progress)
    report = build_report(out)
    rows = {}
    for task in tasks:
        task_dir = Path(out) / task.name
        rows = {cell: read_metrics(task_dir / cell) for cell in ("base", "retrain", *task.methods)}
        print(f"\n{task.name} (forget {task.forget}):\n")
        print(leaderboard(rows))
    print(
        f"\nreport: {report}"
        + (f" (and {report.with_suffix('.html')})" if report.with_suffix(".html").is_file() else "")
    )
    return rows
