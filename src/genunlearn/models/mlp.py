"""Residual MLP on (flattened x, time embedding, condition embedding): 2D points or small images."""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from genunlearn.models.embeddings import ConditionEmbedding, TimeEmbedding


class MLPNet(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, dim: int = 2, hidden: int = 256, depth: int = 4, cond_vocab: tuple = ()):
        super().__init__()
        self.time = TimeEmbedding(hidden)
        self.cond = ConditionEmbedding(tuple(cond_vocab), hidden)
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden)) for _ in range(depth))
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.time(t)
        c = self.cond(cond, x.shape[0], x.device)
        if c is not None:
            emb = emb + c
        h = self.inp(x.flatten(1)) + emb
        for block in self.blocks:
            h = h + block(h)
        return self.out(h).view_as(x)
