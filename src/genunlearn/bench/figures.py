"""Figures for reports: sample grids and 2D scatter plots (matplotlib, Agg, PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def image_grid(x: torch.Tensor, rows: int) -> np.ndarray:
    """``(N, C, H, W)`` in [-1, 1] → one ``(rows·H, cols·W, C)`` array in [0, 1] with 1-px gaps."""
    n, c, h, w = x.shape
    cols = (n + rows - 1) // rows
    grid = np.ones((rows * (h + 1) - 1, cols * (w + 1) - 1, c), dtype=np.float32)
    imgs = ((x.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()
    for i in range(n):
        r, k = divmod(i, cols)
        grid[r * (h + 1) : r * (h + 1) + h, k * (w + 1) : k * (w + 1) + w] = imgs[i]
    return grid


def save_sample_grids(
    panels: dict[str, torch.Tensor],
    rows: int,
    path: Path,
    row_labels: list[str] | None = None,
    marked: list[bool] | None = None,
) -> Path:
    """One grid per model side by side (same seeds and prompts in every panel), each row labelled;
    ``marked`` rows (the forgotten classes) are framed and labelled in red."""
    from matplotlib.patches import Rectangle

    plt = _plt()
    n, _, h, w = next(iter(panels.values())).shape
    cols = (n + rows - 1) // rows
    aspect = rows * (h + 1) / (cols * (w + 1))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.4 * len(panels) + 0.6, 2.4 * aspect + 0.5), squeeze=False)
    marked = marked or [False] * rows
    for ax, (title, x) in zip(axes[0], panels.items()):
        g = image_grid(x, rows)
        ax.imshow(g.squeeze(-1) if g.shape[-1] == 1 else g, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([(h + 1) * i + h / 2 - 0.5 for i in range(rows)] if row_labels else [])
        if row_labels:
            ax.set_yticklabels(row_labels, fontsize=7)
            for tick, m in zip(ax.get_yticklabels(), marked):
                if m:
                    tick.set_color("red")
                    tick.set_fontweight("bold")
        for i, m in enumerate(marked):
            if m:
                ax.add_patch(
                    Rectangle((-0.5, (h + 1) * i - 1), g.shape[1], h + 1, fill=False, edgecolor="red", linewidth=1.5)
                )
    return save_figure(fig, path)


def save_scatter(panels: dict[str, torch.Tensor], path: Path, lim: float = 5.5) -> Path:
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.3), squeeze=False)
    for ax, (title, x) in zip(axes[0], panels.items()):
        ax.scatter(x[:, 0].numpy(), x[:, 1].numpy(), s=1, alpha=0.4)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=10)
    return save_figure(fig, path)


def save_figure(fig, path: Path) -> Path:
    """Lay out, write and close a figure (its folder is created if missing)."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    _plt().close(fig)
    return path
