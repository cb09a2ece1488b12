"""I2I unlearning and its baselines in the method registry (family ``i2i``).

Registered in the one registry with family ``i2i``, so ``genunlearn methods`` lists them and
``genunlearn unlearn --method NAME --set key=value`` runs them like any other method.
"""

from __future__ import annotations

from typing import ClassVar

from genunlearn.i2i.unlearn import I2IConfig, unlearn_i2i
from genunlearn.methods.base import Method, register


class _I2IMethod(Method):
    accepts = ("classes", "samples")
    family = "i2i"
    model_kinds = ("i2i",)
    Config = I2IConfig
    loss: ClassVar[str]

    def unlearn(self, model, request, data, *, budget=None, callbacks=()):
        return unlearn_i2i(model, request, data, self.config, self.loss, budget=budget, callbacks=callbacks)


@register
class I2I(_I2IMethod):
    """Ours: encoder-only; forget encodings → the frozen encoder's encodings of noise images."""

    name, loss = "i2i", "i2i"


@register
class I2IMaxLoss(_I2IMethod):
    name, loss = "i2i_max_loss", "max_loss"


@register
class I2INoisyLabel(_I2IMethod):
    name, loss = "i2i_noisy_label", "noisy_label"


@register
class I2IRetainLabel(_I2IMethod):
    name, loss = "i2i_retain_label", "retain_label"


@register
class I2IRandomEncoder(_I2IMethod):
    name, loss = "i2i_random_encoder", "random_encoder"


@register
class I2IRetrain(Method):
    """Retrain from scratch on the retain split with the original's recipe (and seed)."""

    name = "i2i_retrain"
    accepts = ("classes", "samples")
    family = "i2i"
    model_kinds = ("i2i",)

    def unlearn(self, model, request, data, *, budget=None, callbacks=()):
        from genunlearn.i2i.recipe import I2IJob, I2IRecipe, train_cached

        data.split(request)
        recipe = I2IRecipe(**{k: v for k, v in model.info["recipe"].items()})
        job = I2IJob(task=model.info["task"], forget=request, steps=budget, seed=model.info.get("seed", 0), recipe=recipe)
        return train_cached(job, progress=False)
