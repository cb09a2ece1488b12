"""Small classifiers: judges, energy proxies and the networks SalUn unlearns.

A classifier may have several heads (shapes: shape and colour); ``forward`` returns all logits
concatenated, ``split_heads`` separates them and ``features`` is the penultimate layer (the
feature space of Fréchet distance and KID).
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class _Classifier(ModelMixin, ConfigMixin):
    heads: tuple

    def split_heads(self, logits: torch.Tensor) -> list[torch.Tensor]:
        return list(logits.split(list(self.config.heads), dim=1))

    @property
    def num_features(self) -> int:
        return self.head.in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ConvClassifier(_Classifier):
    @register_to_config
    def __init__(
        self,
        in_channels: int = 1,
        channels: tuple = (32, 64),
        heads: tuple = (10,),
        feature_dim: int = 128,
        dropout: float = 0.0,
    ):
        super().__init__()
        layers, cin = [], in_channels
        for ch in channels:
            layers += [
                nn.Conv2d(cin, ch, 3, padding=1),
                nn.BatchNorm2d(ch),
                nn.ReLU(),
                nn.Conv2d(ch, ch, 3, padding=1),
                nn.BatchNorm2d(ch),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            cin = ch
        self.body = nn.Sequential(
            *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, feature_dim), nn.ReLU(), nn.Dropout(dropout)
        )
        self.head = nn.Linear(feature_dim, sum(heads))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class MLPClassifier(_Classifier):
    @register_to_config
    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3, heads: tuple = (2,)):
        super().__init__()
        layers, cin = [], dim
        for _ in range(depth):
            layers += [nn.Linear(cin, hidden), nn.SiLU()]
            cin = hidden
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(hidden, sum(heads))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
