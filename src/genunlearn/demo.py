"""``genunlearn demo``: digits, forget class 3 — base model vs the retrain gold standard."""

from __future__ import annotations

from pathlib import Path

import torch

from genunlearn.bench.figures import save_sample_grids
from genunlearn.bench.report import leaderboard, read_metrics
from genunlearn.checkpoint import atomic_write_text, write_json
from genunlearn.eval.evaluate import evaluate
from genunlearn.forget import parse_forget
from genunlearn.recipes import TrainJob, train_cached

TASK, KIND, FORGET = "digits", "flow", "classes=3"


def run_demo(out: Path, steps: int | None = None, progress: bool = True) -> dict:
    from genunlearn.eval.judge import load_judge

    request = parse_forget(FORGET)
    judge = load_judge(TASK, progress=progress)
    models = {
        "base": train_cached(TrainJob(TASK, KIND, steps=steps), progress=progress),
        "retrain": train_cached(TrainJob(TASK, KIND, forget=request, steps=steps), progress=progress),
    }
    rows, panels = {}, {}
    labels = torch.arange(10).repeat_interleave(8)
    for name, model in models.items():
        run = out / name
        model.save_pretrained(run / "model")
        metrics = evaluate(model, request, judge=judge)
        metrics["seconds"] = model.info["train_seconds"]
        write_json(run / "metrics.json", metrics)
        rows[name] = read_metrics(run)
        panels[name] = model.sample(len(labels), model.cond_for_labels(labels), generator=torch.Generator().manual_seed(0))
    grid = save_sample_grids(panels, rows=10, path=out / "samples.png", row_labels=[str(i) for i in range(10)])
    table = leaderboard(rows)
    accs = ", ".join(f"{k} {100 * v:.1f}%" for k, v in judge.test_accuracy.items())
    atomic_write_text(
        out / "report.md",
        f"# genunlearn demo: {TASK}, forget {FORGET}\n\n"
        f"Judge: a classifier trained on the digits training split; held-out accuracy {accs}.\n"
        "Forget rate: share of samples prompted with a forgotten class that the judge assigns to it.\n"
        "FD/KID: judge-feature distances of retained-class samples to held-out real retained images;\n"
        "the floor is the FD between two disjoint halves of the real data.\n\n"
        f"{table}\n\n![samples: one row per prompted class]({grid.name})\n",
    )
    print(table)
    print(f"\nreport: {out / 'report.md'}")
    return rows
