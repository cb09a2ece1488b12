"""One benchmark cell: reload (or train) the original and retrain models, run a method, evaluate.

``run_cell`` is what a benchmark suite calls; it returns the model and a JSON-able metrics dict
(``evaluate_i2i``'s per-task metrics plus run time and time relative to retraining). The original
model is always the S_noise reference.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from genunlearn.forget import ForgetRequest

ROWS = ("original", "retrain")  # cells that run no unlearning method


@dataclass
class Base:
    """The original model, the retrain gold standard and the judge, shared by a task's cells."""

    original: object
    retrain: object
    judge: object

    @classmethod
    def load(cls, task: str, request: ForgetRequest, *, steps: int | None = None, seed: int = 0, progress: bool = True) -> "Base":
        from genunlearn.eval.judge import load_judge
        from genunlearn.i2i.recipe import I2IJob, train_cached

        original = train_cached(I2IJob(task, steps=steps, seed=seed), progress=progress)
        retrain = train_cached(I2IJob(task, forget=request, steps=steps, seed=seed), progress=progress)
        return cls(original, retrain, load_judge(task, progress=progress, verbose=False))


def run_cell(base: Base, method: str, request: ForgetRequest, config: dict | None = None, *, budget: int | None = None) -> tuple[object, dict]:
    """``method`` is "original", "retrain" or a registered I2I method name (``config``: its options)."""
    from genunlearn.data import load_dataset
    from genunlearn.eval.i2i import evaluate_i2i
    from genunlearn.i2i.unlearn import proxy_classes
    from genunlearn.methods import get_method

    retrain_seconds = base.retrain.info["train_seconds"]
    if method in ROWS:
        model = base.original if method == "original" else base.retrain
        seconds = 0.0 if method == "original" else retrain_seconds
    else:
        m = get_method(method, config or {})
        m.check(base.original, request)
        data = load_dataset(base.original.info["task"])
        t0 = time.perf_counter()
        model = m.unlearn(base.original, request, data, budget=budget)
        seconds = time.perf_counter() - t0
    exclude = proxy_classes(model.info.get("unlearn", {}))
    metrics = evaluate_i2i(model, request, reference=base.original, judge=base.judge, exclude_classes=exclude)
    return model, {"method": method, "config": config or {}, "forget": request.spec(), "seconds": seconds, "time_vs_retrain": seconds / retrain_seconds, "metrics": metrics}
