"""The I2I model folder (an ``I2INet`` + the data it completes + how it was made), completion
and the masked reconstruction loss. Saved like every model folder, with family ``"i2i"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from genunlearn.device import batched
from genunlearn.io.model_folder import ModelFolder
from genunlearn.models.i2i import I2INet


def composite(x: torch.Tensor, pred: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """Completion: visible pixels from the input, generated pixels where ``hidden`` (spec §6)."""
    return hidden * pred.clamp(-1, 1) + (1 - hidden) * x


def masked_mse(pred: torch.Tensor, target: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """Per-sample MSE over the hidden pixels: the reconstruction loss L_rec (and its variants)."""
    return ((pred - target) ** 2 * hidden).flatten(1).sum(1) / hidden.flatten(1).sum(1).clamp_min(1)


@dataclass
class I2IModel(ModelFolder):
    """An I2I network + the data it completes + how it was made; one folder on disk."""

    net: I2INet
    data: dict  # Dataset.meta() of the training data
    info: dict = field(default_factory=dict)

    family = "i2i"

    @torch.no_grad()
    def complete(self, x: torch.Tensor, visible: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """Composited completions of ``x`` seen through ``visible`` (batches of the placement's
        ``--batch-size``, on the CPU)."""
        self.net.eval()
        out = batched(self.net, self.net, x, visible, batch_size=batch_size)
        return composite(x, out, self.net.hidden_pixels(visible))
