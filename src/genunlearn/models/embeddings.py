"""Time and condition embeddings shared by every network."""

from __future__ import annotations

import math

import torch
from torch import nn


class TimeEmbedding(nn.Module):
    """Sinusoidal features of t ∈ [0, 1] (scaled to [0, 1000]) followed by a small MLP."""

    def __init__(self, dim: int, freq_dim: int = 64):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = (t.float() * 1000.0)[:, None] * freqs[None]
        return self.mlp(torch.cat([args.cos(), args.sin()], 1))


class ConditionEmbedding(nn.Module):
    """Sum of one embedding per attribute; id ``vocab[a]`` is that attribute's "unspecified"."""

    def __init__(self, cond_vocab: tuple[int, ...], dim: int):
        super().__init__()
        self.cond_vocab = tuple(cond_vocab)
        self.tables = nn.ModuleList(nn.Embedding(v + 1, dim) for v in self.cond_vocab)

    def null(self, n: int, device=None) -> torch.Tensor:
        return torch.tensor(self.cond_vocab, dtype=torch.long, device=device).expand(n, -1)

    def forward(self, cond: torch.Tensor | None, n: int, device=None) -> torch.Tensor | None:
        if not self.cond_vocab:
            return None
        if cond is None:
            cond = self.null(n, device)
        if cond.dim() == 1:
            cond = cond[:, None]
        return sum(table(cond[:, a]) for a, table in enumerate(self.tables))
