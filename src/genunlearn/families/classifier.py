"""The classifier family (SalUn's classification setting): UA, RA, TA, MIA-efficacy in %."""

from __future__ import annotations

from genunlearn.families.base import Family, MetricSpec, reject_options


class ClassifierFamily(Family):
    name = "classifier"
    metrics = (
        MetricSpec("UA", "UA % ≈ retrain", "{:.2f}", "retrain", 1),
        MetricSpec("RA", "RA % ↑", "{:.2f}", "higher", 1),
        MetricSpec("TA", "TA % ↑", "{:.2f}", "higher", 1),
        MetricSpec("MIA", "MIA-Eff. % ≈ retrain", "{:.2f}", "retrain", 1),
    )

    @property
    def model_class(self):
        from genunlearn.classify.model import ClassifierModel

        return ClassifierModel

    def job(self, task, kind, *, forget=None, steps=None, seed=0, options=None):
        """``steps`` counts epochs for classifiers."""
        from genunlearn.classify.model import ClassifierJob

        reject_options(self.name, dict(options or {}))
        return ClassifierJob(task, forget=forget, epochs=steps, seed=seed)

    def train(self, job, *, use_cache=True, progress=True):
        from genunlearn.classify.model import train_cached

        return train_cached(job, use_cache=use_cache)

    def bench_steps(self, task, kind, scale):
        from genunlearn.classify.model import Recipe

        return max(1, round(Recipe().epochs * scale))

    def evaluator(self, task, request, *, reference=None, n_per_prompt=100, seed=0, split="test", progress=True):
        """UA/RA/TA/MIA on the training forget and retain splits and the held-out ``split`` (without
        the forgotten classes for class requests)."""
        from genunlearn.classify.model import check_request, eval_splits
        from genunlearn.data import load_dataset
        from genunlearn.errors import GenUnlearnError
        from genunlearn.eval.classification import classification_metrics

        if request is None:
            raise GenUnlearnError("classifier evaluation compares forget and retain data: give --forget")
        check_request(request)
        splits = eval_splits(load_dataset(task), load_dataset(task, split), request)
        return lambda model: classification_metrics(model.net, *splits)

    def probes(self, model, request, *, n=100):
        return {}  # no classifier probes yet

    def format(self, metrics):
        return "  ".join(f"{k} {v:.2f}" for k, v in metrics.items() if isinstance(v, float))
