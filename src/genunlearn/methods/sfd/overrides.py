"""The class c_o the teacher is asked for where the generator draws a forgotten class c_f."""

from __future__ import annotations

from typing import Callable

import torch

from genunlearn.errors import GenUnlearnError
from genunlearn.methods.common import class_ids
from genunlearn.methods.sfd.config import SFDConfig

DEFAULT_OVERRIDE = {("digits", 3): 8}  # a look-alike safe class; otherwise the next retained class


class Overrides:
    """Chooses c_o for each forget sample: a fixed class, a uniform retained class, or a classifier's pick."""

    def __init__(self, cfg: SFDConfig, model, forget: list[int], retained: list[int]):
        self.mode, self.forget, self.retained = cfg.override_mode, forget, torch.tensor(retained)
        self.fixed = self.classifier = None
        if self.mode == "fixed":
            default = DEFAULT_OVERRIDE.get(
                (model.data["name"], forget[0]), next((c for c in retained if c > forget[0]), retained[0])
            )
            self.fixed = class_ids(model, [cfg.override])[0] if cfg.override is not None else default
            if self.fixed in forget:
                raise GenUnlearnError(f"sfd: the override class {self.fixed} is itself being forgotten")
        elif cfg.override is not None:
            raise GenUnlearnError(f"sfd: override={cfg.override!r} only applies to override_mode=fixed")
        if self.mode == "classifier":
            from genunlearn.classify.model import ClassifierModel

            self.classifier = ClassifierModel.from_pretrained(cfg.override_classifier).net.eval().requires_grad_(False)

    def __call__(self, n: int, g: torch.Generator, denoised: Callable[[], torch.Tensor]) -> torch.Tensor:
        """(n,) override class ids; ``denoised()`` gives f_ψ(x_t^f, t, c_f), called by the classifier mode only."""
        if self.mode == "fixed":
            return torch.full((n,), self.fixed, dtype=torch.long)
        if self.mode == "random":
            return self.retained[torch.randint(len(self.retained), (n,), generator=g)]
        with torch.no_grad():
            logits = self.classifier.split_heads(self.classifier(denoised().clamp(-1, 1)))[0]
        logits[:, self.forget] = -torch.inf
        return logits.argmax(1)

    def describe(self) -> str:
        return f"fixed {self.fixed}" if self.mode == "fixed" else self.mode
