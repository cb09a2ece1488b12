"""Patch masks for completion (which patches of an image the model sees) and the noise images
that stand in for forget images (unlearning targets, the S_noise reference).

A mask is a boolean ``(N, L)`` tensor over the ``L = (H/p)·(W/p)`` patches, ``True`` = visible.
Evaluation tasks: ``inpaint`` hides the centre half-side square (4 × 4 pixels of an 8 × 8 image),
``outpaint`` keeps only that centre and hides the border; the mask-size sweep adds ``inpaint_small``,
a centre square of a quarter of the side (one 2 × 2 patch of an 8 × 8 image). Training (and unlearning, spec §3 step 2)
draws per sample from the mix of centre, border and random-patch masks (50–75 % of patches hidden).
"""

from __future__ import annotations

import torch

from genunlearn.errors import GenUnlearnError

TASKS = ("inpaint", "outpaint")
MASKS = ("inpaint_small", *TASKS)  # every evaluation mask (the sweep's); TASKS are the reported ones
RANDOM_RATIO = (0.5, 0.75)


def centre(grid: int) -> torch.Tensor:
    """``(L,)`` bool: the patches inside the centre square of half the side."""
    lo, hi = grid // 4, grid - grid // 4
    rows = torch.arange(grid)
    inside = (rows >= lo) & (rows < hi)
    return (inside[:, None] & inside[None, :]).flatten()


def small_centre(n: int, grid: int) -> torch.Tensor:
    """``(n, L)`` bool: a square of a quarter of the side (at least one patch) at the centre. When
    it cannot sit exactly at the centre (odd leftover), sample i takes the i-th (mod 4) of the four
    placements nearest to it, so a split sees all four equally."""
    side = max(1, grid // 4)
    lo, odd = (grid - side) // 2, (grid - side) % 2
    i = torch.arange(n)
    r0, c0 = lo + odd * ((i // 2) % 2), lo + odd * (i % 2)
    rows = torch.arange(grid)
    in_r = (rows[None] >= r0[:, None]) & (rows[None] < r0[:, None] + side)
    in_c = (rows[None] >= c0[:, None]) & (rows[None] < c0[:, None] + side)
    return (in_r[:, :, None] & in_c[:, None, :]).flatten(1)


def task_mask(task: str, n: int, grid: int) -> torch.Tensor:
    """``(n, L)`` visible patches for an evaluation mask."""
    if task not in MASKS:
        raise GenUnlearnError(f"unknown mask {task!r}; expected one of {', '.join(MASKS)}")
    if task == "inpaint_small":
        return ~small_centre(n, grid)
    c = centre(grid)
    return (~c if task == "inpaint" else c).repeat(n, 1)


def random_mask(n: int, grid: int, g: torch.Generator) -> torch.Tensor:
    """Hide a uniformly drawn 50–75 % of the patches of each sample."""
    L = grid * grid
    lo, hi = round(RANDOM_RATIO[0] * L), round(RANDOM_RATIO[1] * L)
    hidden = torch.randint(lo, hi + 1, (n, 1), generator=g)
    rank = (
        torch.rand(n, L, generator=g, device="cpu").argsort(1).argsort(1)
    )  # masks are built on the CPU, placed with their batch
    return rank >= hidden


def training_mask(n: int, grid: int, g: torch.Generator) -> torch.Tensor:
    """Per sample one of: centre hidden, border hidden, random patches hidden (equal odds)."""
    kind = torch.randint(0, 3, (n, 1), generator=g)
    c = centre(grid)[None]
    return torch.where(kind == 0, ~c, torch.where(kind == 1, c, random_mask(n, grid, g)))


def noise_images(x: torch.Tensor, n: int, kind: str, g: torch.Generator) -> torch.Tensor:
    """``n`` noise images in the data range [-1, 1], from the batch ``x``'s scalar statistics."""
    shape = (n, *x.shape[1:])
    if kind == "uniform":
        return torch.rand(shape, generator=g, device=g.device).to(x.device) * 2 - 1
    if kind == "constant":
        return torch.full(shape, float(x.mean()), device=x.device)
    return (torch.randn(shape, generator=g, device=g.device).to(x.device) * x.std() + x.mean()).clamp(-1, 1)
