"""Run a suite: base and retrain models (cached), every method, all judged the same way.

Each cell writes ``<out>/<task>/<cell>/{model/, metrics.json, samples.npz, log.jsonl}`` in one
atomic rename, keyed by a config hash: a rerun skips finished cells, and an interrupted cell
leaves nothing behind and reruns cleanly.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch

from genunlearn.bench.tasks import Task, suite_tasks
from genunlearn.checkpoint import atomic_dir, write_json
from genunlearn.recipes import TrainJob, config_hash, recipe_for, train_cached

SAMPLE_SEED = 1234


def cell_key(task: Task, cell: str, base_key: str, config: dict, budget: int | None) -> str:
    return config_hash({"task": task.name, "cell": cell, "base": base_key, "config": config, "budget": budget, "n": task.n_per_prompt})


def finished(folder: Path, key: str) -> bool:
    path = folder / "metrics.json"
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("key") == key
    except json.JSONDecodeError:
        return False


def grid_samples(model) -> dict:
    """Fixed-seed samples shown in the report: 8 per class for conditional models, 2,000 points for 2D."""
    from genunlearn.sampling import to_uint8_images

    g = torch.Generator().manual_seed(SAMPLE_SEED)
    if model.data["kind"] == "points":
        return {"samples": model.sample(2000, generator=g).numpy(), "labels": -torch.ones(2000, dtype=torch.long).numpy()}
    k = len(model.attributes[0].values)
    labels = torch.arange(k).repeat_interleave(8)
    cond = model.cond_for_labels(labels)
    x = model.sample(len(labels), cond, generator=g)
    return {"images": to_uint8_images(x), "labels": (labels if cond is not None else -torch.ones_like(labels)).numpy()}


def write_cell(folder: Path, model, metrics: dict) -> None:
    from genunlearn.sampling import write_npz

    for stale in folder.parent.glob(f".{folder.name}.tmp-*"):  # left by an interrupted run
        shutil.rmtree(stale, ignore_errors=True)
    with atomic_dir(folder) as tmp:
        model.save_pretrained(tmp / "model")
        write_npz(tmp / "samples.npz", grid_samples(model))
        write_json(tmp / "metrics.json", metrics)
        (tmp / "log.jsonl").write_text(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}) + "\n")


def _scaled_job(task: Task, scale: float, forget=None) -> TrainJob:
    steps = max(50, int(recipe_for(task.dataset, task.model).train["steps"] * scale))
    return TrainJob(task.dataset, task.model, forget=forget, steps=steps, overrides=dict(task.overrides))


def run_suite(suite: str, out: str | Path, *, progress: bool = True, log=print) -> list[dict]:
    """Run (or resume) every cell of ``suite`` under ``out``; returns one summary row per cell."""
    from tqdm.auto import tqdm

    from genunlearn.data import load_dataset
    from genunlearn.eval.evaluate import evaluate
    from genunlearn.eval.judge import load_judge
    from genunlearn.forget import parse_forget
    from genunlearn.generative import GenerativeModel
    from genunlearn.methods import get_method

    scale, tasks = suite_tasks(suite)
    out = Path(out)
    total = sum(2 + len(t.methods) for t in tasks)
    bar = tqdm(total=total, desc=f"suite {suite}", disable=None if progress else True, dynamic_ncols=True)
    rows = []
    for task in tasks:
        request = parse_forget(task.forget)
        data = load_dataset(task.dataset)
        data.split(request)
        judge = load_judge(task.dataset, progress=progress, verbose=False)
        base_job, retrain_job = _scaled_job(task, scale), _scaled_job(task, scale, request)
        retrain_seconds = None
        cells = [("base", None, {}), ("retrain", None, {})] + [(m, m, task.method_config.get(m, {})) for m in task.methods]
        for cell, method_name, config in cells:
            folder = out / task.name / cell
            method = get_method(method_name, config) if method_name else None
            budget = None
            if method is not None and hasattr(method.config, "steps"):
                budget = max(1, int(method.config.steps * scale))
            key = cell_key(task, cell, base_job.key(), config, budget)
            if finished(folder, key):
                metrics = json.loads((folder / "metrics.json").read_text())
                log(f"[{task.name}] {cell}: done already (skipped)")
            else:
                if cell == "base":
                    model = train_cached(base_job, progress=progress)
                    seconds = model.info["train_seconds"]
                elif cell == "retrain":
                    model = train_cached(retrain_job, progress=progress)
                    seconds = model.info["train_seconds"]
                else:
                    train_cached(base_job, progress=progress)
                    base = GenerativeModel.from_pretrained(_cache_folder(base_job))
                    method.check(base, request)
                    t0 = time.perf_counter()
                    model = method.unlearn(base, request, data, budget=budget)
                    seconds = time.perf_counter() - t0
                metrics = evaluate(model, request, n_per_prompt=task.n_per_prompt, judge=judge)
                metrics.update({"key": key, "task": task.name, "cell": cell, "seconds": seconds, "forget": task.forget, "suite": suite})
                write_cell(folder, model, metrics)
                log(f"[{task.name}] {cell}: {_summary(metrics)}")
            if cell == "retrain":
                retrain_seconds = metrics["seconds"]
            rows.append({**{k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}, "time_ratio": metrics["seconds"] / retrain_seconds if retrain_seconds else None})
            bar.update(1)
    bar.close()
    return rows


def _cache_folder(job: TrainJob) -> Path:
    from genunlearn.recipes import cache_root

    return cache_root() / "models" / job.key()


def _summary(m: dict) -> str:
    keys = ("forget_rate", "forget_mass", "retain_accuracy", "fd_retain", "mmd_retain", "off_support", "seconds")
    return ", ".join(f"{k} {m[k]:.4g}" for k in keys if isinstance(m.get(k), (int, float)))
