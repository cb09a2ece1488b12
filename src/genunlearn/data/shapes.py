"""Procedural coloured shapes with prompts ("a red circle", "a circle", "a red shape").

Each image shows one shape (circle, square, triangle, cross) in one colour (red, green, blue,
yellow) on a dark background, with random size and position. Attributes are (shape, colour).
"""

from __future__ import annotations

import torch

from genunlearn.data.dataset import Attribute, Dataset

SHAPES = ("circle", "square", "triangle", "cross")
COLOURS = ("red", "green", "blue", "yellow")
RGB = torch.tensor([[1.0, 0.1, 0.1], [0.1, 0.9, 0.1], [0.15, 0.3, 1.0], [1.0, 0.9, 0.1]])
SIZES = {"train": 8000, "val": 2000, "test": 2000}
SEEDS = {"train": 10, "val": 12, "test": 11}
ATTRIBUTES = (Attribute("shape", SHAPES), Attribute("colour", COLOURS))


def render(shape: torch.Tensor, colour: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Render one image per (shape, colour) id pair, ``(N, 3, size, size)`` in [-1, 1]."""
    n = shape.shape[0]
    r = size * (0.22 + 0.16 * torch.rand(n, generator=generator))  # half-extent in pixels
    cx = r + (size - 2 * r) * torch.rand(n, generator=generator)
    cy = r + (size - 2 * r) * torch.rand(n, generator=generator)
    grid = torch.arange(size, dtype=torch.float32) + 0.5
    dx = (grid[None, None, :] - cx[:, None, None]) / r[:, None, None]
    dy = (grid[None, :, None] - cy[:, None, None]) / r[:, None, None]
    masks = torch.stack(
        [
            dx**2 + dy**2 <= 1.0,
            (dx.abs() <= 0.8) & (dy.abs() <= 0.8),
            (dy <= 0.8) & (dy >= -1.0) & (dx.abs() <= (dy + 1.0) / 1.8),
            ((dx.abs() <= 0.3) & (dy.abs() <= 1.0)) | ((dy.abs() <= 0.3) & (dx.abs() <= 1.0)),
        ],
        1,
    )
    mask = masks[torch.arange(n), shape].float()[:, None]
    brightness = 0.85 + 0.15 * torch.rand(n, 1, 1, 1, generator=generator)
    fg = RGB[colour][:, :, None, None] * brightness
    bg = 0.05 * torch.rand(n, 1, 1, 1, generator=generator)
    img = mask * fg + (1 - mask) * bg
    return img * 2 - 1


def load_shapes(split: str = "train", size: int = 16) -> Dataset:
    g = torch.Generator().manual_seed(SEEDS[split] * 100 + size)
    n = SIZES[split]
    shape = torch.randint(0, len(SHAPES), (n,), generator=g)
    colour = torch.randint(0, len(COLOURS), (n,), generator=g)
    x = render(shape, colour, size, g)
    return Dataset("shapes", x, shape, ATTRIBUTES, attrs=torch.stack([shape, colour], 1))
