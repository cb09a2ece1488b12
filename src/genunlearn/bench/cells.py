"""How one benchmark cell is produced, per model family.

A family turns a task's cell (``base``, ``retrain`` or a method) into a ``CellResult``: the judged
metrics, the wall-clock cost and a writer for the cell folder. The runner around it owns keys,
resume, atomic writes and progress, so adding a family never touches those.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from genunlearn.bench.tasks import Task
from genunlearn.errors import GenUnlearnError
from genunlearn.forget import parse_forget

SAMPLE_SEED = 1234


@dataclass
class CellResult:
    metrics: dict
    seconds: float
    write: Callable[[Path], None]  # fills a (temporary) cell folder: model/ and, if any, samples.npz


class GenerativeCells:
    """Flow / diffusion models: base and retrain from the recipe cache, methods from the registry,
    all judged by ``eval.evaluate``."""

    def __init__(self, task: Task, scale: float, task_dir: Path, progress: bool):
        from genunlearn.data import load_dataset
        from genunlearn.eval.judge import load_judge

        self.task, self.progress = task, progress
        self.request = parse_forget(task.forget)
        self.data = load_dataset(task.dataset)
        self.data.split(self.request)
        self.judge = load_judge(task.dataset, progress=progress, verbose=False)
        self.base_job, self.retrain_job = _scaled_job(task, scale), _scaled_job(task, scale, self.request)
        self.base_key = self.base_job.key()
        self.scale = scale
        self._concept_ref = None

    def method(self, name: str, config: dict):
        from genunlearn.methods import get_method

        m = get_method(name, config)
        budget = max(1, int(m.config.steps * self.scale)) if hasattr(m.config, "steps") else None
        return m, budget

    def run(self, cell: str, method=None, budget=None) -> CellResult:
        from genunlearn.eval.evaluate import evaluate
        from genunlearn.recipes import train_cached

        if method is None:
            model = train_cached(self.base_job if cell == "base" else self.retrain_job, progress=self.progress)
            seconds = model.info["train_seconds"]
        else:
            base = train_cached(self.base_job, progress=self.progress)
            method.check(base, self.request)
            t0 = time.perf_counter()
            model = method.unlearn(base, self.request, self.data, budget=budget)
            seconds = time.perf_counter() - t0
        if self.request.kind == "concept":
            metrics = self._evaluate_concept(model)
        else:
            metrics = evaluate(model, self.request, n_per_prompt=self.task.n_per_prompt, judge=self.judge)

        def write(folder: Path) -> None:
            from genunlearn.sampling import write_npz

            model.save_pretrained(folder / "model")
            write_npz(folder / "samples.npz", grid_samples(model))

        return CellResult(metrics, seconds, write)

    def _evaluate_concept(self, model) -> dict:
        """Concept erasure: erased-concept rate, attribute preservation and collateral damage against
        base-model samples on the same prompts (the reference is drawn once per task)."""
        from genunlearn.eval.concept import concept_reference, evaluate_concept
        from genunlearn.recipes import train_cached

        if self._concept_ref is None:
            base = train_cached(self.base_job, progress=self.progress)
            self._concept_ref = concept_reference(base, self.request, self.judge, n_per_prompt=self.task.n_per_prompt)
        return evaluate_concept(model, self.request, self._concept_ref, self.judge)


class ClassifierCells:
    """Image classifiers (SalUn's classification setting): the original and retrain classifiers
    are trained by the classify recipe; methods are the classify package's plans; metrics are
    UA/RA/TA/MIA in % (the report's gap to retrain over them is SalUn's Avg. Gap)."""

    def __init__(self, task: Task, scale: float, task_dir: Path, progress: bool):
        from genunlearn.classify.model import Recipe, check_request, eval_splits
        from genunlearn.data import load_dataset
        from genunlearn.recipes import config_hash

        self.task, self.task_dir = task, task_dir
        self.request = parse_forget(task.forget)
        check_request(self.request)
        self.data = load_dataset(task.dataset)
        self.splits = eval_splits(self.data, load_dataset(task.dataset, "test"), self.request)
        self.recipe = Recipe(epochs=max(1, round(Recipe().epochs * scale)))
        self.base_key = config_hash({"classifier": task.dataset, "recipe": self.recipe.__dict__})

    def method(self, name: str, config: dict):
        from genunlearn.classify.unlearn import PLANS, UnlearnConfig
        from genunlearn.config import build_config

        if name not in PLANS:
            raise GenUnlearnError(f"unknown classifier method {name!r} in task {self.task.name}; expected one of {', '.join(PLANS)}")
        return build_config(UnlearnConfig, {**config, "method": name}), None

    def run(self, cell: str, method=None, budget=None) -> CellResult:
        from genunlearn.classify.model import load_classifier, save_classifier, train_classifier
        from genunlearn.classify.unlearn import unlearn_classifier
        from genunlearn.eval.classification import classification_metrics

        forget, retain, _ = self.splits
        if method is None:
            net, seconds = train_classifier(self.data if cell == "base" else retain, 0, self.recipe)
            info = {"task": self.task.dataset, "role": "original" if cell == "base" else "retrain", "seconds": seconds}
        else:
            net, info = load_classifier(self.task_dir / "base" / "model")
            net, run = unlearn_classifier(net, forget, retain, method, num_classes=self.data.num_classes, recipe=self.recipe)
            seconds, info = run["seconds"], {**info, "role": "unlearned", "unlearn": run}
        metrics = classification_metrics(net, *self.splits)
        return CellResult(metrics, seconds, lambda folder: save_classifier(folder / "model", net, info))


class I2ICells:
    """Image-to-image completion models through ``i2i.cell``: original and retrain from the I2I
    recipe cache, methods from the registry (``model_kinds = ("i2i",)``), judged by ``eval.i2i`` on
    held-out forget and retain images with the original model as the noise reference."""

    def __init__(self, task: Task, scale: float, task_dir: Path, progress: bool):
        from genunlearn.data import load_dataset
        from genunlearn.i2i.recipe import I2IJob, I2IRecipe

        self.task, self.progress, self.scale = task, progress, scale
        self.request = parse_forget(task.forget)
        load_dataset(task.dataset).split(self.request)
        self.steps = max(50, int(I2IRecipe().train["steps"] * scale))
        self.base_key = I2IJob(task.dataset, steps=self.steps).key()
        self._base = None

    def method(self, name: str, config: dict):
        method, budget = GenerativeCells.method(self, name, config)
        return (name, config), budget

    def run(self, cell: str, method=None, budget=None) -> CellResult:
        from genunlearn.i2i.cell import Base, run_cell

        if self._base is None:
            self._base = Base.load(self.task.dataset, self.request, steps=self.steps, progress=self.progress)
        name, config = method if method is not None else ({"base": "original"}.get(cell, cell), None)
        model, out = run_cell(self._base, name, self.request, config, budget=budget)
        seconds = self._base.original.info["train_seconds"] if cell == "base" else out["seconds"]

        def write(folder: Path) -> None:
            from genunlearn.sampling import write_npz

            model.save_pretrained(folder / "model")
            write_npz(folder / "samples.npz", completion_grid(model, self.request))

        return CellResult(flatten(out["metrics"]), seconds, write)


FAMILIES = {"flow": GenerativeCells, "diffusion": GenerativeCells, "classifier": ClassifierCells, "i2i": I2ICells}


def cells_for(task: Task, scale: float, task_dir: Path, progress: bool):
    if task.model not in FAMILIES:
        raise GenUnlearnError(f"task {task.name}: unknown model family {task.model!r}; expected one of {', '.join(FAMILIES)}")
    return FAMILIES[task.model](task, scale, task_dir, progress)


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


def flatten(nested: dict, prefix: str = "") -> dict:
    """``{"inpaint": {"forget": {"similarity": v}}}`` → ``{"inpaint_forget_similarity": v}``."""
    out = {}
    for k, v in nested.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}_"))
        else:
            out[f"{prefix}{k}"] = v
    return out


def completion_grid(model, request) -> dict:
    """Centre-inpainting completions of the first 8 held-out forget and 8 retain images."""
    from genunlearn.eval.i2i import held_out_splits
    from genunlearn.i2i.masks import task_mask
    from genunlearn.sampling import to_uint8_images

    splits = held_out_splits(model.info.get("task", model.data["name"]), request)
    x = torch.cat([splits["forget"].x[:8], splits["retain"].x[:8]])
    labels = torch.cat([splits["forget"].labels[:8], splits["retain"].labels[:8]])
    comp = model.complete(x, task_mask("inpaint", len(x), model.net.grid))
    return {"images": to_uint8_images(comp), "labels": labels.numpy()}


def _scaled_job(task: Task, scale: float, forget=None):
    from genunlearn.recipes import TrainJob, recipe_for

    steps = max(50, int(recipe_for(task.dataset, task.model).train["steps"] * scale))
    return TrainJob(task.dataset, task.model, forget=forget, steps=steps, overrides=dict(task.overrides))
