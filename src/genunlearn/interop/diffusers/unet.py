"""diffusers' ``UNet2DModel`` behind the library's ``net(x, t, cond)`` call (one class attribute at most)."""

from __future__ import annotations

import torch
from diffusers import UNet2DModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

from genunlearn.errors import GenUnlearnError


class DiffusersUNet(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(
        self, in_channels: int = 1, sample_size: int = 8, block_out_channels: tuple = (32, 64), cond_vocab: tuple = ()
    ):
        super().__init__()
        if len(cond_vocab) > 1:
            raise GenUnlearnError("DiffusersUNet takes at most one conditioning attribute (class labels)")
        n = len(block_out_channels)
        self.unet = UNet2DModel(
            sample_size=sample_size,
            in_channels=in_channels,
            out_channels=in_channels,
            block_out_channels=tuple(block_out_channels),
            down_block_types=("DownBlock2D",) * n,
            up_block_types=("UpBlock2D",) * n,
            layers_per_block=1,
            norm_num_groups=8,
            num_class_embeds=cond_vocab[0] + 1 if cond_vocab else None,
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        labels = None
        if self.config.cond_vocab:
            labels = (
                cond[:, 0]
                if cond is not None
                else torch.full((x.shape[0],), self.config.cond_vocab[0], device=x.device)
            )
        return self.unet(x, t * 1000.0, class_labels=labels).sample
