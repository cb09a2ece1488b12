"""Retrain from scratch on the retain split with the base recipe: the gold standard (cached)."""

from __future__ import annotations

from dataclasses import dataclass

from genunlearn.methods.base import Method


@dataclass
class RetrainConfig:
    use_cache: bool = True


class Retrain(Method):
    Config = RetrainConfig

    def unlearn(self, model, request, data, *, budget=None, callbacks=()):
        from genunlearn.generative.recipes import TrainJob, train_cached

        info = model.info
        job = TrainJob(
            info["task"],
            info["model"],
            forget=request,
            steps=budget or info.get("steps"),
            seed=info.get("seed", 0),
            overrides=info.get("overrides", {}),
        )
        return train_cached(job, use_cache=self.config.use_cache)
