"""The I2I network: an MAE-style ViT-lite encoder–decoder for inpainting and outpainting.

``I2INet`` splits into ``encoder`` (patch + position embedding, blocks, final norm, applied to the
visible patches only: hidden patches are excluded as attention keys and their outputs are never
read) and ``decoder`` (embedding, mask token, position embedding, blocks, norm, pixel head). The
encoder's output tokens at visible patches are the "encoding" that I2I unlearning aligns. Nothing is
tied across the split, so freezing the decoder freezes all of it. Masks are ``(N, L)`` bool over
patches, ``True`` = visible.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from genunlearn.errors import GenUnlearnError


def pixel_mask(visible: torch.Tensor, patch: int, size: int) -> torch.Tensor:
    """``(N, 1, H, W)`` float: 1 where a pixel is hidden (to be generated), 0 where visible."""
    grid = size // patch
    hidden = (~visible).float().view(-1, 1, grid, grid)
    return hidden.repeat_interleave(patch, 2).repeat_interleave(patch, 3)


class Block(nn.Module):
    """Pre-norm transformer block; ``keep`` (N, L) bool restricts attention keys to visible tokens."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, h: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        n, L, d = h.shape
        q, k, v = self.qkv(self.norm1(h)).view(n, L, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        mask = None if keep is None else keep[:, None, None, :]
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        h = h + self.proj(a.transpose(1, 2).reshape(n, L, d))
        return h + self.mlp(self.norm2(h))


class Encoder(nn.Module):
    def __init__(self, patch_dim: int, tokens: int, dim: int, depth: int, heads: int):
        super().__init__()
        self.embed = nn.Linear(patch_dim, dim)
        self.pos = nn.Parameter(0.02 * torch.randn(1, tokens, dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, patches: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        h = self.embed(patches) + self.pos
        for b in self.blocks:
            h = b(h, visible)
        return self.norm(h)


class Decoder(nn.Module):
    def __init__(self, enc_dim: int, patch_dim: int, tokens: int, dim: int, depth: int, heads: int):
        super().__init__()
        self.embed = nn.Linear(enc_dim, dim)
        self.mask_token = nn.Parameter(0.02 * torch.randn(1, 1, dim))
        self.pos = nn.Parameter(0.02 * torch.randn(1, tokens, dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, patch_dim)

    def forward(self, z: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        h = torch.where(visible[..., None], self.embed(z), self.mask_token) + self.pos
        for b in self.blocks:
            h = b(h)
        return self.head(self.norm(h))


class I2INet(ModelMixin, ConfigMixin):
    """``net(x, visible)`` → predicted image ``(N, C, H, W)``; ``encode``/``decode`` expose the split."""

    @register_to_config
    def __init__(
        self,
        size: int = 8,
        channels: int = 1,
        patch: int = 2,
        enc_dim: int = 128,
        enc_depth: int = 4,
        dec_dim: int = 128,
        dec_depth: int = 2,
        heads: int = 4,
    ):
        super().__init__()
        if size % patch:
            raise GenUnlearnError(f"image size {size} is not a multiple of the patch size {patch}")
        self.grid = size // patch
        patch_dim = channels * patch * patch
        self.encoder = Encoder(patch_dim, self.grid**2, enc_dim, enc_depth, heads)
        self.decoder = Decoder(enc_dim, patch_dim, self.grid**2, dec_dim, dec_depth, heads)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        return F.unfold(x, self.config.patch, stride=self.config.patch).transpose(1, 2)

    def unpatchify(self, p: torch.Tensor) -> torch.Tensor:
        s = self.config.size
        return F.fold(p.transpose(1, 2), (s, s), self.config.patch, stride=self.config.patch)

    def encode(self, x: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """``(N, L, enc_dim)`` tokens; only rows where ``visible`` are meaningful (T(x) = visible patches)."""
        return self.encoder(self.patchify(x), visible)

    def decode(self, z: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        return self.unpatchify(self.decoder(z, visible))

    def hidden_pixels(self, visible: torch.Tensor) -> torch.Tensor:
        """``(N, 1, H, W)``: 1 on pixels of hidden patches."""
        return pixel_mask(visible, self.config.patch, self.config.size)

    def forward(self, x: torch.Tensor, visible: torch.Tensor, *, encode: bool = False) -> torch.Tensor:
        """The predicted image, or with ``encode`` only the encoding (one entry point, so a wrapped
        model, e.g. under accelerate's DDP, runs either part through its own forward)."""
        z = self.encode(x, visible)
        return z if encode else self.decode(z, visible)
