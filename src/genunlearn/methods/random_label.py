"""Random labelling (RL) for class-conditional diffusion: SalUn's objective without the mask."""

from __future__ import annotations

from dataclasses import dataclass

from genunlearn.methods.salun import SalUn, SalUnConfig


@dataclass
class RandomLabelConfig(SalUnConfig):
    mask_ratio: float = 1.0


class RandomLabel(SalUn):
    Config = RandomLabelConfig
