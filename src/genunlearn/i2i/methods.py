"""I2I unlearning and its baselines in the method registry (family ``i2i``).

Registered in the one registry with family ``i2i``, so ``genunlearn methods`` lists them and
``genunlearn unlearn --method NAME --set key=value`` runs them like any other method.
"""

from __future__ import annotations

from typing import ClassVar

from genunlearn.i2i.model import I2IModel
from genunlearn.i2i.unlearn import I2IConfig, unlearn_i2i
from genunlearn.methods.base import Method


class _I2IMethod(Method):
    Config = I2IConfig
    loss: ClassVar[str]

    def unlearn(self, model, request, data, *, budget=None, callbacks=()):
        out = unlearn_i2i(model, request, data, self.config, self.loss, budget=budget, callbacks=callbacks)
        run = out.info["unlearn"]
        extra = {k: run[k] for k in ("encoder_only", "losses")}
        info = self.unlearned_info(model.info, steps=run["steps"], seconds=run["seconds"], loss=self.loss, **extra)
        return I2IModel(out.net, out.data, {**info, "forget": out.info["forget"]})


class I2I(_I2IMethod):
    """Ours: encoder-only; forget encodings → the frozen encoder's encodings of noise images."""

    loss = "i2i"


class I2IMaxLoss(_I2IMethod):
    loss = "max_loss"


class I2INoisyLabel(_I2IMethod):
    loss = "noisy_label"


class I2IRetainLabel(_I2IMethod):
    loss = "retain_label"


class I2IRandomEncoder(_I2IMethod):
    loss = "random_encoder"


class I2IRetrain(Method):
    """Retrain from scratch on the retain split with the original's recipe (and seed)."""

    def unlearn(self, model, request, data, *, budget=None, callbacks=()):
        from genunlearn.i2i.recipe import I2IJob, I2IRecipe, train_cached

        data.split(request)
        recipe = I2IRecipe(**{k: v for k, v in model.info["recipe"].items()})
        job = I2IJob(
            task=model.info["task"], forget=request, steps=budget, seed=model.info.get("seed", 0), recipe=recipe
        )
        return train_cached(job, progress=False)
