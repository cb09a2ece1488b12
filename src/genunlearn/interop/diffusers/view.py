"""A user's diffusers ``UNet2DModel`` behind the library's ``net(x, t, cond)`` call.

This is the diffusers boundary for networks: conventions are converted here and nowhere else.
* Diffusion: genunlearn's t ∈ [0, 1) is timestep t·T; the output is whatever the scheduler's
  ``prediction_type`` says (the ``Diffusion`` process converts).
* Flow matching (``FlowMatchEulerDiscreteScheduler``): diffusers' σ runs from 1 (noise) to 0 (data)
  and the network predicts noise − data; genunlearn's t runs from 0 (noise) to 1 (data) and the
  velocity is data − noise. So σ = 1 − t, timestep = σ·T, velocity = −output.
* Classes: ``cond`` is ``(N, 1)`` class ids; the vocabulary size (genunlearn's "unspecified") is the
  model's null class when it has one (``num_class_embeds`` = classes + 1).
The wrapped ``unet`` is saved back with diffusers' own ``save_pretrained``.
"""

from __future__ import annotations

import torch
from torch import nn

from genunlearn.errors import GenUnlearnError


class ViewConfig(dict):
    """The attributes genunlearn reads from ``net.config``."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class UNetView(nn.Module):
    def __init__(self, unet, *, num_train_timesteps: int, flow: bool = False, num_classes: int | None = None):
        super().__init__()
        self.unet = unet
        self.num_train_timesteps, self.flow = num_train_timesteps, flow
        embeds = unet.config.num_class_embeds
        if num_classes is not None and embeds not in (num_classes, num_classes + 1):
            raise GenUnlearnError(
                f"the model has {embeds} class embeddings; the data has {num_classes} classes (expected {num_classes} or {num_classes + 1} with a null class)"
            )
        self.has_null = num_classes is not None and embeds == num_classes + 1
        self.config = ViewConfig(cond_vocab=(num_classes,) if num_classes else ())

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        labels = None
        if self.config.cond_vocab:
            k = self.config.cond_vocab[0]
            labels = torch.full((x.shape[0],), k, device=x.device) if cond is None else cond[:, 0]
            if not self.has_null and bool((labels == k).any()):
                raise GenUnlearnError("this model has no null class, which guidance needs: sample with --guidance 1")
        t = t.to(x.dtype).expand(x.shape[0])
        if self.flow:
            return -self.unet(x, (1 - t) * self.num_train_timesteps, class_labels=labels).sample
        return self.unet(x, t * self.num_train_timesteps, class_labels=labels).sample
