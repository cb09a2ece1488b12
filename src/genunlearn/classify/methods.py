"""Classifier unlearning methods in the one registry (family ``classifier``): SalUn and the
baselines FT, RL, GA, ℓ1-sparse (one plan each, ``classify/unlearn.py``) and Retrain.

``budget`` is a number of epochs. BatchNorm runs in train mode during unlearning, as in SalUn's code.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

from genunlearn.classify.unlearn import UnlearnConfig, unlearn_classifier
from genunlearn.methods.base import Method


class _ClassifierMethod(Method):
    Config = UnlearnConfig
    plan: ClassVar[str]

    def unlearn(self, model, request, data, *, budget=None, callbacks=()):
        from dataclasses import replace

        from genunlearn.classify.model import ClassifierModel

        self.check(model, request)
        forget, retain = data.split(request)
        cfg = self.config if budget is None else replace(self.config, epochs=budget)
        net, run = unlearn_classifier(
            copy.deepcopy(model.net), forget, retain, cfg, self.plan, num_classes=data.num_classes, callbacks=callbacks
        )
        info = self.unlearned_info(
            model.info,
            steps=run["steps"],
            seconds=run["seconds"],
            epochs=run["epochs"],
            **({"mask_density": run["mask_density"]} if "mask_density" in run else {}),
        )
        return ClassifierModel(net, model.data, info)


class ClassifierSalUn(_ClassifierMethod):
    """Saliency-masked random labelling: only the top ``mask_ratio`` weights move."""

    plan = "salun"


class ClassifierRandomLabel(_ClassifierMethod):
    plan = "random_label"


class ClassifierFinetune(_ClassifierMethod):
    plan = "finetune"


class ClassifierGradAscent(_ClassifierMethod):
    plan = "grad_ascent"


class ClassifierL1Sparse(_ClassifierMethod):
    plan = "l1_sparse"


@dataclass
class ClassifierRetrainConfig:
    use_cache: bool = True


class ClassifierRetrain(Method):
    """Retrain from scratch on the retain split with the original's recipe and seed (cached)."""

    Config = ClassifierRetrainConfig

    def unlearn(self, model, request, data, *, budget=None, callbacks=()):
        from genunlearn.classify.model import ClassifierJob, train_cached

        self.check(model, request)
        data.split(request)
        job = ClassifierJob(
            model.info.get("task", model.data["name"]),
            forget=request,
            epochs=budget or model.info.get("recipe", {}).get("epochs"),
            seed=model.info.get("seed", 0),
        )
        return train_cached(job, use_cache=self.config.use_cache)
