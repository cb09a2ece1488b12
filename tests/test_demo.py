"""The README's main command on a tiny budget: every cell judged, leaderboard printed, report written."""

import json

from genunlearn.bench import tasks
from genunlearn.demo import run_demo


def test_demo_writes_report(tmp_path, monkeypatch, capsys):
    demo = tasks.SUITES["demo"]
    task = demo["tasks"][0]
    # the demo's own base and retrain models (released: loaded, not trained); the methods run 3 steps
    tiny = tasks.Task(
        task.name,
        task.dataset,
        task.model,
        task.forget,
        task.methods,
        method_config={"continualflow": {"pool": 200, "batch": 64, "steps": 3}, "finetune": {"batch": 64, "steps": 3}},
        n_per_prompt=5,
    )
    monkeypatch.setitem(tasks.SUITES, "demo", {**demo, "tasks": (tiny,)})
    rows = run_demo(tmp_path, progress=False)
    assert list(rows) == ["base", "retrain", "finetune", "continualflow"]
    printed = capsys.readouterr().out
    assert "| retrain |" in printed and "| continualflow |" in printed and "report.md" in printed
    report = (tmp_path / "report.md").read_text()
    assert "## digits-flow-forget3" in report and "digits-flow-forget3-samples.png" in report
    assert (tmp_path / "digits-flow-forget3-samples.png").stat().st_size > 1000
    base = json.loads((tmp_path / task.name / "base" / "model" / "config.json").read_text())["info"]
    retrain = json.loads((tmp_path / task.name / "retrain" / "model" / "config.json").read_text())["info"]
    assert base["forget"] is None and retrain["forget"] == "classes=3" and base["key"] != retrain["key"]
    assert base["steps"] == retrain["steps"] == 4000  # the full recipe: the released models
    for cell in rows:
        assert 0 <= rows[cell]["forgotten_class_still_drawn"] <= 1


def test_demo_starts_from_released_models():
    """The demo's base and retrain jobs are the full recipe's, so a fresh install loads them (sha256-checked) instead of training."""
    from genunlearn.io import released
    from genunlearn.bench.cells import TaskCells

    scale, (task,) = tasks.suite_tasks("demo")
    cells = TaskCells(task, scale, progress=False)
    for role, job in cells.jobs.items():
        assert released.lookup("models", job.key()) is not None, role
