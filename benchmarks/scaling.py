"""Cost as the data grow: retraining against unlearning, on digits grown 1×, 4×, 16× (augmented
copies: ±1 px shifts and rotations up to ±10°) and ring8 at 5k, 50k and 500k points.

Every method claims that unlearning cost does not grow with the data while retraining does. What
"retraining" costs depends on how it is budgeted, so both conventions are measured:

- **epochs** (the usual one): retraining keeps the recipe's passes over the data, so its steps grow
  with the data (digits: 4,000 steps on 1,347 images; ring8: 3,000 steps of 512 on 20,000 points);
- **steps**: retraining keeps the recipe's step count whatever the data size (cost flat); its quality
  says whether the larger data needed the longer run at all.

The base model of each size is trained on that size's data at the recipe's step count (what a user
holds); each unlearning method runs at its default budget on that base with that size's data. Runs
longer than ``--max-steps`` are not run: their time is extrapolated from the measured time per step
and marked ``*``. Times are CPU seconds of the one-thread process (``OMP_NUM_THREADS=1``), which other
jobs on the machine do not inflate as they do wall-clock time. Everything is judged on the task's held-out test split. Rows are cached in
``--out/rows.json`` (a rerun resumes); the plot goes to ``--out/scaling.png``.

    OMP_NUM_THREADS=1 python benchmarks/scaling.py            # full (long: see the README's figure)
    OMP_NUM_THREADS=1 python benchmarks/scaling.py --quick    # smoke run, numbers meaningless
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import torch

from genunlearn.data import load_dataset
from genunlearn.data.toy2d import TOYS
from genunlearn.eval.evaluate import evaluate
from genunlearn.forget.request import ForgetRequest
from genunlearn.methods import get_method
from genunlearn.generative.recipes import TrainJob, recipe_for, train_generative
from common import Rows  # benchmarks/common.py (the script's folder is on the path)

TASKS = {  # task → (sizes, forget request, methods)
    "digits": ((1, 4, 16), ForgetRequest.of_classes(3), ("finetune", "continualflow")),
    "ring8": ((5_000, 50_000, 500_000), ForgetRequest.of_classes(0), ("finetune", "continualflow")),
}


def grown_digits(factor: int, seed: int = 0):
    """The digits training split and ``factor − 1`` augmented copies (seeded shifts of ±1 px and
    rotations up to ±10°, background kept at −1)."""
    base = load_dataset("digits")
    if factor == 1:
        return base
    g = torch.Generator().manual_seed(seed)
    copies = [base.x]
    for _ in range(factor - 1):
        n = len(base)
        angle = (torch.rand(n, generator=g) * 2 - 1) * math.radians(10)
        shift = torch.randint(-1, 2, (n, 2), generator=g).float() * (2 / 8)  # one pixel in [-1, 1] coordinates
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = (
            angle.cos(),
            -angle.sin(),
            angle.sin(),
            angle.cos(),
        )
        theta[:, :, 2] = shift
        grid = torch.nn.functional.affine_grid(theta, list(base.x.shape), align_corners=False)
        copies.append(
            torch.nn.functional.grid_sample(base.x + 1, grid, align_corners=False) - 1
        )  # zero padding = background
    x = torch.cat(copies)
    return type(base)(base.name, x, base.labels.repeat(factor), base.attributes)


def grown_points(task: str, n: int, seed: int = 0):
    """``n`` fresh training points from the 2D task's distribution (seeded apart from its splits)."""
    ref = load_dataset(task)
    x, y = TOYS[task].sample(n, torch.Generator().manual_seed(10_000 + seed))
    return type(ref)(ref.name, x, y, ref.attributes, regions=ref.regions)


def grown(task: str, size: int):
    return grown_digits(size) if task == "digits" else grown_points(task, size)


def quality(task: str, model, request) -> dict:
    m = evaluate(model, request, n_per_prompt=50 if task == "digits" else 100, seed=0)
    if task == "digits":
        return {"forget": m["forgotten_class_still_drawn"], "fd_ratio": m["fd_ratio_to_floor"]}
    return {"forget": m["forget_mass"], "mmd": m["mmd_retain"]}


def cpu_timed(fn):
    """(result, CPU seconds of this process): with one thread, robust to other jobs on the machine,
    which wall-clock time is not."""
    t0 = time.process_time()
    out = fn()
    return out, time.process_time() - t0


