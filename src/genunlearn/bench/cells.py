"""How one benchmark cell is produced, for any model family.

A task's cells are ``base``, ``retrain`` and one per method; each becomes a ``CellResult``: the
judged metrics, the robustness probes' results (the family's ``probes`` at a small budget), the
cost and a writer for the cell folder. Everything family-specific goes through
the family protocol (``families/``); the runner around this owns keys, resume and atomic writes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from genunlearn.bench.tasks import Task
from genunlearn.distributed import is_main_process
from genunlearn.errors import GenUnlearnError
from genunlearn.forget.request import parse_forget


@dataclass
class CellResult:
    metrics: dict
    seconds: float
    write: Callable[[Path], None]  # fills a (temporary) cell folder: model/ and, if any, samples.npz


class TaskCells:
    """A task's base and retrain models (from the family's recipe cache), its methods (from the
    registry) and its evaluator (the family's judge, built once, the base model as reference)."""

    def __init__(self, task: Task, scale: float, progress: bool, probes: bool = True):
        from genunlearn.data import load_dataset
        from genunlearn.families import family_for_kind

        self.task, self.scale, self.progress, self.probes = task, scale, progress, probes
        self.family = family_for_kind(task.model)
        self.request = parse_forget(task.forget)
        self.data = load_dataset(task.dataset)
        self.data.split(self.request)  # a bad request fails before any training
        steps = self.family.bench_steps(task.dataset, task.model, scale)
        options = {"overrides": dict(task.overrides)} if task.overrides else {}
        self.jobs = {
            role: self.family.job(task.dataset, task.model, forget=forget, steps=steps, options=options)
            for role, forget in (("base", None), ("retrain", self.request))
        }
        self.base_key = self.jobs["base"].key()
        self._base = self._evaluate = self._retrain_relearn = None

    def method(self, name: str, config: dict):
        """(method, budget): ``config`` over the defaults picked for the base model's kind, as a user's
        ``genunlearn unlearn`` gets them; the budget is the method's steps scaled like the recipes."""
        from genunlearn.methods import get_method

        m = get_method(name, config, family=self.family.name, model=self.base())
        budget = max(1, int(m.config.steps * self.scale)) if hasattr(m.config, "steps") else None
        return m, budget

    def base(self):
        if self._base is None:
            self._base = self.family.train(self.jobs["base"], progress=self.progress)
        return self._base

    def run(self, cell: str, method=None, budget=None) -> CellResult:
        if method is None:
            model = self.base() if cell == "base" else self.family.train(self.jobs[cell], progress=self.progress)
            seconds = model.info["train_seconds"]
        else:
            base = self.base()
            method.check(base, self.request)
            t0 = time.perf_counter()
            model = method.unlearn(base, self.request, base.in_model_space(self.data), budget=budget)
            seconds = time.perf_counter() - t0
        if not is_main_process():  # other ranks train with the main one; it alone judges and writes
            return CellResult({}, seconds, lambda folder: None)
        if self._evaluate is None:
            self._evaluate = self.family.evaluator(
                self.task.dataset,
                self.request,
                reference=self.base(),
                n_per_prompt=self.task.n_per_prompt,
                progress=self.progress,
            )
        metrics = {
            **self._evaluate(model),
            "family": self.family.name,
            **(self.robustness(cell, model) if self.probes else {}),
        }
        preview = self.family.preview(model, self.request)
        if preview is not None:
            preview = {**preview, **self.legend(model)}

        def write(folder: Path) -> None:
            from genunlearn.io.samples import write_npz

            model.save_pretrained(folder / "model")
            if preview is not None:
                write_npz(folder / "samples.npz", preview)

        return CellResult(metrics, seconds, write)

    def legend(self, model) -> dict:
        """For the report's labelled grids: the first attribute's class names and which of its
        ids the request forgets (none for energy and sample requests)."""
        import numpy as np

        from genunlearn.eval.probes.common import forget_values

        if not getattr(model, "attributes", None):
            return {}
        attr, ids = forget_values(model, self.request) if self.request.kind in ("classes", "concept") else (0, [])
        return {
            "class_names": np.array(model.attributes[0].values, dtype=str),
            "forget_ids": np.array(ids if attr == 0 else [], dtype=np.int64),
        }

    def robustness(self, cell: str, model) -> dict:
        """The family's probes on ``model``: ``attack_asr`` (the attack's success rate),
        ``relearn_auc`` and ``relearn_ratio`` (its relearning AUC over the retrain model's), and
        ``probes`` with each probe's full result (curves, baselines, seconds), or why it was skipped."""
        import time

        from genunlearn.eval.probes import run_probe

        out, details = {}, {}
        for name, options in self.family.probes(model, self.request, n=self.task.n_per_prompt).items():
            t0 = time.perf_counter()
            try:
                result = run_probe(name, model, self.request, config=options)
            except (
                GenUnlearnError
            ) as e:  # a model the probe cannot read (e.g. no embedding table to attack): said, not fatal
                details[name] = {"skipped": str(e)}
                continue
            result.pop("arrays", None)
            details[name] = {**result, "wall_seconds": round(time.perf_counter() - t0, 2)}
            if name == "relearn":
                if cell == "retrain":
                    self._retrain_relearn = result["model"]
                elif self._retrain_relearn is None:
                    retrain = self.family.train(self.jobs["retrain"], progress=self.progress)
                    self._retrain_relearn = run_probe(name, retrain, self.request, config=options)["model"]
                out["relearn_auc"] = result["model"]["auc"]
                out["relearn_ratio"] = result["model"]["auc"] / max(
                    self._retrain_relearn["auc"], 1 / result["model"]["n"]
                )
            else:
                out["attack_asr"] = result["asr_attack"]
        return {**out, "probes": details} if details else {}