def timed_training(task: str, request, data, steps: int, max_steps: int) -> tuple[float, bool, object]:
    """CPU seconds to retrain on ``data``'s retain split for ``steps`` steps (measured up to
    ``max_steps``, else extrapolated from a ``max_steps`` run's seconds per step), whether it was
    extrapolated, and the model."""
    run = min(steps, max_steps)
    model, seconds = cpu_timed(
        lambda: train_generative(TrainJob(task, "flow", forget=request, steps=run), data=data, progress=False)
    )
    return seconds * steps / run, run < steps, model


def measure(task: str, size: int, max_steps: int, methods, quick: bool) -> list[dict]:
    _, request, _ = TASKS[task]
    data = grown(task, size)
    recipe_steps = recipe_for(task, "flow").train["steps"]
    ref_n = len(load_dataset(task))
    epoch_steps = max(1, round(recipe_steps * len(data) / ref_n))
    if quick:
        recipe_steps, epoch_steps = 30, max(30, epoch_steps // 100)
    rows = []
    base, seconds = cpu_timed(
        lambda: train_generative(TrainJob(task, "flow", steps=recipe_steps), data=data, progress=False)
    )
    rows.append({"row": "base", "steps": recipe_steps, "seconds": seconds, **quality(task, base, request)})
    for convention, steps in (("retrain (epochs)", epoch_steps), ("retrain (steps)", recipe_steps)):
        seconds, extrapolated, model = timed_training(task, request, data, steps, max_steps)
        row = {"row": convention, "steps": steps, "seconds": seconds, "extrapolated": extrapolated}
        if not extrapolated:
            row |= quality(task, model, request)
        rows.append(row)
    for name in methods:
        method = get_method(name, {"steps": 30} if quick else None, family="generative")
        model, seconds = cpu_timed(lambda: method.unlearn(base, request, base.in_model_space(data)))
        rows.append(
            {"row": name, "steps": model.info["unlearn"]["steps"], "seconds": seconds, **quality(task, model, request)}
        )
    n = len(data)
    return [{"task": task, "size": size, "n": n, **r} for r in rows]


def table(rows: list[dict]) -> str:
    lines = [
        "| task | size | n | row | steps | CPU s | × retrain (epochs) | forget | FD/floor or MMD |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ref = next(
            x for x in rows if x["task"] == r["task"] and x["size"] == r["size"] and x["row"] == "retrain (epochs)"
        )
        mark = "*" if r.get("extrapolated") else ""
        q = f"{r['fd_ratio']:.2f}" if "fd_ratio" in r else (f"{r['mmd']:.2e}" if "mmd" in r else "—")
        forget = f"{100 * r['forget']:.1f}%" if "forget" in r else "—"
        lines.append(
            f"| {r['task']} | {r['size']} | {r['n']} | {r['row']} | {r['steps']} | {r['seconds']:.1f}{mark} | {r['seconds'] / ref['seconds']:.3f} | {forget} | {q} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, len(TASKS), figsize=(5 * len(TASKS), 3.8))
    for ax, task in zip(axes, TASKS):
        mine = [r for r in rows if r["task"] == task]
        for name in sorted({r["row"] for r in mine} - {"base"}):
            pts = sorted((r["n"], r["seconds"], bool(r.get("extrapolated"))) for r in mine if r["row"] == name)
            (line,) = ax.plot([p[0] for p in pts], [p[1] for p in pts], label=name)
            for n, sec, extrapolated in pts:  # extrapolated points hollow
                ax.plot(
                    n, sec, "o", color=line.get_color(), markerfacecolor="white" if extrapolated else line.get_color()
                )
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="training examples",
            ylabel="CPU seconds (one thread)",
            title=f"{task} (hollow: extrapolated)",
        )
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/scaling")
    ap.add_argument("--tasks", default=",".join(TASKS), help="comma-separated: " + ", ".join(TASKS))
    ap.add_argument(
        "--max-steps", type=int, default=20_000, help="longer trainings are extrapolated from one of this many steps"
    )
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise SystemExit(f"unknown task(s) {', '.join(unknown)}: expected some of {', '.join(TASKS)}")
    out = Path(args.out) / ("quick" if args.quick else "full")
    out.mkdir(parents=True, exist_ok=True)
    done = Rows(out / "rows.json")
    for task in tasks:
        sizes, _, methods = TASKS[task]
        for size in sizes[:2] if args.quick else sizes:
            key = f"{task}/{size}"
            done.get(key, lambda: measure(task, size, args.max_steps, methods, args.quick))
            print(f"{key} done", flush=True)
    rows = [r for key in done.rows for r in done.rows[key] if r["task"] in tasks]
    print(table(rows))
    plot(rows, out / "scaling.png")
    print(f"plot: {out / 'scaling.png'}  (* = extrapolated from a {args.max_steps}-step run's seconds per step)")


if __name__ == "__main__":
    main()
